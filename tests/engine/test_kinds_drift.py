"""Each kind x each drift status against moto in-process: reported right, healed by apply."""

from __future__ import annotations

import json
from pathlib import Path

from controller.aws.clients import AwsClients, write_calls
from controller.model import DriftStatus
from tests.conftest import run


def drift_of(result, resource):
    found = [d for d in result.drift if d.resource == resource]
    assert found, f"no drift for {resource}: {[d.resource for d in result.drift]}"
    return found[0]


def assert_heals(spec_dir: Path, clients: AwsClients, expected_writes: dict[str, int], prune: bool = False):
    applied = run(spec_dir, clients, apply=True, prune=prune)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    assert write_calls(applied.api_calls) == expected_writes
    after = run(spec_dir, clients, prune=prune)
    assert after.in_sync, [d.as_dict() for d in after.drift]
    assert write_calls(after.api_calls) == {}


# ------------------------------------------------------------------ lambda_alias


def test_alias_missing(converged, clients, spec_dir):
    clients.lambda_.delete_alias(FunctionName="getreport", Name="dev")
    result = run(spec_dir, clients)
    d = drift_of(result, "lambda_alias/getreport/dev")
    assert d.status is DriftStatus.MISSING
    assert ("version", None, "$LATEST") in [(c.field, c.live, c.desired) for c in d.changes]
    # The permission on the alias went with it and is missing too.
    assert drift_of(result, "lambda_permission/getreport/dev/getreport-api").status is DriftStatus.MISSING
    assert_heals(spec_dir, clients, {"lambda.CreateAlias": 1, "lambda.AddPermission": 1})


def test_alias_modified_reports_each_field(converged, clients, spec_dir):
    clients.lambda_.update_alias(
        FunctionName="getProducts",
        Name="prod",
        FunctionVersion="2",
        Description="clicked",
        RoutingConfig={"AdditionalVersionWeights": {"3": 0.5}},
    )
    result = run(spec_dir, clients)
    d = drift_of(result, "lambda_alias/getProducts/prod")
    assert d.status is DriftStatus.MODIFIED
    assert {(c.field, str(c.live), str(c.desired)) for c in d.changes} == {
        ("version", "2", "3"),
        ("description", "clicked", "v1 production"),
        ("routing", "{'3': 0.5}", "{}"),
    }
    assert len(result.drift) == 1
    assert_heals(spec_dir, clients, {"lambda.UpdateAlias": 1})
    alias = clients.lambda_.get_alias(FunctionName="getProducts", Name="prod")
    assert alias["FunctionVersion"] == "3" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


def test_alias_extra_is_pruned_only_with_prune(converged, clients, spec_dir):
    clients.lambda_.create_alias(FunctionName="getreport", Name="experiment", FunctionVersion="2")
    result = run(spec_dir, clients, apply=True)
    d = drift_of(result, "lambda_alias/getreport/experiment")
    assert d.status is DriftStatus.EXTRA
    assert [x.resource for x in result.plan.not_pruned] == ["lambda_alias/getreport/experiment"]
    assert write_calls(result.api_calls) == {}
    assert clients.lambda_.get_alias(FunctionName="getreport", Name="experiment")["FunctionVersion"] == "2"
    assert_heals(spec_dir, clients, {"lambda.DeleteAlias": 1}, prune=True)


def test_routing_declared_in_spec_is_applied(converged, clients, spec_dir):
    path = spec_dir / "getreport.yaml"
    path.write_text(path.read_text().replace('prod: {version: "1", description: stable}', 'prod: {version: "1", description: stable, routing: {"2": 0.1}}'))
    result = run(spec_dir, clients)
    d = drift_of(result, "lambda_alias/getreport/prod")
    assert [(c.field, c.live, c.desired) for c in d.changes] == [("routing", {}, {"2": 0.1})]
    assert_heals(spec_dir, clients, {"lambda.UpdateAlias": 1})
    alias = clients.lambda_.get_alias(FunctionName="getreport", Name="prod")
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}


# ------------------------------------------------------------------ lambda_version (publish)


