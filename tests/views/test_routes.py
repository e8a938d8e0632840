"""`pointsman routes`: the routing view, live and git side by side, against the example estate in moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from controller.aws.clients import AwsClients
from controller.live.scope import Scope
from controller.spec import load_spec
from controller.views.routes import Chain, Route, describe_versions, route_rows, routes
from controller.views.routes_render import render_markdown, render_text
from tests.conftest import cli, run

# desired_state/ after a first apply: every route, domains first, then stages in spec order.
CONVERGED = [
    "myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 3",
    "myapi.com/v2 -> products-v2/prod -> getProductsV2:prod -> version 2",
    "dev.myapi.com/v1 -> products-v1/dev -> getProducts:dev -> $LATEST",
    "dev.myapi.com/v2 -> products-v2/dev -> getProductsV2:dev -> $LATEST",
    "catalog-api/prod [Accept: application/vnd.acme.v1+json (default)] -> listItems:v1 -> version 1",
    "catalog-api/prod [Accept: application/vnd.acme.v2+json] -> listItems:v2 -> version 2",
    "getreport-api/prod (lambdaAlias=prod) -> getreport:prod -> version 1",
    "getreport-api/dev (lambdaAlias=dev) -> getreport:dev -> $LATEST",
    "products-v1/prod (lambdaAlias=prod) -> getProducts:prod -> version 3",
    "products-v1/dev (lambdaAlias=dev) -> getProducts:dev -> $LATEST",
    "products-v2/prod (lambdaAlias=prod) -> getProductsV2:prod -> version 2",
    "products-v2/dev (lambdaAlias=dev) -> getProductsV2:dev -> $LATEST",
    "users-api/prod [Version: 2022-01-01 (default)] -> postUser:2022-01-01 -> version 1",
    "users-api/prod [Version: 2022-05-03] -> postUser:2022-05-03 -> version 2",
    "users-api/dev [Version: 2022-01-01 (default)] -> postUser:2022-01-01 -> version 1",
    "users-api/dev [Version: 2022-05-03] -> postUser:2022-05-03 -> version 2",
    "users-api/dev [Version: 2022-11-01] -> postUser:2022-11-01 -> $LATEST",
]


def _routes(clients: AwsClients, spec_dir: Path) -> list[Route]:
    return routes(load_spec(spec_dir), Scope(clients))


def _lines(found: list[Route]) -> list[str]:
    return [r.describe() for r in found]


def _replaced(changes: dict[str, str], base: list[str] = CONVERGED) -> list[str]:
    """CONVERGED with the lines that start with a key (an entry and a space) replaced."""
    out, used = [], set()
    for line in base:
        key = next((k for k in changes if line.startswith(k + " ")), None)
        out.append(changes[key] if key is not None else line)
        used.add(key)
    assert used - {None} == set(changes), "a change names no line"
    return out


def _apigw_id(estate: dict[str, Any], api: str) -> str:
    return str(estate["apis"][api]["id"])


# --------------------------------------------------------------------------- converged


def test_converged_every_route_matches_git(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    found = _routes(clients, spec_dir)
    assert _lines(found) == CONVERGED
    assert not any(r.differs for r in found)
    assert all(r.live == r.desired and r.live is not None for r in found)
    first = found[0]
    assert (first.entry, first.api, first.stage, first.variable, first.value, first.function, first.alias) == (
        "myapi.com/v1",
        "products-v1",
        "prod",
        "lambdaAlias",
        "prod",
        "getProducts",
        "prod",
    )
    assert first.methods == ("GET /products",)
    assert first.live == (("3", 1.0),)
    assert render_text(found).splitlines()[-2:] == ["", "17 routes: all match git."]


def test_the_view_reads_no_policies_nor_versions(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    clients.counter.reset()
    _routes(clients, spec_dir)
    calls = clients.counter.snapshot()
    assert calls["apigateway.GetRestApis"] == 1
    assert not {"lambda.GetPolicy", "lambda.ListVersionsByFunction"} & calls.keys(), calls
    assert not [op for op in calls if not op.split(".")[1].startswith(("Get", "List"))], calls


def test_before_the_first_apply_every_route_is_missing_live(estate: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    found = _routes(clients, spec_dir)
    assert _lines(found) == [f"{line} (missing live)" for line in CONVERGED]
    assert all(r.differs and r.live is None and r.live_chain is None for r in found)


# --------------------------------------------------------------------------- drift as clients see it


def test_a_drifted_prod_alias_shows_on_every_route_that_reaches_it(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    # A second base path to products-v1/prod: the drift must show through both mappings.
    products = spec_dir / "products.yaml"
    text = products.read_text(encoding="utf-8")
    mapping = "      v2: {api: products-v2, stage: prod}\n"
    assert mapping in text
    products.write_text(text.replace(mapping, mapping + "      legacy: {api: products-v1, stage: prod}\n", 1), encoding="utf-8")
    assert not run(spec_dir, clients, apply=True).failed
    legacy = "myapi.com/legacy -> products-v1/prod -> getProducts:prod -> version 3"
    with_legacy = CONVERGED[:2] + [legacy] + CONVERGED[2:]
    assert _lines(_routes(clients, spec_dir)) == with_legacy

    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    found = _routes(clients, spec_dir)
    assert _lines(found) == _replaced(
        {
            "myapi.com/v1": "myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 1 (git: version 3)",
            "myapi.com/legacy": "myapi.com/legacy -> products-v1/prod -> getProducts:prod -> version 1 (git: version 3)",
            "products-v1/prod": "products-v1/prod (lambdaAlias=prod) -> getProducts:prod -> version 1 (git: version 3)",
        },
        with_legacy,
    )
    differing = [r for r in found if r.differs]
    assert [r.entry for r in differing] == ["myapi.com/v1", "myapi.com/legacy", "products-v1/prod"]
    assert {(r.function, r.alias, r.live, r.desired) for r in differing} == {("getProducts", "prod", (("1", 1.0),), (("3", 1.0),))}


def test_a_weighted_alias_shows_both_versions_with_their_share(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="3", RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    found = _routes(clients, spec_dir)
    assert _lines(found) == _replaced(
        {
            "myapi.com/v1": "myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 3 (90%) + version 2 (10%) (git: version 3)",
            "products-v1/prod": "products-v1/prod (lambdaAlias=prod) -> getProducts:prod -> version 3 (90%) + version 2 (10%) (git: version 3)",
        }
    )
    assert found[0].live == (("3", 0.9), ("2", 0.1))


def test_a_weighted_alias_declared_in_git_matches_when_converged(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    path = spec_dir / "getreport.yaml"
    text = path.read_text(encoding="utf-8")
    old = 'prod: {version: "1", description: stable}'
    assert old in text
    path.write_text(text.replace(old, 'prod: {version: "1", description: stable, routing: {2: 0.25}}'), encoding="utf-8")
    found = _routes(clients, spec_dir)
    canary = "getreport-api/prod (lambdaAlias=prod) -> getreport:prod -> version 1"
    assert _lines(found) == _replaced({"getreport-api/prod": f"{canary} (git: version 1 (75%) + version 2 (25%))"})
    assert not run(spec_dir, clients, apply=True).failed
    found = _routes(clients, spec_dir)
    assert _lines(found) == _replaced({"getreport-api/prod": "getreport-api/prod (lambdaAlias=prod) -> getreport:prod -> version 1 (75%) + version 2 (25%)"})
    assert not any(r.differs for r in found)


def test_a_mapping_pointing_at_another_stage_or_api_shows_the_new_chain(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    apigw = clients.apigateway
    apigw.update_base_path_mapping(domainName="myapi.com", basePath="v1", patchOperations=[{"op": "replace", "path": "/stage", "value": "dev"}])
    apigw.update_base_path_mapping(
        domainName="dev.myapi.com",
        basePath="v2",
        patchOperations=[{"op": "replace", "path": "/restapiId", "value": _apigw_id(converged, "products-v1")}],
    )
    found = _routes(clients, spec_dir)
    assert _lines(found) == _replaced(
        {
            "myapi.com/v1": "myapi.com/v1 -> products-v1/dev -> getProducts:dev -> $LATEST (git: products-v1/prod -> getProducts:prod -> version 3)",
            "dev.myapi.com/v2": "dev.myapi.com/v2 -> products-v1/dev -> getProducts:dev -> $LATEST (git: products-v2/dev -> getProductsV2:dev -> $LATEST)",
        }
    )
    assert [(r.entry, r.api, r.stage) for r in found if r.differs] == [("myapi.com/v1", "products-v1", "dev"), ("dev.myapi.com/v2", "products-v1", "dev")]
    # The stages themselves still route as git says.
    assert not any(r.differs for r in found if not r.domain)


def test_a_stage_variable_naming_a_missing_alias(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    clients.apigateway.update_stage(
        restApiId=_apigw_id(converged, "products-v1"),
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/variables/lambdaAlias", "value": "gone"}],
    )
    found = _routes(clients, spec_dir)
    assert _lines(found) == _replaced(
        {
            "myapi.com/v1": "myapi.com/v1 -> products-v1/prod -> getProducts:gone (no such alias: clients get 500) (git: getProducts:prod -> version 3)",
            "products-v1/prod": "products-v1/prod (lambdaAlias=gone) -> getProducts:gone "
            "(no such alias: clients get 500) (git: lambdaAlias=prod -> getProducts:prod -> version 3)",
        }
    )
    stage = next(r for r in found if r.entry == "products-v1/prod")
    assert (stage.variable, stage.value, stage.alias, stage.live, stage.desired) == ("lambdaAlias", "gone", "gone", None, (("3", 1.0),))
    assert stage.live_chain is not None and stage.live_chain.problem == "no such alias: clients get 500"


def test_an_alias_deleted_behind_a_stage(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    clients.lambda_.delete_alias(FunctionName="getreport", Name="prod")
    found = _routes(clients, spec_dir)
    assert _lines(found) == _replaced(
        {"getreport-api/prod": "getreport-api/prod (lambdaAlias=prod) -> getreport:prod (no such alias: clients get 500) (git: version 1)"}
    )


def test_live_only_stages_and_versions(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    apigw = clients.apigateway
    v1 = _apigw_id(converged, "products-v1")
    deployment = apigw.get_stage(restApiId=v1, stageName="dev")["deploymentId"]
    apigw.create_stage(restApiId=v1, stageName="test", deploymentId=deployment, variables={"lambdaAlias": "dev"})
    users = _apigw_id(converged, "users-api")
    apigw.update_stage(
        restApiId=users,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/variables/pointsmanVersions", "value": "2022-01-01,2022-05-03,2022-11-01"}],
    )
    found = _routes(clients, spec_dir)
    test_stage = "products-v1/test (lambdaAlias=dev) -> getProducts:dev -> $LATEST (not in git)"
    exposed = "users-api/prod [Version: 2022-11-01] -> postUser:2022-11-01 -> $LATEST (git: not routed)"
    expected = list(CONVERGED)
    expected.insert(expected.index("products-v1/dev (lambdaAlias=dev) -> getProducts:dev -> $LATEST") + 1, test_stage)
    expected.insert(expected.index("users-api/prod [Version: 2022-05-03] -> postUser:2022-05-03 -> version 2") + 1, exposed)
    assert _lines(found) == expected
    # Git has no opinion of a stage it does not declare; it does of a version it does not expose on prod.
    assert [(r.entry, r.in_git) for r in found if r.differs] == [("users-api/prod", True)]
    assert render_text(found).splitlines()[-1] == "19 routes: 1 differ from git."


def test_http_proxy_versions_resolve_through_the_routes_behind_the_proxy(estate: dict[str, Any], clients: AwsClients, tmp_path: Path) -> None:
    """Strategy http-proxy: each version is a route {path}/{version} whose URI names its alias."""
    apigw = clients.apigateway
    api = apigw.create_rest_api(name="users-proxy")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    users = apigw.create_resource(restApiId=api, parentId=root, pathPart="users")["id"]
    apigw.put_method(restApiId=api, resourceId=users, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=users, httpMethod="POST", type="MOCK", requestTemplates={"application/json": "{}"})
    apigw.create_deployment(restApiId=api)
    spec_dir = tmp_path / "proxy"
    spec_dir.mkdir()
    (spec_dir / "proxy.yaml").write_text(
        "rest_apis:\n"
        "  users-proxy:\n"
        "    stages: {prod: {}}\n"
        "    versions:\n"
        "      strategy: http-proxy\n"
        "      header: Version\n"
        "      default: '2022-01-01'\n"
        "      routes: [{method: POST, path: /users, function: postUser}]\n"
        "      catalogue: {'2022-01-01': {functions: {postUser: 1}}, '2022-05-03': {functions: {postUser: 2}}}\n",
        encoding="utf-8",
    )
    wanted = [
        "users-proxy/prod [Version: 2022-01-01 (default)] -> postUser:2022-01-01 -> version 1",
        "users-proxy/prod [Version: 2022-05-03] -> postUser:2022-05-03 -> version 2",
    ]
    assert _lines(_routes(clients, spec_dir)) == [f"{line} (missing live)" for line in wanted]
    assert not run(spec_dir, clients, apply=True).failed
    found = _routes(clients, spec_dir)
    assert _lines(found) == wanted
    assert [r.methods for r in found] == [("POST /users",), ("POST /users",)]
    clients.lambda_.update_alias(FunctionName="postUser", Name="2022-05-03", FunctionVersion="1")
    assert _lines(_routes(clients, spec_dir)) == [wanted[0], "users-proxy/prod [Version: 2022-05-03] -> postUser:2022-05-03 -> version 1 (git: version 2)"]


# --------------------------------------------------------------------------- formats and the command


def test_markdown_table_marks_changed_rows(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    clients.apigateway.update_base_path_mapping(
        domainName="dev.myapi.com", basePath="v2", patchOperations=[{"op": "replace", "path": "/stage", "value": "prod"}]
    )
    lines = render_markdown(_routes(clients, spec_dir)).splitlines()
    assert lines[:8] == [
        "### Pointsman routes",
        "",
        "| Entry | Route | Live | Git |",
        "|---|---|---|---|",
        "| ⚠️ myapi.com/v1 | products-v1/prod -> getProducts:prod | version 1 | version 3 |",
        "| myapi.com/v2 | products-v2/prod -> getProductsV2:prod | version 2 | version 2 |",
        "| dev.myapi.com/v1 | products-v1/dev -> getProducts:dev | $LATEST | $LATEST |",
        "| ⚠️ dev.myapi.com/v2 | products-v2/prod -> getProductsV2:prod | version 2 | products-v2/dev -> getProductsV2:dev -> $LATEST |",
    ]
    assert "| getreport-api/prod | lambdaAlias=prod -> getreport:prod | version 1 | version 1 |" in lines
    assert "| ⚠️ products-v1/prod | lambdaAlias=prod -> getProducts:prod | version 1 | version 3 |" in lines
    assert "| users-api/prod | Version: 2022-01-01 (default) -> postUser:2022-01-01 | version 1 | version 1 |" in lines
    assert lines[-1] == "17 routes: 3 differ from git (⚠️)."


def test_cli_text_exit_codes(converged: dict[str, Any], clients: AwsClients, spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "routes", "--spec", str(spec_dir))
    assert (code, err) == (0, "")
    assert out.splitlines() == [*CONVERGED, "", "17 routes: all match git."]
    assert cli(capsys, "routes", "--spec", str(spec_dir), "--exit-code")[0] == 0

    clients.lambda_.update_alias(FunctionName="getProductsV2", Name="prod", FunctionVersion="1")
    code, out, _ = cli(capsys, "routes", "--spec", str(spec_dir))
    assert code == 0  # differing routes are not an error unless --exit-code asks
    assert out.splitlines() == [
        *_replaced(
            {
                "myapi.com/v2": "myapi.com/v2 -> products-v2/prod -> getProductsV2:prod -> version 1 (git: version 2)",
                "products-v2/prod": "products-v2/prod (lambdaAlias=prod) -> getProductsV2:prod -> version 1 (git: version 2)",
            }
        ),
        "",
        "17 routes: 2 differ from git.",
    ]
    assert cli(capsys, "routes", "--spec", str(spec_dir), "--exit-code")[0] == 2


def test_cli_live_and_desired_views(converged: dict[str, Any], clients: AwsClients, spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    clients.apigateway.update_base_path_mapping(domainName="myapi.com", basePath="v2", patchOperations=[{"op": "replace", "path": "/stage", "value": "dev"}])
    code, out, _ = cli(capsys, "routes", "--spec", str(spec_dir), "--live")
    assert code == 0
    assert out.splitlines() == _replaced(
        {
            "myapi.com/v1": "myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 1",
            "myapi.com/v2": "myapi.com/v2 -> products-v2/dev -> getProductsV2:dev -> $LATEST",
            "products-v1/prod": "products-v1/prod (lambdaAlias=prod) -> getProducts:prod -> version 1",
        }
    )
    code, out, _ = cli(capsys, "routes", "--spec", str(spec_dir), "--desired")
    assert code == 0
    assert out.splitlines() == CONVERGED
    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        cli(capsys, "routes", "--spec", str(spec_dir), "--live", "--desired")
    assert usage.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "pointsman routes: error: argument --desired: not allowed with argument --live"


def test_cli_json(converged: dict[str, Any], clients: AwsClients, spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {"1": 0.25}})
    code, out, err = cli(capsys, "routes", "--spec", str(spec_dir), "--format", "json", "--exit-code")
    assert (code, err) == (2, "")
    rows = json.loads(out)
    assert len(rows) == 17
    keys = {
        "entry",
        "entry_kind",
        "methods",
        "api",
        "stage",
        "variable",
        "value",
        "selector",
        "function",
        "alias",
        "live",
        "desired",
        "differs",
        "in_git",
        "text",
        "chain",
        "live_text",
        "desired_text",
        "live_chain",
        "git_chain",
    }
    assert all(set(row) == keys for row in rows)
    assert [row["text"] for row in rows if not row["differs"]] == [line for line in CONVERGED if "getProducts:prod" not in line]
    first = rows[0]
    assert {k: first[k] for k in keys - {"live_chain", "git_chain"}} == {
        "entry": "myapi.com/v1",
        "entry_kind": "domain",
        "methods": ["GET /products"],
        "api": "products-v1",
        "stage": "prod",
        "variable": "lambdaAlias",
        "value": "prod",
        "selector": None,
        "function": "getProducts",
        "alias": "prod",
        "live": [{"version": "2", "weight": 0.75}, {"version": "1", "weight": 0.25}],
        "desired": [{"version": "3", "weight": 1.0}],
        "differs": True,
        "in_git": True,
        "text": "myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 2 (75%) + version 1 (25%) (git: version 3)",
        "chain": "products-v1/prod -> getProducts:prod",
        "live_text": "version 2 (75%) + version 1 (25%)",
        "desired_text": "version 3",
    }
    assert first["git_chain"]["versions"] == [{"version": "3", "weight": 1.0}]
    users = next(row for row in rows if row["entry"] == "users-api/prod")
    assert (users["selector"], users["variable"], users["alias"], users["methods"]) == ("Version: 2022-01-01 (default)", None, "2022-01-01", ["POST /users"])
    # The rows the status page and plan's review use are the same objects.
    assert route_rows(load_spec(spec_dir), Scope(clients)) == rows

    code, out, _ = cli(capsys, "routes", "--spec", str(spec_dir), "--format", "json", "--live")
    assert code == 0
    assert json.loads(out)[0]["text"] == "myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 2 (75%) + version 1 (25%)"


def test_cli_markdown(converged: dict[str, Any], spec_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "routes", "--spec", str(spec_dir), "--format", "markdown", "--desired")
    assert code == 0
    lines = out.splitlines()
    assert lines[:5] == [
        "### Pointsman routes",
        "",
        "| Entry | Route | Git |",
        "|---|---|---|",
        "| myapi.com/v1 | products-v1/prod -> getProducts:prod | version 3 |",
    ]
    assert len(lines) == 4 + 17


def test_cli_aws_error_is_one_line(estate: dict[str, Any], spec_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: Scope, *args: Any) -> Any:
        raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "GetStages")

    monkeypatch.setattr(Scope, "_load_stages", denied)
    code, out, err = cli(capsys, "routes", "--spec", str(spec_dir))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "error: GetStages: AccessDeniedException: not authorized "
        "(check credentials and the IAM policy: `pointsman iam-policy` prints what is needed); nothing was applied."
    ]


def test_cli_invalid_spec_is_reported_like_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("functions:\n  f:\n    aliases: {prod: {version: one}}\n", encoding="utf-8")
    code, out, err = cli(capsys, "routes", "--spec", str(tmp_path))
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == "1 problem in the spec; nothing was applied."


# --------------------------------------------------------------------------- the one-line form


def test_describe_without_aws() -> None:
    live = Chain("api", "stage", "fn", "lambdaAlias", "canary", alias="canary", versions=(("3", 0.9), ("4", 0.1)))
    git = Chain("api", "stage", "fn", "lambdaAlias", "canary", alias="canary", versions=(("3", 1.0),))
    assert Route.of("api/stage", False, ["GET /x"], live, live, True).describe() == (
        "api/stage (lambdaAlias=canary) -> fn:canary -> version 3 (90%) + version 4 (10%)"
    )
    assert Route.of("api/stage", False, ["GET /x"], live, git, True).describe() == (
        "api/stage (lambdaAlias=canary) -> fn:canary -> version 3 (90%) + version 4 (10%) (git: version 3)"
    )
    assert Route.of("d.com/v1", True, [], None, git, True).describe() == "d.com/v1 -> api/stage -> fn:canary -> version 3 (missing live)"
    undeclared = Chain("api", "stage", "fn", "lambdaAlias", "canary", alias="canary", declared=False)
    route = Route.of("api/stage", False, [], live, undeclared, True)
    assert (route.differs, route.desired) == (False, None)
    assert route.describe() == "api/stage (lambdaAlias=canary) -> fn:canary -> version 3 (90%) + version 4 (10%) (not in git)"
    unset = Chain("api", "stage", "fn", "lambdaAlias", None, problem="stage variable lambdaAlias not set: clients get 500")
    assert Route.of("api/stage", False, [], unset, git, True).describe() == (
        "api/stage (lambdaAlias not set) -> fn (stage variable lambdaAlias not set: clients get 500) (git: lambdaAlias=canary -> fn:canary -> version 3)"
    )
    assert describe_versions((("$LATEST", 1.0),)) == "$LATEST"
    assert describe_versions((("7", 2 / 3), ("8", 1 / 3))) == "version 7 (66.6667%) + version 8 (33.3333%)"
