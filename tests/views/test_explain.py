"""`pointsman explain`: who serves a request, against the example estate in moto (after a first apply)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import AwsClients, write_calls
from controller.live.scope import Scope
from controller.spec import load_spec
from controller.views.explain import DesiredEstate, Explanation, LiveEstate, explain, match_base_path, match_resource, parse_request
from tests.conftest import REGION, cli


def _url(estate: dict[str, Any], api: str, stage: str, path: str) -> str:
    return f"https://{estate['apis'][api]['id']}.execute-api.{REGION}.amazonaws.com/{stage}{path}"


def _live(clients: AwsClients, method: str, url: str, *headers: str, **kwargs: Any) -> Explanation:
    return explain(parse_request(method, url, headers, **kwargs), LiveEstate(Scope(clients)))


def _desired(clients: AwsClients, spec_dir: Path, method: str, url: str, *headers: str, **kwargs: Any) -> Explanation:
    estate = DesiredEstate(load_spec(spec_dir), LiveEstate(Scope(clients)))
    return explain(parse_request(method, url, headers, **kwargs), estate)


def _served(result: Explanation) -> tuple[str, str | None, dict[str, float]]:
    assert result.status == 200 and result.served_by is not None, result.as_dict()
    return result.served_by.function, result.served_by.alias, result.served_by.versions


def _steps(result: Explanation) -> dict[str, str]:
    return {step.step: step.detail for step in result.steps}


# --------------------------------------------------------------------------- each strategy, live


def test_uri_versions_through_custom_domains(converged, clients):
    v1 = _live(clients, "GET", "https://myapi.com/v1/products")
    assert _served(v1) == ("getProducts", "prod", {"3": 1.0})
    steps = _steps(v1)
    assert steps["domain"].startswith("myapi.com base path v1 -> REST API products-v1")
    assert "stage prod" in steps["domain"]
    assert steps["alias"] == "stage variable lambdaAlias=prod -> getProducts:prod"
    assert steps["permission"].startswith("statement pointsman-")
    v2_dev = _live(clients, "GET", "https://dev.myapi.com/v2/products")
    assert _served(v2_dev) == ("getProductsV2", "dev", {"$LATEST": 1.0})
    # A query string and a trailing slash change nothing.
    assert _served(_live(clients, "GET", "https://myapi.com/v1/products/?page=2"))[1] == "prod"


def test_execute_api_url_with_an_any_method(converged, clients):
    result = _live(clients, "DELETE", _url(converged, "getreport-api", "prod", "/getreport"))
    assert _served(result) == ("getreport", "prod", {"1": 1.0})
    steps = _steps(result)
    assert steps["method"] == "ANY (matches DELETE)"
    assert "REST API getreport-api" in steps["endpoint"]
    assert _served(_live(clients, "GET", _url(converged, "getreport-api", "dev", "/getreport")))[1:] == ("dev", {"$LATEST": 1.0})


@pytest.mark.parametrize(
    ("headers", "alias", "version"),
    [
        (["Version: 2022-05-03"], "2022-05-03", "2"),
        ([], "2022-01-01", "1"),
        (["version: 2022-05-03"], "2022-05-03", "2"),
        (["VERSION:   2022-05-03  "], "2022-05-03", "2"),
    ],
)
def test_header_versions(converged, clients, headers, alias, version):
    result = _live(clients, "POST", _url(converged, "users-api", "prod", "/users"), *headers, body='{"name": "Ada"}')
    assert _served(result) == ("postUser", alias, {version: 1.0})
    assert "the request template (on the method) renders" in _steps(result)["template"]


def test_header_version_unknown_or_not_exposed_gets_400_listing_the_stage_versions(converged, clients):
    unknown = _live(clients, "POST", _url(converged, "users-api", "prod", "/users"), "Version: 2099-01-01")
    assert unknown.status == 400 and unknown.exit_code == 3 and unknown.served_by is None
    assert unknown.body == {
        "message": "API version '2099-01-01' is not supported on this stage",
        "requested": "2099-01-01",
        "supported": ["2022-01-01", "2022-05-03"],
        "default": "2022-01-01",
    }
    # No function runs: a DryRun of the stage's default alias, answered by the default response.
    assert _steps(unknown)["lambda"] == "X-Amz-Invocation-Type: DryRun on postUser:2022-01-01: Lambda checks the call, runs no function, answers 204"
    assert _steps(unknown)["response"].startswith("no function error: the default integration response 200 answers")
    assert unknown.reason == "API version '2099-01-01' is not supported on this stage (no function runs; 400 listing 2022-01-01, 2022-05-03)"
    # 2022-11-01 is exposed on dev only.
    on_prod = _live(clients, "POST", _url(converged, "users-api", "prod", "/users"), "Version: 2022-11-01")
    assert on_prod.status == 400 and on_prod.body["requested"] == "2022-11-01"
    on_dev = _live(clients, "POST", _url(converged, "users-api", "dev", "/users"), "Version: 2022-11-01")
    assert _served(on_dev) == ("postUser", "2022-11-01", {"$LATEST": 1.0})


@pytest.mark.parametrize(
    ("accept", "alias", "version"),
    [
        ("application/vnd.acme.v2+json", "v2", "2"),
        ("application/vnd.ACME.V2+json; charset=utf-8", "v2", "2"),
        ("application/json", "v1", "1"),
        (None, "v1", "1"),
    ],
)
def test_media_type_versions(converged, clients, accept, alias, version):
    headers = [f"Accept: {accept}"] if accept else []
    result = _live(clients, "GET", _url(converged, "catalog-api", "prod", "/items"), *headers)
    assert _served(result) == ("listItems", alias, {version: 1.0})


def test_media_type_version_unknown_gets_400(converged, clients):
    result = _live(clients, "GET", _url(converged, "catalog-api", "prod", "/items"), "Accept: application/vnd.acme.v9+json")
    assert result.status == 400
    assert result.body["supported"] == ["v1", "v2"]
    assert result.reason.startswith("API version 'v9' is not supported on this stage")


def test_another_content_type_gets_415_from_the_versioned_method(converged, clients):
    result = _live(clients, "POST", _url(converged, "users-api", "prod", "/users"), "Content-Type: text/plain", body="hi")
    assert result.status == 415 and result.body == {"message": "Unsupported Media Type"}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://elsewhere.example/v1/products", "elsewhere.example is not a custom domain"),
        ("https://myapi.com/v9/products", "no base path mapping of myapi.com matches /v9/products (base paths: v1, v2)"),
        ("https://myapi.com/v1/orders", "no resource of products-v1 matches /orders"),
        ("https://myapi.com/v1", "resource / of products-v1 has no GET method (it has none)"),
    ],
)
def test_no_route_is_403_missing_authentication_token(converged, clients, url, why):
    result = _live(clients, "GET", url)
    assert (result.status, result.body, result.exit_code) == (403, {"message": "Missing Authentication Token"}, 3)
    assert why in result.reason


def test_wrong_method_stage_or_api_id_is_403(converged, clients):
    assert "has no POST method (it has GET)" in _live(clients, "POST", "https://myapi.com/v1/products").reason
    assert _live(clients, "GET", _url(converged, "products-v1", "staging", "/products")).reason == "REST API products-v1 has no stage staging"
    assert _live(clients, "GET", f"https://nosuchapi1.execute-api.{REGION}.amazonaws.com/prod/x").status == 403


def test_console_deleted_alias_is_500_with_the_reason(converged, clients):
    clients.lambda_.delete_alias(FunctionName="getProducts", Name="prod")
    result = _live(clients, "GET", "https://myapi.com/v1/products")
    assert (result.status, result.body) == (500, {"message": "Internal server error"})
    assert result.reason == "getProducts:prod does not exist"
    # On a versioned method the 400 template finds the version served, so the missing alias is a 500 too.
    clients.lambda_.delete_alias(FunctionName="postUser", Name="2022-05-03")
    versioned = _live(clients, "POST", _url(converged, "users-api", "prod", "/users"), "Version: 2022-05-03")
    assert (versioned.status, versioned.body) == (500, {"message": "Internal server error"})
    assert versioned.reason == "postUser:2022-05-03 does not exist"


def test_missing_stage_variable_is_500(converged, clients):
    api = converged["apis"]["products-v1"]["id"]
    clients.apigateway.update_stage(restApiId=api, stageName="prod", patchOperations=[{"op": "remove", "path": "/variables/lambdaAlias"}])
    result = _live(clients, "GET", "https://myapi.com/v1/products")
    assert result.status == 500
    assert result.reason == "stage prod of products-v1 has no stage variable lambdaAlias, which the integration URI needs"


def test_removed_permission_is_500_may_not_invoke(converged, clients, spec_dir):
    alias_arn = clients.lambda_.get_alias(FunctionName="getProducts", Name="prod")["AliasArn"]
    policy = json.loads(clients.lambda_.get_policy(FunctionName="getProducts", Qualifier="prod")["Policy"])
    (sid,) = [s["Sid"] for s in policy["Statement"] if s["Resource"] == alias_arn]
    clients.lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=sid)
    result = _live(clients, "GET", "https://myapi.com/v1/products")
    assert (result.status, result.body) == (500, {"message": "Internal server error"})
    assert result.reason == "API Gateway may not invoke getProducts:prod"
    assert "no statement of getProducts:prod's resource policy" in _steps(result)["permission"]
    # The desired view knows Pointsman derives that permission (apply adds it back).
    assert _desired(clients, spec_dir, "GET", "https://myapi.com/v1/products").status == 200


# --------------------------------------------------------------------------- desired view


REQUESTS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("GET", "products-v1", "https://myapi.com/v1/products", ()),
    ("GET", "products-v2", "https://dev.myapi.com/v2/products", ()),
    ("GET", "getreport-api", "prod:/getreport", ()),
    ("POST", "users-api", "prod:/users", ("Version: 2022-05-03",)),
    ("POST", "users-api", "prod:/users", ()),
    ("POST", "users-api", "prod:/users", ("Version: 2099-01-01",)),
    ("POST", "users-api", "prod:/users", ("Version: 2022-11-01",)),
    ("POST", "users-api", "dev:/users", ("Version: 2022-11-01",)),
    ("GET", "catalog-api", "prod:/items", ("Accept: application/vnd.acme.v2+json",)),
    ("GET", "catalog-api", "prod:/items", ("Accept: application/vnd.acme.v9+json",)),
    ("GET", "products-v1", "https://myapi.com/v3/products", ()),
]


def _target(estate: dict[str, Any], api: str, where: str) -> str:
    if where.startswith("https://"):
        return where
    stage, path = where.split(":", 1)
    return _url(estate, api, stage, path)


def test_desired_agrees_with_live_on_the_converged_estate(converged, clients, spec_dir):
    for method, api, where, headers in REQUESTS:
        url = _target(converged, api, where)
        live = _live(clients, method, url, *headers)
        desired = _desired(clients, spec_dir, method, url, *headers)
        assert (desired.status, desired.body, desired.served_by) == (live.status, live.body, live.served_by), (method, url, headers)
        assert [s.step for s in desired.steps] == [s.step for s in live.steps]


def test_desired_labels_what_it_reads_live(converged, clients, spec_dir):
    steps = _steps(_desired(clients, spec_dir, "GET", "https://myapi.com/v1/products"))
    assert steps["domain"].endswith("[spec]") and steps["stage"].endswith("[spec]")
    assert steps["integration"].endswith("[live: the spec does not describe it]")
    assert steps["permission"] == "Pointsman derives it from stage prod of products-v1: lambda_permission/getProducts/prod/products-v1 [spec]"
    versioned = _steps(_desired(clients, spec_dir, "POST", _url(converged, "users-api", "prod", "/users")))
    assert versioned["integration"].endswith("[generated by Pointsman from the spec]")
    assert "the request template (generated) renders" in versioned["template"]


def test_desired_shows_a_promotion_before_apply(converged, clients, spec_dir):
    path = spec_dir / "products.yaml"
    data = yaml.safe_load(path.read_text())
    data["functions"]["getProducts"]["aliases"]["prod"]["version"] = 2
    path.write_text(yaml.safe_dump(data))
    assert _served(_desired(clients, spec_dir, "GET", "https://myapi.com/v1/products"))[2] == {"2": 1.0}
    assert _served(_live(clients, "GET", "https://myapi.com/v1/products"))[2] == {"3": 1.0}


def test_desired_exposing_a_version_on_prod_and_a_canary(converged, clients, spec_dir):
    users = spec_dir / "users.yaml"
    data = yaml.safe_load(users.read_text())
    del data["rest_apis"]["users-api"]["versions"]["catalogue"]["2022-11-01"]["stages"]
    users.write_text(yaml.safe_dump(data))
    report = spec_dir / "getreport.yaml"
    data = yaml.safe_load(report.read_text())
    data["functions"]["getreport"]["aliases"]["prod"]["routing"] = {"2": 0.1}
    report.write_text(yaml.safe_dump(data))
    url = _url(converged, "users-api", "prod", "/users")
    assert _served(_desired(clients, spec_dir, "POST", url, "Version: 2022-11-01"))[1] == "2022-11-01"
    assert _live(clients, "POST", url, "Version: 2022-11-01").status == 400
    canary = _desired(clients, spec_dir, "GET", _url(converged, "getreport-api", "prod", "/getreport"))
    assert _served(canary)[2] == {"1": 0.9, "2": 0.1}
    assert canary.served_by is not None and canary.served_by.describe() == "getreport:prod -> version 1 (90%), version 2 (10%)"


def test_desired_sha256_pin_resolves_to_the_published_version(converged, clients, spec_dir):
    sha = next(v["CodeSha256"] for v in clients.lambda_.list_versions_by_function(FunctionName="getProducts")["Versions"] if v["Version"] == "2")
    path = spec_dir / "products.yaml"
    data = yaml.safe_load(path.read_text())
    data["functions"]["getProducts"]["aliases"]["prod"]["version"] = f"sha256:{sha}"
    path.write_text(yaml.safe_dump(data))
    result = _desired(clients, spec_dir, "GET", "https://myapi.com/v1/products")
    assert _served(result)[2] == {"2": 1.0}
    assert f"sha256:{sha} is the code of version 2" in _steps(result)["versions"]


# --------------------------------------------------------------------------- read-only


def test_explain_makes_no_write_call(converged, clients, spec_dir):
    clients.counter.reset()
    for method, api, where, headers in REQUESTS:
        url = _target(converged, api, where)
        _live(clients, method, url, *headers)
        _desired(clients, spec_dir, method, url, *headers)
    calls = clients.counter.snapshot()
    assert calls and write_calls(calls) == {}


# --------------------------------------------------------------------------- the command line


def test_cli_text_output(converged, capsys):
    url = _url(converged, "users-api", "prod", "/users")
    code, out, err = cli(capsys, "explain", "POST", url, "-H", "Version: 2022-05-03")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"POST {url}  [live]"
    assert lines[1] == "  -H 'Version: 2022-05-03'"
    assert any(line.startswith("stage ") and "pointsmanVersions=2022-01-01,2022-05-03" in line for line in lines)
    assert any(line.startswith("resource ") and line.endswith("/users matches /users") for line in lines)
    assert any(line.startswith("template ") and "requested version '2022-05-03'" in line for line in lines)
    assert lines[-1] == "=> 200-class: postUser:2022-05-03 -> version 2"


def test_cli_client_errors_exit_3(converged, capsys):
    url = _url(converged, "users-api", "prod", "/users")
    code, out, _ = cli(capsys, "explain", "POST", url, "-H", "Version: 2099-01-01")
    assert code == 3
    assert out.splitlines()[-2].startswith('=> 400 {"message": "API version \'2099-01-01\' is not supported on this stage"')
    assert out.splitlines()[-1].startswith("   reason: API version '2099-01-01' is not supported")
    code, out, _ = cli(capsys, "explain", "GET", "https://unknown.example/x")
    assert code == 3
    assert out.splitlines()[-2:] == [
        '=> 403 {"message": "Missing Authentication Token"}',
        "   reason: unknown.example is not a custom domain name of this account and region",
    ]


def test_cli_json_output(converged, capsys):
    code, out, _ = cli(capsys, "explain", "--format", "json", "GET", "https://myapi.com/v1/products")
    assert code == 0
    report = json.loads(out)
    assert report["served_by"] == {"function": "getProducts", "alias": "prod", "versions": {"3": 1.0}}
    assert (report["status"], report["body"], report["view"]) == (200, None, "live")
    assert report["request"]["method"] == "GET" and report["request"]["host"] == "myapi.com"
    assert [s["step"] for s in report["steps"]] == ["domain", "stage", "resource", "method", "integration", "alias", "versions", "permission"]
    code, out, _ = cli(capsys, "explain", "--format", "json", "GET", "https://myapi.com/v9/products")
    assert code == 3
    report = json.loads(out)
    assert (report["served_by"], report["status"], report["body"]) == (None, 403, {"message": "Missing Authentication Token"})


def test_cli_api_and_stage_instead_of_a_url(converged, capsys):
    code, out, _ = cli(capsys, "explain", "--api", "users-api", "--stage", "prod", "POST", "/users", "-H", "Version: 2022-05-03")
    assert code == 0 and out.splitlines()[-1] == "=> 200-class: postUser:2022-05-03 -> version 2"
    code, out, _ = cli(capsys, "explain", "--api", "users-api", "--stage", "prod", "POST", "/users")
    assert code == 0 and out.splitlines()[-1] == "=> 200-class: postUser:2022-01-01 -> version 1"


def test_cli_desired_after_a_spec_edit(converged, capsys, spec_dir):
    path = spec_dir / "products.yaml"
    path.write_text(path.read_text().replace("prod: {version: 3,", "prod: {version: 2,"))
    code, out, _ = cli(capsys, "explain", "--desired", "--spec", str(spec_dir), "GET", "https://myapi.com/v1/products")
    assert code == 0 and out.splitlines()[0].endswith("[desired]")
    assert out.splitlines()[-1] == "=> 200-class: getProducts:prod -> version 2"
    code, out, _ = cli(capsys, "explain", "--live", "GET", "https://myapi.com/v1/products")
    assert code == 0 and out.splitlines()[-1] == "=> 200-class: getProducts:prod -> version 3"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["GET", "myapi.com/v1/products"], "error: 'myapi.com/v1/products' is not an http(s) URL"),
        (["GET", "ftp://myapi.com/v1"], "error: 'ftp://myapi.com/v1' is not an http(s) URL"),
        (["GET", "https://[::1/x"], "error: 'https://[::1/x' is not a URL"),
        (["GET", "https://myapi.com/v1", "-H", "Version 2022-05-03"], "error: header 'Version 2022-05-03' is not 'Name: value'"),
        (["GET", "https://myapi.com/v1", "-H", "Ver sion: 1"], "error: header 'Ver sion: 1' is not 'Name: value'"),
        (["G3T", "https://myapi.com/v1"], "error: 'G3T' is not an HTTP method"),
        (["--api", "users-api", "POST", "/users"], "error: --api and --stage go together"),
        (["--api", "users-api", "--stage", "prod", "POST", "users"], "error: with --api, 'users' must be a path"),
    ],
)
def test_cli_bad_request_is_one_error_line(capsys, argv, message):
    code, out, err = cli(capsys, "explain", *argv)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(message), err


def test_cli_wrong_region_is_one_error_line(converged, capsys):
    code, _, err = cli(capsys, "explain", "GET", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/x")
    assert code == 1
    assert err.strip() == f"error: the URL is for region eu-west-1 but AWS_REGION is {REGION}: set AWS_REGION=eu-west-1"


@pytest.mark.parametrize(
    "argv",
    [["explain"], ["explain", "GET"], ["explain", "--live", "--desired", "GET", "https://myapi.com/"], ["explain", "--format", "yaml", "GET", "https://x/"]],
)
def test_cli_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, *argv)
    assert exit_info.value.code == 2


# --------------------------------------------------------------------------- matching rules


def test_base_path_is_the_longest_segment_prefix():
    assert match_base_path(["v1", "v1/admin", "(none)"], "/v1/admin/users") == ("v1/admin", "/users")
    assert match_base_path(["v1", "v1/admin", "(none)"], "/v1/administrators") == ("v1", "/administrators")
    assert match_base_path(["v1", "(none)"], "/v2/x") == ("(none)", "/v2/x")
    assert match_base_path(["v1"], "/v10/x") is None


def test_resource_literals_beat_parameters_beat_greedy():
    paths = ["/", "/users", "/users/{id}", "/users/me", "/{proxy+}", "/users/{id}/{rest+}"]
    assert match_resource(paths, "/users/me") == ("/users/me", {})
    assert match_resource(paths, "/users/42") == ("/users/{id}", {"id": "42"})
    assert match_resource(paths, "/users/42/orders/7") == ("/users/{id}/{rest+}", {"id": "42", "rest": "orders/7"})
    assert match_resource(paths, "/other/thing") == ("/{proxy+}", {"proxy": "other/thing"})
    assert match_resource(paths, "/") == ("/", {})
    assert match_resource(["/users"], "/users/x") is None


# --------------------------------------------------------------------------- the demo walkthrough


@pytest.mark.server
def test_walkthrough_against_the_emulator_server(moto_server, monkeypatch, capsys, spec_dir):
    """As in the README: `pointsman explain --api users-api --stage prod POST /users` with and without the header."""
    import urllib.request

    from controller.demo.estate import seed
    from controller.engine.pipeline import reconcile

    with urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", data=b"", method="POST"), timeout=30):
        pass
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    clients = AwsClients()
    seed(clients)
    assert not reconcile(load_spec(spec_dir), clients, apply=True).failed
    argv = ("explain", "--api", "users-api", "--stage", "prod", "POST", "/users")
    code, out, _ = cli(capsys, *argv, "-H", "Version: 2022-05-03")
    assert code == 0 and out.splitlines()[-1] == "=> 200-class: postUser:2022-05-03 -> version 2"
    code, out, _ = cli(capsys, *argv)
    assert code == 0 and out.splitlines()[-1] == "=> 200-class: postUser:2022-01-01 -> version 1"
