"""Strategy http-proxy: a proxy route in front of path-versioned routes, adopted and kept in sync."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from controller import versioning
from controller.aws import write_calls
from controller.estate import alias_uri
from tests.conftest import run

STAGES = {versioning.STAGE_VERSIONS_VAR: "2022-01-01,2022-05-03", versioning.STAGE_DEFAULT_VAR: "2022-01-01", versioning.STAGE_NAME_VAR: "prod"}
SELECTOR = versioning.Selector(header="Version")


def _proxy_api(clients) -> tuple[str, str]:
    """A team's existing setup: POST /users (the proxy, a placeholder for now) and /users/2022-01-01 behind it."""
    apigw, lam = clients.apigateway, clients.lambda_
    api = apigw.create_rest_api(name="users-proxy")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    users = apigw.create_resource(restApiId=api, parentId=root, pathPart="users")["id"]
    apigw.put_method(restApiId=api, resourceId=users, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=users, httpMethod="POST", type="MOCK", requestTemplates={"application/json": "{}"})
    old = apigw.create_resource(restApiId=api, parentId=users, pathPart="2022-01-01")["id"]
    apigw.put_method(restApiId=api, resourceId=old, httpMethod="POST", authorizationType="NONE")
    arn = lam.get_function(FunctionName="postUser")["Configuration"]["FunctionArn"]
    apigw.put_integration(
        restApiId=api, resourceId=old, httpMethod="POST", type="AWS_PROXY", integrationHttpMethod="POST",
        uri=alias_uri("us-east-1", arn).replace("${stageVariables.lambdaAlias}", "2022-01-01"),
    )
    apigw.create_deployment(restApiId=api, description="by the team's tooling")
    return api, users


def _spec(tmp_path: Path, catalogue: dict) -> Path:
    spec_dir = tmp_path / "proxy-spec"
    spec_dir.mkdir(exist_ok=True)
    doc = {
        "rest_apis": {
            "users-proxy": {
                "stages": {"prod": {"description": "production"}},
                "versions": {
                    "strategy": "http-proxy",
                    "header": "Version",
                    "default": "2022-01-01",
                    "routes": [{"method": "POST", "path": "/users", "function": "postUser"}],
                    "catalogue": catalogue,
                },
            }
        }
    }
    (spec_dir / "proxy.yaml").write_text(yaml.safe_dump(doc))
    return spec_dir


CATALOGUE = {"2022-01-01": {"functions": {"postUser": 1}}, "2022-05-03": {"functions": {"postUser": 2}}}


def test_http_proxy_is_adopted_routes_behind_it_are_created_and_kept(estate, clients, tmp_path) -> None:
    api, users = _proxy_api(clients)
    spec_dir = _spec(tmp_path, CATALOGUE)
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    apigw = clients.apigateway
    proxy = apigw.get_integration(restApiId=api, resourceId=users, httpMethod="POST")
    assert proxy["type"] == "HTTP"
    assert proxy["uri"] == f"https://{api}.execute-api.us-east-1.amazonaws.com/${{stageVariables.pointsmanStage}}/users/{{version}}"
    assert "requestOverride.path.version" in proxy["requestTemplates"]["application/json"]
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api)["items"]}
    new = apigw.get_integration(restApiId=api, resourceId=resources["/users/2022-05-03"]["id"], httpMethod="POST")
    assert new["type"] == "AWS_PROXY" and new["uri"].endswith(":function:postUser:2022-05-03/invocations")
    # The route the team already had is adopted as it is: no write for it.
    assert "rest_method/users-proxy/POST/users/2022-01-01" not in [o.action.resource for o in applied.outcomes]
    stage = apigw.get_stage(restApiId=api, stageName="prod")
    assert stage["variables"] == STAGES
    assert clients.lambda_.get_alias(FunctionName="postUser", Name="2022-05-03")["FunctionVersion"] == "2"
    again = run(spec_dir, clients, apply=True)
    assert again.in_sync and write_calls(again.api_calls) == {}

    # A new version: its route behind the proxy (resource, method, integration), one deployment.
    spec_dir = _spec(tmp_path, {**CATALOGUE, "2022-11-01": {"functions": {"postUser": "$LATEST"}}})
    added = run(spec_dir, clients, apply=True)
    assert not added.failed, [o.as_dict() for o in added.outcomes]
    writes = write_calls(added.api_calls)
    assert writes["apigateway.CreateResource"] == 1 and writes["apigateway.CreateDeployment"] == 1
    assert run(spec_dir, clients).in_sync


def test_proxy_templates_pick_the_route_and_answer_400_for_unknown_versions() -> None:
    template = versioning.proxy_request_template(SELECTOR)
    for headers, expected in (({"Version": "2022-05-03"}, "2022-05-03"), ({}, "2022-01-01"), ({"version": "2099-01-01"}, versioning.UNKNOWN_ALIAS)):
        rendered = versioning.render_request(template, headers=headers, body='{"username": "a"}', stage_variables=STAGES)
        assert rendered.request_override["path"][versioning.VERSION_PARAM] == expected
        assert rendered.output.endswith('{"username": "a"}')
    client_error = versioning.proxy_integration_responses(SELECTOR)["400"]["template"]
    unknown = versioning.render_response(client_error, payload={"message": "Forbidden"}, headers={"Version": "2099-01-01"}, stage_variables=STAGES)
    assert json.loads(unknown.output) == {
        "message": "API version '2099-01-01' is not supported on this stage",
        "requested": "2099-01-01",
        "supported": ["2022-01-01", "2022-05-03"],
        "default": "2022-01-01",
    }
    # A served version's own 4XX passes through.
    own = versioning.render_response(client_error, payload={"error": "username taken"}, headers={"Version": "2022-05-03"}, stage_variables=STAGES)
    assert json.loads(own.output) == {"error": "username taken"}


def test_explain_follows_the_proxy_to_the_versioned_route(estate, clients, tmp_path, capsys) -> None:
    from tests.conftest import cli

    _proxy_api(clients)
    spec_dir = _spec(tmp_path, CATALOGUE)
    assert not run(spec_dir, clients, apply=True).failed
    code, out, _ = cli(capsys, "explain", "--format", "json", "--api", "users-proxy", "--stage", "prod", "POST", "/users", "-H", "Version: 2022-05-03")
    served = json.loads(out)
    assert code == 0, served
    assert served["served_by"] == {"function": "postUser", "alias": "2022-05-03", "versions": {"2": 1.0}}
    assert any(s["step"] == "proxy" and "/users/2022-05-03" in s["detail"] for s in served["steps"])
    code, out, _ = cli(capsys, "explain", "--format", "json", "--api", "users-proxy", "--stage", "prod", "POST", "/users", "-H", "version: 2099-01-01")
    refused = json.loads(out)
    assert code == 3 and refused["status"] == 400
    assert refused["body"]["supported"] == ["2022-01-01", "2022-05-03"]
    # From the spec, before it is applied: a new version's route behind the proxy, generated.
    spec_dir = _spec(tmp_path, {**CATALOGUE, "2022-11-01": {"functions": {"postUser": "$LATEST"}}})
    code, out, _ = cli(
        capsys, "explain", "--desired", "--spec", str(spec_dir), "--format", "json",
        "--api", "users-proxy", "--stage", "prod", "POST", "/users", "-H", "Version: 2022-11-01",
    )
    desired = json.loads(out)
    assert code == 0, desired
    assert desired["served_by"]["alias"] == "2022-11-01"