def test_sha256_version_publishes_latest_then_points_alias(converged, clients, spec_dir):
    latest = clients.lambda_.get_function(FunctionName="getreport")["Configuration"]["CodeSha256"]
    path = spec_dir / "getreport.yaml"
    path.write_text(path.read_text().replace('prod: {version: "1"', f'prod: {{version: "sha256:{latest}"'))
    result = run(spec_dir, clients)
    publish = drift_of(result, f"lambda_version/getreport/sha256:{latest}")
    assert publish.status is DriftStatus.MISSING
    ops = [a.operation for a in result.plan.actions]
    assert ops == ["lambda.PublishVersion", "lambda.UpdateAlias"]
    assert result.plan.actions[0].calls[0].params["CodeSha256"] == latest
    assert_heals(spec_dir, clients, {"lambda.PublishVersion": 1, "lambda.UpdateAlias": 1})
    assert clients.lambda_.get_alias(FunctionName="getreport", Name="prod")["FunctionVersion"] == "3"


def test_sha256_of_published_version_resolves_without_publishing(converged, clients, spec_dir):
    versions = clients.lambda_.list_versions_by_function(FunctionName="getreport")["Versions"]
    sha2 = next(v["CodeSha256"] for v in versions if v["Version"] == "2")
    path = spec_dir / "getreport.yaml"
    path.write_text(path.read_text().replace('prod: {version: "1"', f'prod: {{version: "sha256:{sha2}"'))
    result = run(spec_dir, clients)
    assert [(d.resource, [(c.field, c.live, c.desired) for c in d.changes]) for d in result.drift] == [("lambda_alias/getreport/prod", [("version", "1", "2")])]


def test_sha256_nobody_has_is_a_plan_error(converged, clients, spec_dir):
    path = spec_dir / "getreport.yaml"
    bogus = "A" * 43 + "="
    path.write_text(path.read_text().replace('prod: {version: "1"', f'prod: {{version: "sha256:{bogus}"'))
    result = run(spec_dir, clients, apply=True)
    assert result.problems and f"sha256:{bogus}" in str(result.problems[0])
    assert str(result.problems[0]).startswith(f"{path}:7:")
    assert write_calls(result.api_calls) == {}


def test_unpublished_version_is_a_plan_error(converged, clients, spec_dir):
    path = spec_dir / "getreport.yaml"
    path.write_text(path.read_text().replace('prod: {version: "1"', 'prod: {version: "9"'))
    result = run(spec_dir, clients, apply=True)
    assert [str(p) for p in result.problems] == [f"{path}:7: alias getreport:prod names version 9, which is not published"]
    assert write_calls(result.api_calls) == {}


# ------------------------------------------------------------------ lambda_permission


def _api_id(clients, name):
    return next(a["id"] for a in clients.apigateway.get_rest_apis()["items"] if a["name"] == name)


def _statements(clients, function, alias):
    policy = json.loads(clients.lambda_.get_policy(FunctionName=function, Qualifier=alias)["Policy"])
    arn = clients.lambda_.get_alias(FunctionName=function, Name=alias)["AliasArn"]
    return [s for s in policy["Statement"] if s["Resource"] == arn]


def _own_sid(clients, function, alias, api):
    """The id of the statement Pointsman added for (function, alias) and this API."""
    (sid,) = [s["Sid"] for s in _statements(clients, function, alias) if s["Sid"].startswith(f"pointsman-{api}-")]
    return sid


def test_permission_missing_names_the_stage(converged, clients, spec_dir):
    api = _api_id(clients, "products-v1")
    clients.lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=_own_sid(clients, "getProducts", "prod", api))
    result = run(spec_dir, clients)
    d = drift_of(result, "lambda_permission/getProducts/prod/products-v1")
    assert d.status is DriftStatus.MISSING
    assert d.reason == "stage prod of products-v1 routes to getProducts:prod, which API Gateway may not invoke"
    assert len(result.drift) == 1
    assert_heals(spec_dir, clients, {"lambda.AddPermission": 1})


