"""`pointsman` in-process: exit codes, one clear stderr line per error, never a traceback.

AWS is moto in-process (the ``estate`` fixture activates it and seeds the example), or an
unreachable endpoint on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from controller.live.scope import Scope
from tests.conftest import EXAMPLE_SPEC, cli, free_port


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def client_error(code: str, message: str, operation: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, operation)


# --------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_bad_yaml_is_one_error_line_with_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("functions:\n  f:\n    aliases: {prod: {version: 1}\n", encoding="utf-8")  # never closed
    code, out, err = cli(capsys, command, "--spec", str(tmp_path))
    assert code == 1
    assert out == ""
    errors = [line for line in lines(err) if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"error: {path}:4: invalid YAML: ")
    assert lines(err) == [errors[0], "1 problem in the spec; nothing was applied."]


def test_validate_example_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "validate", "--spec", str(EXAMPLE_SPEC))
    assert code == 0
    assert lines(out) == [f"{EXAMPLE_SPEC}: valid (4 files, 12 top-level items)"]
    assert err == ""


def test_validate_lists_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("functions:\n  f:\n    aliases:\n      prod: {version: one}\n", encoding="utf-8")
    b = tmp_path / "b.yaml"
    b.write_text("rest_apis:\n  api:\n    stages:\n      prod: {colour: red}\n", encoding="utf-8")
    code, out, err = cli(capsys, "validate", "--spec", str(tmp_path))
    assert code == 1
    assert out == ""
    assert lines(err) == [
        f'error: {a}:4: functions.f.aliases.prod.version: version \'one\' is not a published version number, "$LATEST" or "sha256:<CodeSha256>"',
        f"error: {b}:4: rest_apis.api.stages.prod.colour: unknown field 'colour'",
        "2 problems in the spec; nothing was applied.",
    ]


def test_validate_missing_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "validate", "--spec", str(tmp_path / "nope"))
    assert code == 1
    assert lines(err)[0] == f"error: {tmp_path / 'nope'}:0: spec directory does not exist"


def test_unknown_yaml_tag_is_a_clean_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("functions:\n  f:\n    aliases:\n      prod: {version: !ref x}\n", encoding="utf-8")
    code, out, err = cli(capsys, "validate", "--spec", str(tmp_path))
    assert code == 1
    assert lines(err)[0].startswith(f"error: {path}:4: ")


def test_schema_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "schema")
    assert code == 0
    assert err == ""
    schema = json.loads(out)
    assert schema["title"] == "Pointsman spec file"
    assert "version" in schema["$defs"]["AliasSpec"]["properties"]


# --------------------------------------------------------------------------- AWS errors


def test_unreachable_endpoint(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # bound and released: nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    code, out, err = cli(capsys, "plan", "--spec", str(EXAMPLE_SPEC))
    elapsed = time.monotonic() - started
    assert code == 1
    assert out == ""
    (line,) = lines(err)
    assert line.startswith(f"error: cannot reach AWS endpoint http://127.0.0.1:{port}")
    assert line.endswith("; nothing was applied.")
    # Connection refused is retried with backoff; it must still give up quickly.
    assert elapsed < 15, f"plan against a refused endpoint took {elapsed:.1f}s"


@pytest.mark.parametrize(
    ("loader", "operation"),
    [("_load_rest_apis", "GetRestApis"), ("_load_function", "ListVersionsByFunction"), ("_load_stages", "GetStages")],
)
def test_access_denied_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    estate: dict[str, Any],
    spec_dir: Path,
    loader: str,
    operation: str,
) -> None:
    def denied(self: Scope, *args: Any) -> Any:
        raise client_error("AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized", operation)

    monkeypatch.setattr(Scope, loader, denied)
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir))
    assert code == 1
    assert out == ""
    assert lines(err) == [
        f"error: {operation}: AccessDeniedException: User: arn:aws:iam::123456789012:user/ci is not authorized "
        "(check credentials and the IAM policy: `pointsman iam-policy` prints what is needed); nothing was applied."
    ]


def test_throttling_past_the_deadline_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, estate: dict[str, Any], spec_dir: Path
) -> None:
    def throttled(self: Scope) -> Any:
        raise client_error("ThrottlingException", "Rate exceeded", "GetRestApis")

    monkeypatch.setattr(Scope, "_load_rest_apis", throttled)
    code, out, err = cli(capsys, "apply", "--spec", str(spec_dir))
    assert code == 1
    assert out == ""
    assert lines(err) == [
        "error: GetRestApis: ThrottlingException: Rate exceeded (still throttled at the reconcile's throttling deadline:"
        " see --throttle-deadline and --rate-limits); nothing was applied."
    ]


def test_plan_problem_exits_1_without_traceback(capsys: pytest.CaptureFixture[str], estate: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "ghost.yaml").write_text("functions:\n  ghost:\n    aliases:\n      prod: {version: 1}\n", encoding="utf-8")
    code, out, err = cli(capsys, "plan", "--spec", str(tmp_path), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["in_sync"] is False
    assert report["problems"] == [f"{tmp_path / 'ghost.yaml'}:2: function 'ghost' does not exist"]
    assert report["actions"] == []


def test_apply_with_a_denied_write_reports_failed_and_skipped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, estate: dict[str, Any], spec_dir: Path
) -> None:
    import controller.engine.apply

    real_call = controller.engine.apply._call

    def call(clients: Any, c: Any, results: Any) -> Any:
        if c.method == "create_alias" and c.params["FunctionName"] == "getreport" and c.params["Name"] == "prod":
            raise client_error("AccessDeniedException", "no", "CreateAlias")
        return real_call(clients, c, results)

    monkeypatch.setattr(controller.engine.apply, "_call", call)
    code, out, err = cli(capsys, "apply", "--spec", str(spec_dir), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["converged"] is False
    by_resource = {o["resource"]: o for o in report["outcomes"]}
    assert by_resource["lambda_alias/getreport/prod"]["status"] == "failed"
    assert by_resource["lambda_alias/getreport/prod"]["error"].startswith("CreateAlias: AccessDeniedException: no")
    assert by_resource["lambda_permission/getreport/prod/getreport-api"]["status"] == "skipped"
    assert by_resource["rest_stage/getreport-api/prod"]["status"] == "skipped"
    assert by_resource["lambda_alias/getreport/dev"]["status"] == "succeeded"
    assert sum(o["status"] == "succeeded" for o in report["outcomes"]) == 39 - 3


# --------------------------------------------------------------------------- plan exit codes and JSON


def test_plan_json_exit_codes_before_and_after_apply(capsys: pytest.CaptureFixture[str], estate: dict[str, Any], spec_dir: Path) -> None:
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir), "--format", "json")
    assert code == 2
    report = json.loads(out)
    assert report["in_sync"] is False
    assert report["problems"] == []
    assert len(report["drift"]) == 39 and len(report["actions"]) == 39
    for drift in report["drift"]:
        assert set(drift) >= {"resource", "status", "changes"}
        # The versioned methods exist with a placeholder integration: modified; the rest is missing.
        assert drift["status"] == ("modified" if drift["resource"].startswith("rest_method/") else "missing")
        assert drift["changes"], drift
        for change in drift["changes"]:
            assert set(change) == {"field", "live", "desired"}
            assert change["live"] is None or drift["status"] == "modified"
    by_resource = {d["resource"]: d for d in report["drift"]}
    assert by_resource["lambda_alias/getProducts/prod"]["changes"] == [
        {"field": "description", "live": None, "desired": "v1 production"},
        {"field": "routing", "live": None, "desired": {}},
        {"field": "version", "live": None, "desired": "3"},
    ]
    assert report["api_calls"]["apigateway.GetRestApis"] == 1
    assert report["write_calls"] == 0
    assert not [op for op in report["api_calls"] if op.split(".")[1].startswith(("Create", "Update", "Delete", "Add"))]

    code, out, err = cli(capsys, "apply", "--spec", str(spec_dir), "--format", "json")
    assert code == 0, out
    applied = json.loads(out)
    assert applied["converged"] is True
    assert [o["status"] for o in applied["outcomes"]] == ["succeeded"] * 39

    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir), "--format", "json")
    assert code == 0, out
    again = json.loads(out)
    assert again["in_sync"] is True
    assert again["drift"] == [] and again["actions"] == []
    assert again["write_calls"] == 0

    # A changed version is drift again: exit 2 and exactly one field change.
    getreport = spec_dir / "getreport.yaml"
    getreport.write_text(getreport.read_text().replace('prod: {version: "1"', 'prod: {version: "2"'))
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir), "--format", "json")
    assert code == 2
    drifted = json.loads(out)
    assert drifted["drift"] == [
        {
            "resource": "lambda_alias/getreport/prod",
            "kind": "lambda_alias",
            "status": "modified",
            "changes": [{"field": "version", "live": "1", "desired": "2"}],
        }
    ]
    (action,) = drifted["actions"]
    assert action["operation"] == "lambda.UpdateAlias"
    assert action["calls"][0]["params"] == {"FunctionName": "getreport", "Name": "prod", "FunctionVersion": "2"}


def test_plan_text_in_sync_after_apply(capsys: pytest.CaptureFixture[str], estate: dict[str, Any], spec_dir: Path) -> None:
    assert cli(capsys, "apply", "--spec", str(spec_dir))[0] == 0
    code, out, err = cli(capsys, "plan", "--spec", str(spec_dir))
    assert code == 0
    assert lines(out)[0] == "In sync: live AWS matches the spec."
