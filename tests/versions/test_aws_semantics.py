"""The lambda strategy's generated methods under AWS's documented semantics (tests/aws_model.py).

For served, default, unserved and malformed versions, by header and by media type: the exact
call (alias, invocation type, whether any code runs) and the exact response (status, body) the
client gets; function errors and answers that are not proxy-shaped; and the earlier templates,
whose 400 depended on a Lambda 404 reaching a selection pattern, which AWS never does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller import versions as versioning
from controller.aws.clients import write_calls
from controller.model import DriftStatus
from controller.versions import STAGE_DEFAULT_VAR, STAGE_VERSIONS_VAR, Selector
from tests.aws_model import INTERNAL_ERROR, FunctionError, LambdaFunction, call_method, status_selection
from tests.conftest import run

HEADER = Selector(header="Version")
MEDIA = Selector(media_type="application/vnd.acme")
PROD = {STAGE_VERSIONS_VAR: "2022-01-01,2022-05-03", STAGE_DEFAULT_VAR: "2022-01-01"}
DEV = {STAGE_VERSIONS_VAR: "2022-01-01,2022-05-03,2022-11-01", STAGE_DEFAULT_VAR: "2022-05-03"}
MEDIA_STAGE = {STAGE_VERSIONS_VAR: "v1,v2", STAGE_DEFAULT_VAR: "v1"}
OLD_TEMPLATES = json.loads((Path(__file__).parent / "data" / "lambda_strategy_v1" / "templates.json").read_text())


def _echo(event: dict[str, Any]) -> dict[str, Any]:
    """A function written for this integration: answers which version served it."""
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"version": event["requestContext"]["apiVersion"]})}


def _function(versions: list[str], handler: Any = _echo) -> LambdaFunction:
    return LambdaFunction(aliases=set(versions), invokable=set(versions), handler=handler)


def _method(selector: Selector) -> tuple[str, dict[str, dict[str, object]]]:
    return versioning.request_template(selector), versioning.integration_responses(selector)


def _version_error(requested: str, stage: dict[str, str]) -> dict[str, Any]:
    return {
        "message": f"API version '{requested}' is not supported on this stage",
        "requested": requested,
        "supported": versioning.stage_versions(stage),
        "default": versioning.stage_default(stage),
    }


HEADER_CASES = [
    # (id, headers, stage, served version or None, requested after defaulting)
    ("served", {"Version": "2022-05-03"}, PROD, "2022-05-03", "2022-05-03"),
    ("served-other-case-name", {"vErSiOn": " 2022-05-03 "}, PROD, "2022-05-03", "2022-05-03"),
    ("default", {}, PROD, "2022-01-01", "2022-01-01"),
    ("default-empty-header", {"Version": ""}, PROD, "2022-01-01", "2022-01-01"),
    ("default-on-dev", {}, DEV, "2022-05-03", "2022-05-03"),
    ("dev-only-on-dev", {"Version": "2022-11-01"}, DEV, "2022-11-01", "2022-11-01"),
    ("unserved-unknown", {"Version": "2099-01-01"}, PROD, None, "2099-01-01"),
    ("unserved-dev-only-on-prod", {"Version": "2022-11-01"}, PROD, None, "2022-11-01"),
    ("malformed-quotes", {"Version": 'x"y\\z'}, PROD, None, 'x"y\\z'),
    ("malformed-vtl", {"Version": "$context.stage#set($x = 1)"}, PROD, None, "$context.stage#set($x = 1)"),
    ("malformed-list", {"Version": "2022-01-01,2022-05-03"}, PROD, None, "2022-01-01,2022-05-03"),
    ("malformed-unicode", {"Version": "2022-05-03\u00e9"}, PROD, None, "2022-05-03\u00e9"),
    ("malformed-the-reserved-alias", {"Version": versioning.UNKNOWN_ALIAS}, PROD, None, versioning.UNKNOWN_ALIAS),
]


@pytest.mark.parametrize(("case", "headers", "stage", "served", "requested"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_header_versions_the_call_and_the_answer(case: str, headers: dict[str, str], stage: dict[str, str], served: str | None, requested: str) -> None:
    function = _function(versioning.stage_versions(DEV))
    template, responses = _method(HEADER)
    answer = call_method(template, responses, function, headers=headers, body='{"name": "Ada"}', stage_variables=stage)
    if served is not None:
        assert (answer.alias, answer.invocation_type, answer.ran) == (served, None, True)
        assert (answer.status, answer.body) == (200, {"version": served})
        assert function.invocations == [(served, "RequestResponse")]
    else:
        # A DryRun of the stage's default alias: Lambda checks it, no code runs; the default response answers 400.
        assert (answer.alias, answer.invocation_type, answer.ran) == (stage[STAGE_DEFAULT_VAR], "DryRun", False)
        assert function.invocations == [(stage[STAGE_DEFAULT_VAR], "DryRun")] and function.runs == []
        assert answer.response == "200"
        assert (answer.status, answer.body) == (400, _version_error(requested, stage))


MEDIA_CASES = [
    ("served", "application/vnd.acme.v2+json", "v2", "v2"),
    ("served-upper-case", "APPLICATION/VND.ACME.V2+JSON; charset=utf-8", "v2", "v2"),
    ("default-json", "application/json", "v1", "v1"),
    ("default-none", None, "v1", "v1"),
    ("unserved", "application/vnd.acme.v9+json", None, "v9"),
    ("malformed", 'application/vnd.acme.v"2+json', None, 'v"2'),
]


@pytest.mark.parametrize(("case", "accept", "served", "requested"), MEDIA_CASES, ids=[c[0] for c in MEDIA_CASES])
def test_media_type_versions_the_call_and_the_answer(case: str, accept: str | None, served: str | None, requested: str) -> None:
    function = _function(["v1", "v2"])
    template, responses = _method(MEDIA)
    headers = {} if accept is None else {"Accept": accept}
    answer = call_method(template, responses, function, headers=headers, stage_variables=MEDIA_STAGE)
    if served is not None:
        assert (answer.alias, answer.invocation_type, answer.ran, answer.status, answer.body) == (served, None, True, 200, {"version": served})
    else:
        assert (answer.alias, answer.invocation_type, answer.ran) == ("v1", "DryRun", False)
        assert (answer.status, answer.body) == (400, _version_error(requested, MEDIA_STAGE))


def test_the_unserved_path_needs_the_default_alias_and_its_permission() -> None:
    """DryRun checks the permission too: Pointsman keeps one for every exposed version, the default included."""
    template, responses = _method(HEADER)
    no_permission = LambdaFunction(aliases={"2022-01-01", "2022-05-03"}, invokable={"2022-05-03"}, handler=_echo)
    answer = call_method(template, responses, no_permission, headers={"Version": "2099-01-01"}, stage_variables=PROD)
    assert (answer.status, answer.body, answer.response) == (500, INTERNAL_ERROR, None)
    # A stage whose default is not listed falls back to the first listed version; one that lists none has nothing to call.
    odd = {STAGE_VERSIONS_VAR: "2022-05-03", STAGE_DEFAULT_VAR: "2022-01-01"}
    answer = call_method(template, responses, _function(["2022-05-03"]), headers={"Version": "2099-01-01"}, stage_variables=odd)
    assert (answer.alias, answer.invocation_type, answer.status) == ("2022-05-03", "DryRun", 400)
    answer = call_method(template, responses, _function(["2022-05-03"]), headers={"Version": "2099-01-01"}, stage_variables={})
    assert (answer.alias, answer.status, answer.body) == (versioning.UNKNOWN_ALIAS, 500, INTERNAL_ERROR)


def _failing(message: str) -> Any:
    def handler(event: dict[str, Any]) -> Any:
        raise FunctionError(message)

    return handler


@pytest.mark.parametrize(
    ("handler", "status", "body"),
    [
        (_failing("Cannot read properties of undefined (reading 'id')"), 500, INTERNAL_ERROR),
        (_failing("404 without a colon"), 500, INTERNAL_ERROR),
        (_failing("404: no such user"), 404, {"message": "no such user"}),
        (_failing("409: version 2022-05-03 of this user is newer"), 409, {"message": "version 2022-05-03 of this user is newer"}),
        (lambda event: {"id": 1, "name": "Ada"}, 500, INTERNAL_ERROR),  # written for another integration: not proxy-shaped
        (lambda event: "a bare string", 500, INTERNAL_ERROR),
        (lambda event: None, 500, INTERNAL_ERROR),
        (lambda event: {"statusCode": 201, "body": {"id": 1}}, 201, {"id": 1}),
        (lambda event: {"statusCode": 404, "body": '{"message": "no such user"}'}, 404, {"message": "no such user"}),
    ],
    ids=["error", "error-no-colon", "error-404", "error-409", "non-proxy-object", "non-proxy-string", "null", "proxy-201", "proxy-404"],
)
def test_a_served_version_answers_with_what_the_function_did(handler: Any, status: int, body: Any) -> None:
    function = _function(["2022-01-01", "2022-05-03"], handler)
    template, responses = _method(HEADER)
    answer = call_method(template, responses, function, headers={"Version": "2022-05-03"}, stage_variables=PROD)
    assert answer.ran and answer.alias == "2022-05-03"
    assert (answer.status, answer.body) == (status, body)


def test_a_served_version_whose_alias_is_missing_is_a_500_before_any_template() -> None:
    template, responses = _method(HEADER)
    answer = call_method(template, responses, _function(["2022-01-01"]), headers={"Version": "2022-05-03"}, stage_variables=PROD)
    assert (answer.status, answer.body, answer.response, answer.ran) == (500, INTERNAL_ERROR, None, False)


@pytest.mark.parametrize("selection_rule", ["error message (AWS, Lambda)", "status code (HTTP backends)"])
def test_the_400_no_longer_depends_on_how_selection_patterns_are_matched(selection_rule: str) -> None:
    """Fed to either rule, the unserved version gets the same 400: no function error, no pattern, the default response."""
    template, responses = _method(HEADER)
    kwargs: dict[str, Any] = {"selection": status_selection} if selection_rule.startswith("status") else {}
    answer = call_method(template, responses, _function(["2022-01-01", "2022-05-03"]), headers={"Version": "2099-01-01"}, stage_variables=PROD, **kwargs)
    assert (answer.status, answer.body) == (400, _version_error("2099-01-01", PROD))


def test_the_earlier_templates_answered_500_on_aws() -> None:
    """Their 400 needed Lambda's 404 to reach the 4\\d{2} pattern. On AWS the rejected invoke is a 500 before any
    integration response; and even a Lambda error's message ("Function not found: ...") never matches 4\\d{2}."""
    old = OLD_TEMPLATES["header-Version"]
    function = _function(["2022-01-01", "2022-05-03"])
    answer = call_method(old["request_template"], old["integration_responses"], function, headers={"Version": "2099-01-01"}, stage_variables=PROD)
    assert answer.alias == versioning.UNKNOWN_ALIAS
    assert (answer.status, answer.body, answer.response) == (500, INTERNAL_ERROR, None)
    # Only under the status-code rule, which AWS does not apply to Lambda, did they answer 400 (had API Gateway passed the 404 on).
    from tests.aws_model import LambdaAnswer, error_message_selection

    not_found = LambdaAnswer(404, '{"Message": "Function not found", "Type": "User"}', function_error="Function not found: ...:pointsman-unknown-version")
    assert status_selection(old["integration_responses"], not_found) == "400"
    assert error_message_selection(old["integration_responses"], not_found) == "200"


