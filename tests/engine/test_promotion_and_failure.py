"""Promotion by a spec change, and a partial failure that the next apply converges."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

from controller.aws.clients import write_calls
from controller.cli.main import main
from controller.model import OutcomeStatus
from tests.conftest import run


def promote(spec_dir, old='prod: {version: "1"', new='prod: {version: "2"'):
    path = spec_dir / "getreport.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_promotion_changes_exactly_one_alias_with_one_call(converged, clients, spec_dir, capsys):
    promote(spec_dir)

    assert main(["plan", "--spec", str(spec_dir), "--format", "json"]) == 2
    plan = json.loads(capsys.readouterr().out)
    assert plan["in_sync"] is False
    assert plan["drift"] == [
        {
            "resource": "lambda_alias/getreport/prod",
            "kind": "lambda_alias",
            "status": "modified",
            "changes": [{"field": "version", "live": "1", "desired": "2"}],
        }
    ]
    assert [a["operation"] for a in plan["actions"]] == ["lambda.UpdateAlias"]
    assert plan["actions"][0]["calls"][0]["params"] == {"FunctionName": "getreport", "Name": "prod", "FunctionVersion": "2"}
    assert plan["write_calls"] == 0

    assert main(["apply", "--spec", str(spec_dir), "--format", "json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert write_calls(applied["api_calls"]) == {"lambda.UpdateAlias": 1}
    assert applied["outcomes"] == [{"resource": "lambda_alias/getreport/prod", "operation": "lambda.UpdateAlias", "status": "succeeded"}]
    assert clients.lambda_.get_alias(FunctionName="getreport", Name="prod")["FunctionVersion"] == "2"

    assert main(["plan", "--spec", str(spec_dir), "--format", "json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["in_sync"] is True and after["drift"] == [] and after["actions"] == []
    assert after["write_calls"] == 0


def test_text_and_markdown_reports_read_like_a_review(converged, clients, spec_dir, capsys):
    promote(spec_dir)
    assert main(["plan", "--spec", str(spec_dir)]) == 2
    text = capsys.readouterr().out
    assert "~ lambda_alias/getreport/prod  [modified]" in text
    assert 'version: "1" -> "2"' in text
    assert "1. lambda.UpdateAlias  lambda_alias/getreport/prod" in text
    assert main(["plan", "--spec", str(spec_dir), "--format", "markdown"]) == 2
    md = capsys.readouterr().out
    assert '| `lambda_alias/getreport/prod` | modified | version | "1" | "2" |' in md


def _fail_on(clients, operation: str, match: dict[str, Any]):
    """Inject a failure: ``operation`` with params matching ``match`` raises AccessDenied."""
    service, name = operation.split(".")

    def handler(params, model, **_):
        if model.name == name and all(params.get(k) == v for k, v in match.items()):
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDeniedException", "Message": "injected: not allowed"}}, name)

    clients.client(service).meta.events.register(f"provide-client-params.{service}.{name}", handler)
    return handler


def test_partial_failure_skips_dependents_reports_and_next_apply_converges(estate, clients, spec_dir):
    handler = _fail_on(clients, "lambda.CreateAlias", {"FunctionName": "getProducts", "Name": "prod"})
    result = run(spec_dir, clients, apply=True)
    assert result.failed
    by_resource = {o.action.resource: o for o in result.outcomes}
    failed = by_resource["lambda_alias/getProducts/prod"]
    assert failed.status is OutcomeStatus.FAILED
    assert "AccessDeniedException: injected: not allowed" in failed.error
    # Everything that needs that alias, directly or not, was skipped and says why.
    for dependent in (
        "lambda_permission/getProducts/prod/products-v1",
        "rest_stage/products-v1/prod",
        "base_path_mapping/myapi.com/v1",
    ):
        assert by_resource[dependent].status is OutcomeStatus.SKIPPED, dependent
        assert "did not converge" in by_resource[dependent].error
    # The rest went on.
    succeeded = {r for r, o in by_resource.items() if o.status is OutcomeStatus.SUCCEEDED}
    assert len(succeeded) == len(result.plan.actions) - 4
    assert "base_path_mapping/dev.myapi.com/v1" in succeeded and "rest_stage/products-v1/dev" in succeeded
    assert result.api_calls["apigateway.CreateStage"] == 9 - 1

    clients.client("lambda").meta.events.unregister("provide-client-params.lambda.CreateAlias", handler)
    second = run(spec_dir, clients, apply=True)
    assert not second.failed
    assert sorted(o.action.resource for o in second.outcomes) == sorted(
        [
            "lambda_alias/getProducts/prod",
            "lambda_permission/getProducts/prod/products-v1",
            "rest_stage/products-v1/prod",
            "base_path_mapping/myapi.com/v1",
        ]
    )
    assert run(spec_dir, clients).in_sync


def test_partial_failure_cli_report_and_exit_code(estate, clients, spec_dir, capsys):
    _fail_on(clients, "apigateway.CreateBasePathMapping", {"domainName": "myapi.com", "basePath": "v2"})
    # main() builds its own clients, so inject through a session-wide hook instead.
    import boto3

    session_handler_calls = []

    def handler(params, model, **_):
        if params.get("domainName") == "myapi.com" and params.get("basePath") == "v2":
            session_handler_calls.append(1)
            raise botocore.exceptions.ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, model.name)

    original = boto3.session.Session.client

    def client_with_fault(self, *args, **kwargs):
        made = original(self, *args, **kwargs)
        made.meta.events.register("provide-client-params.apigateway.CreateBasePathMapping", handler)
        return made

    boto3.session.Session.client = client_with_fault
    try:
        code = main(["apply", "--spec", str(spec_dir)])
    finally:
        boto3.session.Session.client = original
    out = capsys.readouterr().out
    assert code == 1 and session_handler_calls
    assert "failed    apigateway.CreateBasePathMapping  base_path_mapping/myapi.com/v2: CreateBasePathMapping: TooManyRequestsException: slow down" in out
    assert "Apply: 38/39 succeeded" in out
    assert "Not converged" in out
    assert main(["apply", "--spec", str(spec_dir)]) == 0
    assert main(["plan", "--spec", str(spec_dir)]) == 0
