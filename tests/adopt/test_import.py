"""`pointsman import`: the spec written from a live estate is in sync at once, reads only,
is the same bytes on a re-run, leaves out nothing silently, and refuses bad input whole."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients, write_calls
from controller.engine.pipeline import reconcile
from controller.spec import load_spec
from tests.conftest import cli


def run_import(capsys: pytest.CaptureFixture[str], clients: AwsClients, out: Path, *flags: str) -> tuple[int, str, str]:
    clients.counter.reset()
    code, stdout, stderr = cli(capsys, "import", "--out", str(out), *flags)
    assert write_calls(clients.counter.snapshot()) == {}, "import made a write call"
    return code, stdout, stderr


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def assert_in_sync(spec_dir: Path, clients: AwsClients) -> None:
    result = reconcile(load_spec(spec_dir), clients, apply=True)
    assert not result.problems, result.problems
    assert result.drift == [], [(d.resource, d.status.value) for d in result.drift]
    assert write_calls(clients.counter.snapshot()) == {}


# --------------------------------------------------------------------------- round trip


def test_the_imported_demo_estate_is_in_sync_writes_nothing_and_reimports_byte_for_byte(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    code, stdout, stderr = run_import(capsys, importing, out)
    assert (code, stderr) == (0, "")
    assert sorted(files(out)) == ["catalog-api.yaml", "domains.yaml", "getreport-api.yaml", "products-v1.yaml", "products-v2.yaml", "users-api.yaml"]
    text = (out / "products-v1.yaml").read_text()
    assert '      prod: {version: "3", description: "v1 production"}\n' in text
    assert '      dev: {version: $LATEST, description: "v1 development"}\n' in text
    assert "  # products-v1 routes GET /products to it via stage variable lambdaAlias\n" in text
    assert "      prod: {variables: {lambdaAlias: prod}, description: production}\n" in text
    assert "      v2: {api: products-v2, stage: prod}\n" in (out / "domains.yaml").read_text()
    # The versioned APIs (generated templates) are written back as the versions blocks that generate them.
    users = (out / "users-api.yaml").read_text()
    assert (
        "  # users-api routes POST /users to it by header Version: its aliases 2022-01-01, 2022-05-03, 2022-11-01 come from the versions catalogue\n" in users
    )
    assert "  postUser:\n    aliases: {}\n" in users
    assert "        - {method: POST, path: /users, function: postUser}\n" in users
    assert '        "2022-11-01": {functions: {postUser: $LATEST}, stages: [dev]}\n' in users
    assert "pointsmanVersions" not in users  # set by the versions block, not written under stages
    catalog = (out / "catalog-api.yaml").read_text()
    assert "      media_type: application/vnd.acme\n      default: v1\n" in catalog
    assert "nothing left out" in stdout

    importing.counter.reset()
    assert_in_sync(out, importing)

    first = files(out)
    code, _, _ = run_import(capsys, importing, out, "--force")
    assert code == 0 and files(out) == first
    code, _, _ = run_import(capsys, importing, tmp_path / "again")
    assert code == 0 and files(tmp_path / "again") == first


def test_weighted_routing_a_pinned_deployment_and_a_foreign_permission_round_trip(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lam, apigw = importing.lambda_, importing.apigateway
    lam.update_alias(FunctionName="getProducts", Name="prod", RoutingConfig={"AdditionalVersionWeights": {"4": 0.25}})
    api_id = converged["apis"]["products-v1"]["id"]
    time.sleep(1.1)  # the emulator's createdDate counts whole seconds: this one is the newest
    newest = apigw.create_deployment(restApiId=api_id, description="a newer deployment")["id"]
    lam.add_permission(FunctionName="getreport", Qualifier="prod", StatementId="s3-reports", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, importing, out)
    assert code == 0
    text = (out / "products-v1.yaml").read_text()
    assert 'prod: {version: "3", description: "v1 production", routing: {"4": 0.25}}' in text
    pinned = [line for line in text.splitlines() if "deployment:" in line]
    assert len(pinned) == 2 and all(f"# pinned: {newest} is the API's newest deployment" in line for line in pinned)
    report = (out / "getreport-api.yaml").read_text()
    assert "# not managed: permission s3-reports on getreport:prod: lets s3.amazonaws.com invoke it" in report
    assert "permission s3-reports on getreport:prod" in stdout
    importing.counter.reset()
    assert_in_sync(out, importing)


# --------------------------------------------------------------------------- scoping


def test_api_globs_import_those_apis_with_the_functions_they_route_to(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    code, _, _ = run_import(capsys, importing, out, "--apis", "products-*")
    assert code == 0
    assert sorted(files(out)) == ["products-v1.yaml", "products-v2.yaml"]
    spec = load_spec(out)
    assert sorted(spec.functions) == ["getProducts", "getProductsV2"]
    assert sorted(spec.rest_apis) == ["products-v1", "products-v2"]
    importing.counter.reset()
    assert_in_sync(out, importing)


def test_an_api_id_scopes_that_api(converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    api_id = converged["apis"]["getreport-api"]["id"]
    out = tmp_path / "imported"
    code, _, stderr = run_import(capsys, importing, out, "--apis", api_id)
    assert (code, stderr) == (0, "")
    assert sorted(files(out)) == ["getreport-api.yaml"]
    assert sorted(load_spec(out).rest_apis) == ["getreport-api"]


def test_a_domain_mapping_to_an_api_out_of_scope_is_listed_not_managed(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, importing, out, "--apis", "products-v1", "--domains", "myapi.com")
    assert code == 0
    domains = (out / "domains.yaml").read_text()
    assert "v1: {api: products-v1, stage: prod}" in domains
    assert "# not managed: domain myapi.com base path v2 -> products-v2 stage prod: the API is not in scope" in domains
    assert "domain myapi.com base path v2 -> products-v2 stage prod" in stdout


def test_function_globs_alone_write_functions_yaml_and_name_the_permissions_of_apis_left_out(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    code, stdout, _ = run_import(capsys, importing, out, "--functions", "getrep*")
    assert code == 0
    assert sorted(files(out)) == ["functions.yaml"]
    assert sorted(load_spec(out).functions) == ["getreport"]
    assert "Pointsman's statement for REST API getreport-api, which is not imported" in stdout
    assert "# not managed: permission pointsman-" in (out / "functions.yaml").read_text()


# --------------------------------------------------------------------------- bad input


def one_error(code: int, stdout: str, stderr: str) -> str:
    assert code == 1 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--functions", "nope-*"), "--functions 'nope-*' matches no function"),
        (("--apis", "getreport-api", "--apis", "nope"), "--apis 'nope' matches no REST API"),
        (("--domains", "nope.example.com"), "--domains 'nope.example.com': no such custom domain"),
    ],
)
def test_a_scope_that_matches_nothing_is_one_error_and_nothing_written(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: tuple[str, ...], says: str
) -> None:
    out = tmp_path / "imported"
    assert says in one_error(*run_import(capsys, importing, out, *flags))
    assert not out.exists()


def test_an_empty_account_is_one_error(importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "imported"
    assert "nothing in scope" in one_error(*run_import(capsys, importing, out))
    assert not out.exists()


def test_an_out_that_cannot_be_a_directory_is_one_error(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "not a directory" in one_error(*run_import(capsys, importing, blocker))
    assert "cannot be created" in one_error(*run_import(capsys, importing, blocker / "spec"))
    assert blocker.read_text() == "x"


def test_an_existing_file_is_kept_and_nothing_is_written_without_force(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    out.mkdir()
    (out / "products-v2.yaml").write_text("# mine\n")
    line = one_error(*run_import(capsys, importing, out))
    assert "products-v2.yaml exists" in line and "--force" in line
    assert files(out) == {"products-v2.yaml": b"# mine\n"}
    code, _, _ = run_import(capsys, importing, out, "--force")
    assert code == 0 and (out / "products-v2.yaml").read_text() != "# mine\n"
    assert json.dumps(sorted(files(out))) == json.dumps(
        ["catalog-api.yaml", "domains.yaml", "getreport-api.yaml", "products-v1.yaml", "products-v2.yaml", "users-api.yaml"]
    )


# --------------------------------------------------------------------------- YAML text


@pytest.mark.parametrize(
    "text", ["prod", "$LATEST", "2022-01-01", "3", "1e3", "yes", "No", "null", "~", "", "a: b", "# x", 'it\'s "quoted"', "tab\there", "é ü", "(none)", "-x"]
)
def test_a_scalar_reads_back_as_the_same_text(text: str) -> None:
    import yaml

    from controller.views.yaml_text import flow

    assert yaml.safe_load(flow({text: text})) == {text: text}
    assert yaml.safe_load(flow({"list": [text, {text: [text]}]})) == {"list": [text, {text: [text]}]}


def test_the_read_only_policy_has_no_write_action_and_covers_import() -> None:
    from controller.engine.iam import policy_document

    statements = policy_document(read_only=True)["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert actions == {
        "lambda:GetFunctionConfiguration",
        "lambda:GetPolicy",
        "lambda:ListAliases",
        "lambda:ListVersionsByFunction",
        "lambda:ListFunctions",
        "lambda:ListTags",
        "apigateway:GET",
    }
    full = {a for s in policy_document()["Statement"] for a in s["Action"]}
    assert {"lambda:UpdateAlias", "apigateway:PATCH", "sqs:DeleteMessage"} <= full and "lambda:ListFunctions" in full


def test_import_observe_writes_manage_observe_and_a_drift_is_reported_never_written(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "observed"
    code, _, stderr = run_import(capsys, importing, out, "--observe")
    assert (code, stderr) == (0, "")
    text = (out / "products-v1.yaml").read_text()
    assert "  getProducts:\n    manage: observe\n    aliases:\n" in text
    assert "  products-v1:\n    manage: observe\n    stages:\n" in text
    assert "  myapi.com:\n    manage: observe\n    mappings:\n" in (out / "domains.yaml").read_text()
    importing.counter.reset()
    assert_in_sync(out, importing)
    # A console change is drift, reported; apply writes nothing to what is observed.
    importing.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    importing.counter.reset()
    result = reconcile(load_spec(out), importing, apply=True, prune=True)
    assert [d.resource for d in result.drift] == ["lambda_alias/getProducts/prod"]
    assert write_calls(importing.counter.snapshot()) == {} and [h.action.resource for h in result.observed] == ["lambda_alias/getProducts/prod"]


def test_wiped_managed_parts_are_restored_by_apply_and_import_again_gives_the_same_bytes(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    assert run_import(capsys, importing, out)[0] == 0
    first = files(out)
    # Wipe what Pointsman manages: aliases (and their policies), a stage's variables, the mappings.
    lam, apigw = importing.lambda_, importing.apigateway
    for alias in ("prod", "dev"):
        lam.delete_alias(FunctionName="getProducts", Name=alias)
    v2 = next(i["id"] for i in apigw.get_rest_apis()["items"] if i["name"] == "products-v2")
    apigw.update_stage(restApiId=v2, stageName="prod", patchOperations=[{"op": "remove", "path": "/variables/lambdaAlias"}])
    for base_path in ("v1", "v2"):
        apigw.delete_base_path_mapping(domainName="myapi.com", basePath=base_path)
    importing.counter.reset()
    result = reconcile(load_spec(out), importing, apply=True)
    assert not result.failed and result.drift, [o.as_dict() for o in result.outcomes]
    importing.counter.reset()
    assert_in_sync(out, importing)  # restored
    code, _, _ = run_import(capsys, importing, tmp_path / "again")
    assert code == 0 and files(tmp_path / "again") == first


def test_tags_scope_functions_apis_and_domains(converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    arn = importing.lambda_.get_function(FunctionName="getreport")["Configuration"]["FunctionArn"]
    importing.lambda_.tag_resource(Resource=arn, Tags={"team": "reports"})
    importing.apigateway.create_rest_api(name="reports-api", tags={"team": "reports"})  # GetRestApis returns its tags
    out = tmp_path / "tagged"
    code, _, stderr = run_import(capsys, importing, out, "--tag", "team=reports")
    assert (code, stderr) == (0, "")
    assert sorted(files(out)) == ["functions.yaml", "reports-api.yaml"]
    assert "  getreport:\n" in (out / "functions.yaml").read_text() and "  reports-api:\n" in (out / "reports-api.yaml").read_text()
    code, _, stderr = run_import(capsys, importing, tmp_path / "none", "--tag", "team=nobody")
    assert code == 1 and stderr.strip() == "error: --tag team=nobody: no function, REST API or custom domain carries it; nothing was written."
    assert not (tmp_path / "none").exists() or files(tmp_path / "none") == {}
    with pytest.raises(SystemExit) as exited:  # argparse: a usage error, exit 2
        run_import(capsys, importing, tmp_path / "bad", "--tag", "team")
    assert exited.value.code == 2 and "'team' is not KEY=VALUE" in capsys.readouterr().err


def test_progress_is_told_for_every_api_function_and_domain(converged: dict[str, Any], clients: AwsClients) -> None:
    from controller.live.scope import Scope
    from controller.views.adopt import Scoping, gather

    told: list[tuple[str, int, int]] = []
    gather(Scope(clients), Scoping(), progress=lambda what, done, total: told.append((what, done, total)))
    for what in ("REST APIs", "functions", "domains"):
        mine = [t for t in told if t[0] == what]
        assert mine and [d for _, d, _ in mine] == list(range(1, mine[0][2] + 1)), (what, mine)
    assert ("domains", 2, 2) in told
    # Every read of the read-ahead is told as it ends, the total never behind what is done.
    reads = [t for t in told if t[0] == "AWS reads"]
    assert reads and all(done <= total for _, done, total in reads) and reads[-1][1] == reads[-1][2] == len(reads)


def test_environment_names_are_imported_values_never_and_a_plan_waits_for_the_parameters(
    converged: dict[str, Any], importing: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    importing.lambda_.update_function_configuration(FunctionName="getreport", Environment={"Variables": {"API_KEY": "s3cret-value", "MODE": "fast"}})
    out = tmp_path / "env"
    code, stdout, stderr = run_import(capsys, importing, out, "--environment", "--apis", "getreport-api")
    assert (code, stderr) == (0, "")
    text = (out / "getreport-api.yaml").read_text()
    assert "      API_KEY: {ssm: /pointsman/import/getreport/API_KEY}\n" in text and "      MODE: {ssm: /pointsman/import/getreport/MODE}\n" in text
    assert "s3cret-value" not in text and "s3cret-value" not in stdout and "fast" not in text
    assert "function getreport environment: 2 values not written" in stdout
    # Until the parameters exist the plan stops at their line: nothing is applied with a placeholder.
    importing.counter.reset()
    result = reconcile(load_spec(out), importing, apply=True)
    assert result.problems and "/pointsman/import/getreport/API_KEY" in str(result.problems[0])
    assert write_calls(importing.counter.snapshot()) == {}
    ssm = importing.client("ssm")
    ssm.put_parameter(Name="/pointsman/import/getreport/API_KEY", Value="s3cret-value", Type="SecureString")
    ssm.put_parameter(Name="/pointsman/import/getreport/MODE", Value="fast", Type="String")
    importing.counter.reset()
    assert_in_sync(out, importing)