# ---------------------------------------------------------------------------------------------
# An estate applied with the earlier templates converges (moto)
# ---------------------------------------------------------------------------------------------


def _method_ids(clients: Any, api_name: str, path: str) -> tuple[str, str]:
    api = next(a["id"] for a in clients.apigateway.get_rest_apis()["items"] if a["name"] == api_name)
    resource = next(r["id"] for r in clients.apigateway.get_resources(restApiId=api)["items"] if r["path"] == path)
    return api, resource


def _write_old_method(clients: Any, api: str, resource: str, http_method: str, templates: dict[str, Any]) -> None:
    """What an earlier Pointsman wrote on a versioned method: its request template and 200/4XX/5XX responses."""
    integration = clients.apigateway.get_integration(restApiId=api, resourceId=resource, httpMethod=http_method)
    clients.apigateway.put_integration(
        restApiId=api,
        resourceId=resource,
        httpMethod=http_method,
        type="AWS",
        integrationHttpMethod="POST",
        uri=integration["uri"],
        requestParameters=integration["requestParameters"],
        requestTemplates={"application/json": templates["request_template"]},
        passthroughBehavior="WHEN_NO_TEMPLATES",
    )
    for code, response in sorted(templates["integration_responses"].items()):
        extra = {"selectionPattern": response["selectionPattern"]} if response["selectionPattern"] else {}
        clients.apigateway.put_integration_response(
            restApiId=api,
            resourceId=resource,
            httpMethod=http_method,
            statusCode=code,
            responseTemplates={"application/json": response["template"]},
            **extra,
        )


