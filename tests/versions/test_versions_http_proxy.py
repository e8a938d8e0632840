"""Strategy http-proxy: a proxy route in front of path-versioned routes, adopted and kept in sync."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from controller import versions as versioning
from controller.aws.clients import write_calls
from controller.demo.estate import alias_uri
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
        restApiId=api,
        resourceId=old,
        httpMethod="POST",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=alias_uri("us-east-1", arn).replace("${stageVariables.lambdaAlias}", "2022-01-01"),
    )
    apigw.create_deployment(restApiId=api, description="by the team's tooling")
    return api, users


def _spec(tmp_path: Path, catalogue: dict, *, path: str = "/users", default: str = "2022-01-01") -> Path:
    spec_dir = tmp_path / "proxy-spec"
    spec_dir.mkdir(exist_ok=True)
    doc = {
        "rest_apis": {
            "users-proxy": {
                "stages": {"prod": {"description": "production"}},
                "versions": {
                    "strategy": "http-proxy",
                    "header": "Version",
                    "default": default,
                    "routes": [{"method": "POST", "path": path, "function": "postUser"}],
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
        capsys,
        "explain",
        "--desired",
        "--spec",
        str(spec_dir),
        "--format",
        "json",
        "--api",
        "users-proxy",
        "--stage",
        "prod",
        "POST",
        "/users",
        "-H",
        "Version: 2022-11-01",
    )
    desired = json.loads(out)
    assert code == 0, desired
    assert desired["served_by"]["alias"] == "2022-11-01"


FORWARDED_REQUEST = {
    "Version": "2022-05-03",
    "Authorization": "Bearer abc",
    "x-api-key": "key-1",
    "X-Request-Tag": "blue",
    "Host": "api.example.com",
    "Connection": "keep-alive",
    "Content-Length": "17",
    "Transfer-Encoding": "chunked",
}


def test_proxy_template_forwards_headers_and_query_string_but_not_hop_by_hop_ones() -> None:
    template = versioning.proxy_request_template(SELECTOR)
    rendered = versioning.render_request(template, headers=FORWARDED_REQUEST, query={"page": "2", "q": "a b"}, body='{"username": "a"}', stage_variables=STAGES)
    override = rendered.request_override
    assert override["header"] == {"Version": "2022-05-03", "Authorization": "Bearer abc", "x-api-key": "key-1", "X-Request-Tag": "blue"}
    assert override["querystring"] == {"page": "2", "q": "a b"}
    assert override["path"] == {versioning.VERSION_PARAM: "2022-05-03"}
    assert rendered.output == '{"username": "a"}'
    # Dropped whatever their letter case; nothing to forward is no override at all.
    bare = versioning.render_request(template, headers={"HOST": "x", "keep-alive": "5", "Upgrade": "h2c"}, stage_variables=STAGES)
    assert bare.request_override["header"] == {} and bare.request_override["querystring"] == {}
    # The route's path parameters: mapped from the method request, which declares them.
    assert versioning.proxy_request_parameters("/users/{id}") == {
        "integration.request.path.version": f"'{versioning.UNKNOWN_ALIAS}'",
        "integration.request.path.id": "method.request.path.id",
    }
    assert versioning.proxy_method_parameters("/orgs/{org}/users/{id}") == ["method.request.path.org", "method.request.path.id"]


def _proxy_api_with_id(clients) -> tuple[str, str]:
    """POST /users/{id} as a placeholder proxy (no method request parameters declared yet)."""
    apigw = clients.apigateway
    api = apigw.create_rest_api(name="users-proxy")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    users = apigw.create_resource(restApiId=api, parentId=root, pathPart="users")["id"]
    user = apigw.create_resource(restApiId=api, parentId=users, pathPart="{id}")["id"]
    apigw.put_method(restApiId=api, resourceId=user, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=user, httpMethod="POST", type="MOCK", requestTemplates={"application/json": "{}"})
    apigw.create_deployment(restApiId=api, description="by the team's tooling")
    return api, user


def test_proxy_method_declares_its_path_parameters_and_explain_shows_what_is_forwarded(estate, clients, tmp_path, capsys) -> None:
    from tests.conftest import cli

    api, user = _proxy_api_with_id(clients)
    spec_dir = _spec(tmp_path, CATALOGUE, path="/users/{id}")
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    apigw = clients.apigateway
    method = apigw.get_method(restApiId=api, resourceId=user, httpMethod="POST")
    assert method["requestParameters"] == {"method.request.path.id": True}
    assert method["methodIntegration"]["requestParameters"]["integration.request.path.id"] == "method.request.path.id"
    assert method["methodIntegration"]["uri"].endswith("/users/{id}/{version}")
    paths = {r["path"] for r in apigw.get_resources(restApiId=api)["items"]}
    assert {"/users/{id}/2022-01-01", "/users/{id}/2022-05-03"} <= paths
    again = run(spec_dir, clients, apply=True)
    assert again.in_sync and write_calls(again.api_calls) == {}

    # A method that lost the declaration is modified, and UpdateMethod puts it back (before the integration).
    apigw.update_method(
        restApiId=api,
        resourceId=user,
        httpMethod="POST",
        patchOperations=[{"op": "remove", "path": "/requestParameters/method.request.path.id"}],
    )
    drifted = run(spec_dir, clients)
    [drift] = [d for d in drifted.drift if d.resource == "rest_method/users-proxy/POST/users/{id}"]
    assert drift.status.value == "modified" and [c.field for c in drift.changes] == ["method.request_parameters"]
    [action] = [a for a in drifted.plan.actions if a.resource == drift.resource]
    assert [c.method for c in action.calls] == ["update_method"]
    assert action.calls[0].params["patchOperations"] == [{"op": "add", "path": "/requestParameters/method.request.path.id", "value": "true"}]
    healed = run(spec_dir, clients, apply=True)
    assert not healed.failed and write_calls(healed.api_calls) == {"apigateway.UpdateMethod": 1}
    assert apigw.get_method(restApiId=api, resourceId=user, httpMethod="POST")["requestParameters"] == {"method.request.path.id": True}
    assert run(spec_dir, clients).in_sync

    headers = [f"{k}: {v}" for k, v in FORWARDED_REQUEST.items() if k not in ("Content-Length", "Transfer-Encoding")]
    code, out, _ = cli(
        capsys,
        "explain",
        "--format",
        "json",
        "--api",
        "users-proxy",
        "--stage",
        "prod",
        "POST",
        "/users/42?page=2",
        *[arg for header in headers for arg in ("-H", header)],
    )
    served = json.loads(out)
    assert code == 0, served
    assert served["served_by"] == {"function": "postUser", "alias": "2022-05-03", "versions": {"2": 1.0}}
    [hop] = [s["detail"] for s in served["steps"] if s["step"] == "proxy"]
    assert "POST /users/42/2022-05-03" in hop
    assert "headers Version, Authorization, x-api-key, X-Request-Tag;" in hop
    assert "query page=2" in hop and "path id=42" in hop
    assert "Host" not in hop and "Connection" not in hop


def test_disabled_execute_api_endpoint_is_a_problem_for_http_proxy(estate, clients, tmp_path) -> None:
    _proxy_api(clients)
    api = next(a["id"] for a in clients.apigateway.get_rest_apis()["items"] if a["name"] == "users-proxy")
    clients.apigateway.update_rest_api(restApiId=api, patchOperations=[{"op": "replace", "path": "/disableExecuteApiEndpoint", "value": "True"}])
    spec_dir = _spec(tmp_path, CATALOGUE)
    result = run(spec_dir, clients, apply=True)
    assert result.failed and not result.outcomes
    [problem] = [str(p) for p in result.problems]
    assert "disableExecuteApiEndpoint" in problem and "http-proxy" in problem
    line = (spec_dir / "proxy.yaml").read_text().splitlines().index("    versions:") + 1
    assert problem.startswith(f"{spec_dir / 'proxy.yaml'}:{line}: REST API users-proxy"), problem
    assert write_calls(result.api_calls) == {}


RETIRED_ROUTE = "rest_method/users-proxy/POST/users/2022-01-01"
RETIRED_ALIAS = "lambda_alias/postUser/2022-01-01"


def test_a_retired_versions_route_is_pruned_after_the_stages_stop_exposing_it_then_its_alias(estate, clients, tmp_path) -> None:
    api, _ = _proxy_api(clients)
    assert not run(_spec(tmp_path, CATALOGUE), clients, apply=True).failed
    apigw = clients.apigateway
    # 2022-01-01 leaves the catalogue.
    spec_dir = _spec(tmp_path, {"2022-05-03": CATALOGUE["2022-05-03"]}, default="2022-05-03")

    kept = run(spec_dir, clients)
    assert RETIRED_ROUTE in [d.resource for d in kept.plan.not_pruned]
    assert not any(a.deletes for a in kept.plan.actions)

    plan = run(spec_dir, clients, prune=True).plan
    order = [a.resource for a in plan.actions]
    [delete] = [a for a in plan.actions if a.resource == RETIRED_ROUTE]
    assert [c.method for c in delete.calls] == ["delete_method", "delete_resource"]
    # The stage stops listing the version (and moves to the new deployment) first; the route goes after.
    assert "rest_stage/users-proxy/prod" in delete.requires
    assert order.index("rest_deployment/users-proxy") < order.index("rest_stage/users-proxy/prod") < order.index(RETIRED_ROUTE)
    # The alias the route names waits: the deployed snapshot holds the route until the next deployment.
    [held] = [h for h in plan.held if h.action.resource == RETIRED_ALIAS]
    assert RETIRED_ROUTE in held.reason and "next deployment" in held.reason
    assert RETIRED_ALIAS not in order

    first = run(spec_dir, clients, apply=True, prune=True)
    assert not first.failed, [o.as_dict() for o in first.outcomes]
    assert "/users/2022-01-01" not in {r["path"] for r in apigw.get_resources(restApiId=api)["items"]}
    assert apigw.get_stage(restApiId=api, stageName="prod")["variables"][versioning.STAGE_VERSIONS_VAR] == "2022-05-03"
    assert clients.lambda_.get_alias(FunctionName="postUser", Name="2022-01-01")["FunctionVersion"] == "1"

    # Next reconcile: a deployment without the route, the stage moved to it, and only then the alias.
    second = run(spec_dir, clients, prune=True).plan
    order = [a.resource for a in second.actions]
    [alias] = [a for a in second.actions if a.resource == RETIRED_ALIAS]
    assert "rest_stage/users-proxy/prod" in alias.requires
    assert order.index("rest_deployment/users-proxy") < order.index("rest_stage/users-proxy/prod") < order.index(RETIRED_ALIAS)
    assert not [h for h in second.held if h.action.resource == RETIRED_ALIAS]
    applied = run(spec_dir, clients, apply=True, prune=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    assert "2022-01-01" not in {a["Name"] for a in clients.lambda_.list_aliases(FunctionName="postUser")["Aliases"]}
    final = run(spec_dir, clients, prune=True)
    assert final.in_sync, [d.resource for d in final.drift]


def test_a_route_naming_an_alias_holds_it_and_someone_elses_route_is_never_pruned(estate, clients, tmp_path) -> None:
    api, users = _proxy_api(clients)
    assert not run(_spec(tmp_path, CATALOGUE), clients, apply=True).failed
    apigw, lam = clients.apigateway, clients.lambda_
    # A team's own route naming alias 2022-01-01, not shaped like a route behind the proxy.
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    legacy = apigw.create_resource(restApiId=api, parentId=root, pathPart="legacy")["id"]
    apigw.put_method(restApiId=api, resourceId=legacy, httpMethod="GET", authorizationType="NONE")
    arn = lam.get_function(FunctionName="postUser")["Configuration"]["FunctionArn"]
    apigw.put_integration(
        restApiId=api,
        resourceId=legacy,
        httpMethod="GET",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=alias_uri("us-east-1", arn).replace("${stageVariables.lambdaAlias}", "2022-01-01"),
    )
    spec_dir = _spec(tmp_path, {"2022-05-03": CATALOGUE["2022-05-03"]}, default="2022-05-03")
    assert not run(spec_dir, clients, apply=True, prune=True).failed
    assert not run(spec_dir, clients, apply=True, prune=True).failed
    plan = run(spec_dir, clients, prune=True).plan
    assert "rest_method/users-proxy/GET/legacy" not in [a.resource for a in plan.actions]
    [held] = [h for h in plan.held if h.action.resource == RETIRED_ALIAS]
    assert held.reason == "rest_method/users-proxy/GET/legacy still uses it and is not changed by this plan"
    assert lam.get_alias(FunctionName="postUser", Name="2022-01-01")
    assert apigw.get_method(restApiId=api, resourceId=legacy, httpMethod="GET")


def test_a_stage_that_still_exposes_a_retired_version_holds_its_routes_deletion() -> None:
    """A live stage listing the version that this plan does not change (say, its own deletion is held)."""
    from controller.engine.plan import make_plan
    from controller.kinds.rest_method import RestMethod
    from controller.model import Drift, DriftStatus, Resource

    context = {
        "api": "users-proxy",
        "api_id": "a1",
        "resource_id": "r1",
        "method": "POST",
        "path": "/users/2022-01-01",
        "version": "2022-01-01",
        "retired": True,
        "delete_resource": True,
        "users": ("rest_stage/users-proxy/beta",),
    }
    route = Resource("rest_method", "users-proxy/POST/users/2022-01-01", {"integration.type": "AWS_PROXY"}, context)
    alias = Resource("lambda_alias", "postUser/2022-01-01", {"version": "1"}, {"function": "postUser", "alias": "2022-01-01", "users": (route.id,)})
    drifts = [Drift(r.id, r.kind, DriftStatus.EXTRA, live=r) for r in (route, alias)]
    plan = make_plan(drifts, prune=True)
    assert plan.actions == ()
    reasons = {h.action.resource: h.reason for h in plan.held}
    assert reasons == {
        route.id: "rest_stage/users-proxy/beta still uses it and is not changed by this plan",
        alias.id: f"{route.id} still uses it and is not changed by this plan",
    }
    assert [c.method for c in RestMethod().delete(route)[0].calls] == ["delete_method", "delete_resource"]
