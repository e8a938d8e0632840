"""Header- and media-type-selected versions against moto: what apply builds, and what it keeps in sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.aws.clients import write_calls
from controller.model import DriftStatus
from controller.spec import SpecInvalid, load_spec
from controller.versions import STAGE_DEFAULT_VAR, STAGE_VERSIONS_VAR, UNKNOWN_ALIAS
from tests.conftest import run


def _api_id(clients, name):
    return next(a["id"] for a in clients.apigateway.get_rest_apis()["items"] if a["name"] == name)


def _resource_id(clients, api, path):
    return next(r["id"] for r in clients.apigateway.get_resources(restApiId=api)["items"] if r["path"] == path)


def _edit(spec_dir: Path, name: str, change) -> None:
    path = spec_dir / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _statements(clients, function, alias):
    arn = clients.lambda_.get_alias(FunctionName=function, Name=alias)["AliasArn"]
    policy = json.loads(clients.lambda_.get_policy(FunctionName=function, Qualifier=alias)["Policy"])
    return [s for s in policy["Statement"] if s["Resource"] == arn]


def test_apply_builds_aliases_permissions_integration_responses_deployment_and_stages(converged, clients):
    lam, apigw = clients.lambda_, clients.apigateway
    # An alias per dated version, pinned as the catalogue says, each invokable from the API.
    assert lam.get_alias(FunctionName="postUser", Name="2022-01-01")["FunctionVersion"] == "1"
    assert lam.get_alias(FunctionName="postUser", Name="2022-05-03")["FunctionVersion"] == "2"
    assert lam.get_alias(FunctionName="postUser", Name="2022-11-01")["FunctionVersion"] == "$LATEST"
    api = _api_id(clients, "users-api")
    for alias, stage in (("2022-01-01", "*"), ("2022-05-03", "*"), ("2022-11-01", "dev")):
        (statement,) = _statements(clients, "postUser", alias)
        assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":{api}/{stage}/*/*")
    # The method: an AWS Lambda integration whose alias the template chooses per request.
    resource = _resource_id(clients, api, "/users")
    integration = apigw.get_integration(restApiId=api, resourceId=resource, httpMethod="POST")
    assert integration["type"] == "AWS"
    assert integration["uri"].endswith(":function:postUser:{alias}/invocations")
    assert integration["requestParameters"] == {"integration.request.path.alias": f"'{UNKNOWN_ALIAS}'"}
    assert "requestOverride.path.alias" in integration["requestTemplates"]["application/json"]
    # One integration response, the default: an unserved version is a DryRun answered 400 by its template.
    responses = integration["integrationResponses"]
    assert sorted(responses) == ["200"] and not responses["200"].get("selectionPattern")
    assert "X-Amz-Invocation-Type" in integration["requestTemplates"]["application/json"]
    method = apigw.get_method(restApiId=api, resourceId=resource, httpMethod="POST")
    assert sorted(method["methodResponses"]) == ["200", "400", "500"]
    # Each stage lists the versions it exposes, and serves a deployment holding the integration.
    stages = {s["stageName"]: s for s in apigw.get_stages(restApiId=api)["item"]}
    assert stages["prod"]["variables"] == {STAGE_VERSIONS_VAR: "2022-01-01,2022-05-03", STAGE_DEFAULT_VAR: "2022-01-01"}
    assert stages["dev"]["variables"][STAGE_VERSIONS_VAR] == "2022-01-01,2022-05-03,2022-11-01"
    deployments = {d["id"]: d for d in apigw.get_deployments(restApiId=api)["items"]}
    assert stages["prod"]["deploymentId"] == stages["dev"]["deploymentId"]
    assert deployments[stages["prod"]["deploymentId"]]["description"].startswith("pointsman ")
    # The media-type API likewise.
    catalog = _api_id(clients, "catalog-api")
    (prod,) = apigw.get_stages(restApiId=catalog)["item"]
    assert prod["variables"] == {STAGE_VERSIONS_VAR: "v1,v2", STAGE_DEFAULT_VAR: "v1"}
    assert lam.get_alias(FunctionName="listItems", Name="v2")["FunctionVersion"] == "2"


def test_second_apply_makes_no_write(converged, clients, spec_dir):
    again = run(spec_dir, clients, apply=True)
    assert again.in_sync, [d.as_dict() for d in again.drift]
    assert write_calls(again.api_calls) == {}


def test_exposing_a_version_on_prod_writes_only_what_it_needs_and_no_deployment(converged, clients, spec_dir):
    _edit(spec_dir, "users.yaml", lambda d: d["rest_apis"]["users-api"]["versions"]["catalogue"]["2022-11-01"].pop("stages"))
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    # The permission widens make-before-break; the stage's list grows; nothing is redeployed.
    assert write_calls(applied.api_calls) == {"lambda.AddPermission": 1, "apigateway.UpdateStage": 1, "lambda.RemovePermission": 1}
    api = _api_id(clients, "users-api")
    prod = clients.apigateway.get_stage(restApiId=api, stageName="prod")
    assert prod["variables"][STAGE_VERSIONS_VAR] == "2022-01-01,2022-05-03,2022-11-01"
    assert run(spec_dir, clients).in_sync


def test_console_edit_of_a_generated_template_is_drift_and_is_healed(converged, clients, spec_dir):
    api = _api_id(clients, "users-api")
    resource = _resource_id(clients, api, "/users")
    clients.apigateway.put_integration_response(
        restApiId=api,
        resourceId=resource,
        httpMethod="POST",
        statusCode="200",
        responseTemplates={"application/json": '{"message": "edited in the console"}'},
    )
    result = run(spec_dir, clients)
    (drift,) = result.drift
    assert (drift.resource, drift.status) == ("rest_method/users-api/POST/users", DriftStatus.MODIFIED)
    (change,) = drift.changes
    assert change.field == "response.200.template" and change.live == '{"message": "edited in the console"}'
    (action,) = result.plan.actions
    assert "generated template differs: response.200.template" in action.reason
    healed = run(spec_dir, clients, apply=True)
    # Only that response is written again; the deployment holding the generated integration is still live.
    assert write_calls(healed.api_calls) == {"apigateway.PutIntegrationResponse": 1}
    assert run(spec_dir, clients).in_sync


def test_a_console_deployment_moves_the_stages_back_without_a_new_deployment(converged, clients, spec_dir):
    api = _api_id(clients, "users-api")
    ours = clients.apigateway.get_stage(restApiId=api, stageName="prod")["deploymentId"]
    clicked = clients.apigateway.create_deployment(restApiId=api, description="deployed by hand")["id"]
    clients.apigateway.update_stage(restApiId=api, stageName="prod", patchOperations=[{"op": "replace", "path": "/deploymentId", "value": clicked}])
    result = run(spec_dir, clients)
    (drift,) = result.drift
    assert drift.resource == "rest_stage/users-api/prod"
    assert [(c.field, c.live, c.desired) for c in drift.changes] == [("deployment", clicked, ours)]
    healed = run(spec_dir, clients, apply=True)
    assert write_calls(healed.api_calls) == {"apigateway.UpdateStage": 1}
    assert clients.apigateway.get_stage(restApiId=api, stageName="prod")["deploymentId"] == ours


def test_a_changed_integration_is_deployed_once_per_api_and_stages_move_to_it(converged, clients, spec_dir):
    # Another header name changes the generated templates: methods, one deployment, both stages move.
    _edit(spec_dir, "users.yaml", lambda d: d["rest_apis"]["users-api"]["versions"].update(header="X-Api-Version"))
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    writes = write_calls(applied.api_calls)
    assert writes["apigateway.CreateDeployment"] == 1
    assert writes["apigateway.UpdateStage"] == 2
    order = [o.action.operation.split(" + ")[0] for o in applied.outcomes]
    assert order.index("apigateway.PutIntegration") < order.index("apigateway.CreateDeployment") < order.index("apigateway.UpdateStage")
    assert run(spec_dir, clients).in_sync


def test_create_deployment_throttled_once_is_retried(converged, clients, spec_dir):
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any):
            yield self.body

    throttled: list[str] = []

    def answer_429_once(request: Any, **_: Any) -> AWSResponse | None:
        if request.method == "POST" and request.url.endswith("/deployments") and not throttled:
            throttled.append(request.url)
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}
            return AWSResponse(request.url, 429, headers, _Raw(b'{"message": "Too Many Requests"}'))
        return None

    clients.apigateway.meta.events.register_first("before-send.api-gateway.CreateDeployment", answer_429_once)
    _edit(spec_dir, "users.yaml", lambda d: d["rest_apis"]["users-api"]["versions"].update(header="X-Api-Version"))
    applied = run(spec_dir, clients, apply=True)
    assert throttled, "the injected 429 was not sent"
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    assert write_calls(applied.api_calls)["apigateway.CreateDeployment"] == 1  # counted once per request, retried inside


def test_retiring_a_version_removes_its_alias_only_with_prune(converged, clients, spec_dir):
    _edit(spec_dir, "users.yaml", lambda d: d["rest_apis"]["users-api"]["versions"]["catalogue"].pop("2022-11-01"))
    kept = run(spec_dir, clients, apply=True)
    assert not kept.failed
    clients.lambda_.get_alias(FunctionName="postUser", Name="2022-11-01")  # still there
    assert "lambda_alias/postUser/2022-11-01" in [d.resource for d in kept.plan.not_pruned]
    pruned = run(spec_dir, clients, apply=True, prune=True)
    assert not pruned.failed, [o.as_dict() for o in pruned.outcomes]
    with pytest.raises(clients.lambda_.exceptions.ResourceNotFoundException):
        clients.lambda_.get_alias(FunctionName="postUser", Name="2022-11-01")


def _spec_with(tmp_path: Path, api: dict[str, Any], functions: dict[str, Any] | None = None) -> Path:
    (tmp_path / "s").mkdir()
    doc: dict[str, Any] = {"rest_apis": {"users-api": api}}
    if functions:
        doc["functions"] = functions
    (tmp_path / "s" / "api.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path / "s"


VERSIONS = {
    "header": "Version",
    "default": "2022-01-01",
    "routes": [{"method": "POST", "path": "/users", "function": "postUser"}],
    "catalogue": {"2022-01-01": {"functions": {"postUser": 1}}, "2022-05-03": {"functions": {"postUser": 2}, "stages": ["dev"]}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v.pop("header"), "versions need exactly one of header or media_type"),
        (lambda v: v.update(media_type="application/vnd.acme"), "versions need exactly one of header or media_type"),
        (lambda v: v.update(default="2021-01-01"), "default version 2021-01-01 is not in the catalogue"),
        (lambda v: v["catalogue"]["2022-05-03"].update(functions={}), "version 2022-05-03 names no version of postUser"),
        (lambda v: v["catalogue"]["2022-05-03"].update(stages=["qa"]), "stage 'qa' is not declared for REST API 'users-api'"),
        (lambda v: v.update(default="2022-05-03"), "stage prod does not expose the default version 2022-05-03"),
        (lambda v: v["routes"].append(dict(v["routes"][0])), "route POST /users is listed twice"),
        (lambda v: v["routes"][0].update(method="FETCH"), "method 'FETCH' is not one of"),
        (lambda v: v.update(proxy="unmanaged"), "proxy: unmanaged needs strategy: http-proxy"),
        (lambda v: v.update(proxy="unmanaged", strategy="http-proxy"), "with proxy: unmanaged, the proxy routes' own templates decide"),
        (lambda v: v.update(proxy="handmade"), "proxy"),
        (lambda v: v["catalogue"]["2022-05-03"].update(description="x" * 257), "description"),
    ],
)
def test_versions_spec_errors(tmp_path: Path, change, message: str) -> None:
    versions = json.loads(json.dumps(VERSIONS))
    change(versions)
    spec_dir = _spec_with(tmp_path, {"stages": {"prod": {}, "dev": {}}, "versions": versions})
    with pytest.raises(SpecInvalid) as caught:
        load_spec(spec_dir)
    assert any(message in str(p) and str(p).startswith(str(spec_dir / "api.yaml") + ":") for p in caught.value.problems), caught.value.problems


def test_versions_may_not_also_be_declared_by_hand(tmp_path: Path) -> None:
    stages = {"prod": {"variables": {STAGE_VERSIONS_VAR: "x"}}, "dev": {}}
    spec_dir = _spec_with(tmp_path, {"stages": stages, "versions": VERSIONS}, {"postUser": {"aliases": {"2022-01-01": {"version": 3}}}})
    with pytest.raises(SpecInvalid) as caught:
        load_spec(spec_dir)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert f"{STAGE_VERSIONS_VAR} is set from rest_apis.users-api.versions; remove it here" in text
    assert "alias postUser:2022-01-01 is declared at" in text and "generated by an API version here" in text


def test_an_unmanaged_proxy_sets_no_stage_variable_and_the_catalogue_names_the_aliases_description(tmp_path: Path) -> None:
    versions = {**json.loads(json.dumps(VERSIONS)), "strategy": "http-proxy", "proxy": "unmanaged"}
    versions["catalogue"]["2022-05-03"] = {"functions": {"postUser": 2}, "description": ""}
    spec = load_spec(_spec_with(tmp_path, {"stages": {"prod": {"variables": {"stageName": "prod"}}, "dev": {}}, "versions": versions}))
    assert spec.rest_apis["users-api"].spec.stages["prod"].variables == {"stageName": "prod"}
    assert spec.rest_apis["users-api"].spec.stages["dev"].variables == {}
    aliases = spec.functions["postUser"].spec.aliases
    assert (aliases["2022-01-01"].description, aliases["2022-05-03"].description) == ("users-api API version 2022-01-01", "")


def test_dates_unquoted_are_version_names(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "api.yaml").write_text(
        "rest_apis:\n  users-api:\n    stages: {prod: {}}\n    versions:\n      header: Version\n      default: 2022-01-01\n"
        "      routes: [{method: post, path: /users, function: postUser}]\n"
        "      catalogue:\n        2022-01-01: {functions: {postUser: 1}}\n"
    )
    spec = load_spec(tmp_path / "s")
    assert spec.functions["postUser"].spec.aliases["2022-01-01"].version == "1"
    assert spec.rest_apis["users-api"].spec.stages["prod"].variables == {STAGE_VERSIONS_VAR: "2022-01-01", STAGE_DEFAULT_VAR: "2022-01-01"}
    assert spec.rest_apis["users-api"].spec.versions.routes[0].method == "POST"