def test_an_estate_with_the_earlier_templates_is_modified_drift_and_converges(converged: Any, clients: Any, spec_dir: Path) -> None:
    methods = [("users-api", "/users", "POST", "header-Version"), ("catalog-api", "/items", "GET", "media-application-vnd.acme")]
    for api_name, path, http_method, key in methods:
        api, resource = _method_ids(clients, api_name, path)
        _write_old_method(clients, api, resource, http_method, OLD_TEMPLATES[key])
        # The stages serve a deployment of those templates; none holds today's generated configuration.
        old = clients.apigateway.create_deployment(restApiId=api, description="pointsman 0123456789abcdef")["id"]
        for stage in clients.apigateway.get_stages(restApiId=api)["item"]:
            clients.apigateway.update_stage(
                restApiId=api, stageName=stage["stageName"], patchOperations=[{"op": "replace", "path": "/deploymentId", "value": old}]
            )
        for deployment in clients.apigateway.get_deployments(restApiId=api)["items"]:
            if deployment["id"] != old:
                clients.apigateway.delete_deployment(restApiId=api, deploymentId=deployment["id"])
    clients.counter.reset()
    planned = run(spec_dir, clients)
    drifted = {d.resource: d for d in planned.drift if d.kind == "rest_method"}
    assert set(drifted) == {"rest_method/users-api/POST/users", "rest_method/catalog-api/GET/items"}, sorted(drifted)
    assert {d.resource for d in planned.drift if d.kind == "rest_deployment"} == {"rest_deployment/users-api", "rest_deployment/catalog-api"}
    for drift in drifted.values():
        assert drift.status == DriftStatus.MODIFIED
        assert {c.field for c in drift.changes} >= {"integration.request_template", "integration_responses", "response.200.template"}
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    writes = write_calls(applied.api_calls)
    # Per method one PutIntegration and one PutIntegrationResponse; per API one deployment, and its stages move to it.
    assert writes["apigateway.PutIntegration"] == 2 and writes["apigateway.PutIntegrationResponse"] == 2
    assert writes["apigateway.CreateDeployment"] == 2
    assert set(writes) == {"apigateway.PutIntegration", "apigateway.PutIntegrationResponse", "apigateway.CreateDeployment", "apigateway.UpdateStage"}
    for api_name, path, http_method, _ in methods:
        api, resource = _method_ids(clients, api_name, path)
        live = clients.apigateway.get_integration(restApiId=api, resourceId=resource, httpMethod=http_method)
        assert sorted(live["integrationResponses"]) == ["200"]
    again = run(spec_dir, clients, apply=True)
    assert again.in_sync and write_calls(again.api_calls) == {}


def test_a_stale_integration_response_alone_is_deleted(converged: Any, clients: Any, spec_dir: Path) -> None:
    """Without a PutIntegration (which drops them), a response the generator no longer writes is deleted."""
    api, resource = _method_ids(clients, "users-api", "/users")
    clients.apigateway.put_method_response(restApiId=api, resourceId=resource, httpMethod="POST", statusCode="400")
    clients.apigateway.put_integration_response(restApiId=api, resourceId=resource, httpMethod="POST", statusCode="400", selectionPattern="4\\d{2}")
    planned = run(spec_dir, clients)
    (drift,) = planned.drift
    assert [(c.field, c.live, c.desired) for c in drift.changes] == [("integration_responses", ["200", "400"], ["200"])]
    applied = run(spec_dir, clients, apply=True)
    assert write_calls(applied.api_calls) == {"apigateway.DeleteIntegrationResponse": 1}
    assert sorted(clients.apigateway.get_integration(restApiId=api, resourceId=resource, httpMethod="POST")["integrationResponses"]) == ["200"]
    assert run(spec_dir, clients).in_sync