def test_permission_modified_when_source_arn_does_not_cover(converged, clients, spec_dir):
    api = _api_id(clients, "products-v1")
    clients.lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=_own_sid(clients, "getProducts", "prod", api))
    sid = f"pointsman-{api}-prod"  # the id scheme of earlier releases: still Pointsman's
    clients.lambda_.add_permission(
        FunctionName="getProducts",
        Qualifier="prod",
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api}/dev/*/*",
    )
    result = run(spec_dir, clients)
    d = drift_of(result, "lambda_permission/getProducts/prod/products-v1")
    assert d.status is DriftStatus.MODIFIED
    assert [(c.field, c.live, c.desired) for c in d.changes] == [
        ("source_arn", f"arn:aws:execute-api:us-east-1:123456789012:{api}/dev/*/*", f"arn:aws:execute-api:us-east-1:123456789012:{api}/prod/*/*")
    ]
    # Make before break: the new statement is added first, then the old one removed.
    assert [a.operation for a in result.plan.actions] == ["lambda.AddPermission", "lambda.RemovePermission"]
    assert_heals(spec_dir, clients, {"lambda.RemovePermission": 1, "lambda.AddPermission": 1})
    assert [s["Sid"] for s in _statements(clients, "getProducts", "prod")] == [_own_sid(clients, "getProducts", "prod", api)]


def test_wider_permission_made_by_hand_counts_as_present(converged, clients, spec_dir):
    api = _api_id(clients, "products-v1")
    clients.lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=_own_sid(clients, "getProducts", "prod", api))
    clients.lambda_.add_permission(
        FunctionName="getProducts",
        Qualifier="prod",
        StatementId="console-made",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api}/*",
    )
    assert run(spec_dir, clients).in_sync


def _console_statement(clients, api, sid, resource_path):
    """What the console's "add permission" command adds for one method: ``API/*/VERB/PATH``."""
    clients.lambda_.add_permission(
        FunctionName="getProducts",
        Qualifier="prod",
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api}/*/{resource_path}",
    )


def test_console_statements_covering_every_route_count_as_present(converged, clients, spec_dir):
    api = _api_id(clients, "products-v1")
    routes = sorted(
        (method, resource["path"])
        for resource in clients.apigateway.get_resources(restApiId=api, embed=["methods"])["items"]
        for method, body in (resource.get("resourceMethods") or {}).items()
        if "getProducts:${stageVariables." in str((body.get("methodIntegration") or {}).get("uri"))
    )
    assert routes, "the demo's products-v1 routes to getProducts"
    clients.lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=_own_sid(clients, "getProducts", "prod", api))
    for n, (method, path) in enumerate(routes):
        _console_statement(clients, api, f"console-{n}", f"{method}{path}")
    result = run(spec_dir, clients)
    assert result.in_sync, [d.as_dict() for d in result.drift]
    assert write_calls(result.api_calls) == {}


def test_a_console_statement_for_another_route_does_not_count(converged, clients, spec_dir):
    api = _api_id(clients, "products-v1")
    clients.lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=_own_sid(clients, "getProducts", "prod", api))
    _console_statement(clients, api, "console-other", "GET/orders")
    result = run(spec_dir, clients)
    assert drift_of(result, "lambda_permission/getProducts/prod/products-v1").status is DriftStatus.MISSING
    assert_heals(spec_dir, clients, {"lambda.AddPermission": 1})
    # The console's statement is not Pointsman's: it stays.
    assert "console-other" in [s["Sid"] for s in _statements(clients, "getProducts", "prod")]


def test_permission_extra_is_pointsman_owned_and_pruned(converged, clients, spec_dir):
    other = _api_id(clients, "products-v2")
    clients.lambda_.add_permission(
        FunctionName="getreport",
        Qualifier="prod",
        StatementId=f"pointsman-{other}-prod",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{other}/prod/*/*",
    )
    clients.lambda_.add_permission(  # not Pointsman's: never reported, never removed
        FunctionName="getreport",
        Qualifier="prod",
        StatementId="someone-else",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
    )
    result = run(spec_dir, clients)
    assert [(d.resource, d.status) for d in result.drift] == [("lambda_permission/getreport/prod/products-v2", DriftStatus.EXTRA)]
    assert_heals(spec_dir, clients, {"lambda.RemovePermission": 1}, prune=True)
    sids = [s["Sid"] for s in __import__("json").loads(clients.lambda_.get_policy(FunctionName="getreport", Qualifier="prod")["Policy"])["Statement"]]
    assert "someone-else" in sids and f"pointsman-{other}-prod" not in sids


# ------------------------------------------------------------------ rest_stage


def test_stage_missing_is_created_from_newest_deployment(converged, clients, spec_dir):
    api = _api_id(clients, "getreport-api")
    clients.apigateway.delete_stage(restApiId=api, stageName="dev")
    result = run(spec_dir, clients)
    assert drift_of(result, "rest_stage/getreport-api/dev").status is DriftStatus.MISSING
    assert_heals(spec_dir, clients, {"apigateway.CreateStage": 1})
    stage = clients.apigateway.get_stage(restApiId=api, stageName="dev")
    assert stage["variables"] == {"lambdaAlias": "dev"} and stage["description"] == "development"


def test_stage_modified_one_update_with_only_changed_patches(converged, clients, spec_dir):
    api = _api_id(clients, "products-v2")
    clients.apigateway.update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/variables/lambdaAlias", "value": "dev"},
            {"op": "replace", "path": "/description", "value": "clicked"},
        ],
    )
    result = run(spec_dir, clients)
    d = drift_of(result, "rest_stage/products-v2/prod")
    assert d.status is DriftStatus.MODIFIED
    assert {(c.field, c.live, c.desired) for c in d.changes} == {
        ("variables.lambdaAlias", "dev", "prod"),
        ("description", "clicked", "production"),
    }
    (action,) = result.plan.actions
    assert sorted(p["path"] for p in action.calls[0].params["patchOperations"]) == ["/description", "/variables/lambdaAlias"]
    assert_heals(spec_dir, clients, {"apigateway.UpdateStage": 1})


def test_stage_variable_extra_is_reported_and_pruned_in_one_update(converged, clients, spec_dir):
    api = _api_id(clients, "products-v2")
    clients.apigateway.update_stage(restApiId=api, stageName="dev", patchOperations=[{"op": "replace", "path": "/variables/debug", "value": "on"}])
    result = run(spec_dir, clients, apply=True)
    d = drift_of(result, "stage_variable/products-v2/dev/debug")
    assert d.status is DriftStatus.EXTRA
    assert write_calls(result.api_calls) == {}
    assert clients.apigateway.get_stage(restApiId=api, stageName="dev")["variables"]["debug"] == "on"
    assert_heals(spec_dir, clients, {"apigateway.UpdateStage": 1}, prune=True)
    assert "debug" not in clients.apigateway.get_stage(restApiId=api, stageName="dev")["variables"]


def test_stage_extra_pruned(converged, clients, spec_dir):
    api = _api_id(clients, "getreport-api")
    deployment = clients.apigateway.get_deployments(restApiId=api)["items"][0]["id"]
    clients.apigateway.create_stage(restApiId=api, stageName="old", deploymentId=deployment)
    result = run(spec_dir, clients)
    assert [(d.resource, d.status) for d in result.drift] == [("rest_stage/getreport-api/old", DriftStatus.EXTRA)]
    assert_heals(spec_dir, clients, {"apigateway.DeleteStage": 1}, prune=True)


def test_declared_deployment_is_managed(converged, clients, spec_dir):
    api = _api_id(clients, "getreport-api")
    new = clients.apigateway.create_deployment(restApiId=api, description="second")["id"]
    path = spec_dir / "getreport.yaml"
    path.write_text(
        path.read_text().replace(
            "dev: {variables: {lambdaAlias: dev}, description: development}",
            f"dev: {{variables: {{lambdaAlias: dev}}, description: development, deployment: {new}}}",
        )
    )
    result = run(spec_dir, clients)
    d = drift_of(result, "rest_stage/getreport-api/dev")
    assert [(c.field, c.desired) for c in d.changes] == [("deployment", new)]
    assert_heals(spec_dir, clients, {"apigateway.UpdateStage": 1})
    assert clients.apigateway.get_stage(restApiId=api, stageName="dev")["deploymentId"] == new


# ------------------------------------------------------------------ base_path_mapping


def test_mapping_missing(converged, clients, spec_dir):
    clients.apigateway.delete_base_path_mapping(domainName="dev.myapi.com", basePath="v1")
    result = run(spec_dir, clients)
    assert [(d.resource, d.status) for d in result.drift] == [("base_path_mapping/dev.myapi.com/v1", DriftStatus.MISSING)]
    assert_heals(spec_dir, clients, {"apigateway.CreateBasePathMapping": 1})


def test_mapping_modified(converged, clients, spec_dir):
    clients.apigateway.update_base_path_mapping(domainName="myapi.com", basePath="v1", patchOperations=[{"op": "replace", "path": "/stage", "value": "dev"}])
    result = run(spec_dir, clients)
    d = drift_of(result, "base_path_mapping/myapi.com/v1")
    assert d.status is DriftStatus.MODIFIED
    assert [(c.field, c.live, c.desired) for c in d.changes] == [("stage", "dev", "prod")]
    assert_heals(spec_dir, clients, {"apigateway.UpdateBasePathMapping": 1})


def test_mapping_extra_pruned(converged, clients, spec_dir):
    api = _api_id(clients, "getreport-api")
    clients.apigateway.create_base_path_mapping(domainName="myapi.com", basePath="reports", restApiId=api, stage="prod")
    result = run(spec_dir, clients)
    d = drift_of(result, "base_path_mapping/myapi.com/reports")
    assert d.status is DriftStatus.EXTRA
    assert {(c.field, c.live) for c in d.changes} == {("api", "getreport-api"), ("stage", "prod")}
    assert_heals(spec_dir, clients, {"apigateway.DeleteBasePathMapping": 1}, prune=True)


# ------------------------------------------------------------------ plan errors (nothing applied)


def test_stage_variable_naming_unknown_alias_is_a_plan_error(estate, clients, spec_dir):
    path = spec_dir / "products.yaml"
    path.write_text(path.read_text().replace("prod: {variables: {lambdaAlias: prod}", "prod: {variables: {lambdaAlias: prd}", 1))
    result = run(spec_dir, clients, apply=True)
    assert [str(p) for p in result.problems] == [
        f"{path}:17: stage prod of products-v1 routes GET /products to getProducts:prd (stage variable lambdaAlias), "
        "an alias that neither exists nor is declared"
    ]
    assert write_calls(result.api_calls) == {} and not result.outcomes


def test_missing_and_ambiguous_api_names_and_missing_domain(estate, clients, spec_dir):
    clients.apigateway.create_rest_api(name="products-v2")
    (spec_dir / "more.yaml").write_text("rest_apis:\n  ghost-api:\n    stages: {}\ndomains:\n  nowhere.example:\n    mappings: {}\n")
    clients.counter.reset()
    result = run(spec_dir, clients, apply=True)
    messages = sorted(str(p) for p in result.problems)
    more = spec_dir / "more.yaml"
    assert f"{more}:2: REST API 'ghost-api' does not exist" in messages
    assert f"{more}:5: custom domain 'nowhere.example' does not exist" in messages
    assert any("REST API name 'products-v2' is ambiguous" in m for m in messages)
    assert write_calls(result.api_calls) == {}


def test_undeclared_function_alias_that_exists_is_accepted(estate, clients, spec_dir):
    """A stage may route to an alias of a function the spec does not manage, if that alias exists."""
    clients.lambda_.create_alias(FunctionName="getProductsV2", Name="prod", FunctionVersion="2")
    clients.lambda_.create_alias(FunctionName="getProductsV2", Name="dev", FunctionVersion="$LATEST")
    (spec_dir / "products.yaml").write_text("rest_apis:\n  products-v2:\n    stages:\n      prod: {variables: {lambdaAlias: prod}}\n")
    result = run(spec_dir, clients, apply=True)
    assert not result.problems, result.problems
    assert "lambda_permission/getProductsV2/prod/products-v2" in [a.resource for a in result.plan.actions]
    assert not result.failed
