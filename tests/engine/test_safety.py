"""Deletions wait for their users, in and beyond the managed scope (moto in-process)."""

from __future__ import annotations

import json

import yaml

from controller.aws.clients import write_calls
from controller.model import DriftStatus
from tests.conftest import run


def _api_id(clients, name):
    return next(a["id"] for a in clients.apigateway.get_rest_apis()["items"] if a["name"] == name)


def _sids(clients, function, alias):
    arn = clients.lambda_.get_alias(FunctionName=function, Name=alias)["AliasArn"]
    policy = json.loads(clients.lambda_.get_policy(FunctionName=function, Qualifier=alias)["Policy"])
    return sorted(s["Sid"] for s in policy["Statement"] if s["Resource"] == arn)


def _edit(spec_dir, name, change):
    path = spec_dir / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_pruning_an_api_out_of_the_spec_keeps_the_permissions_its_stages_use(converged, clients, spec_dir):
    # getreport-api leaves the spec; its live stages still route to getreport:prod and :dev.
    _edit(spec_dir, "getreport.yaml", lambda d: d.pop("rest_apis"))
    before = {a: _sids(clients, "getreport", a) for a in ("prod", "dev")}
    result = run(spec_dir, clients, apply=True, prune=True)
    assert not result.failed
    assert write_calls(result.api_calls) == {}
    api = _api_id(clients, "getreport-api")
    assert sorted(h.action.resource for h in result.plan.held) == [
        "lambda_permission/getreport/dev/getreport-api",
        "lambda_permission/getreport/prod/getreport-api",
    ]
    assert all("rest_stage/getreport-api/" in h.reason and "still uses it" in h.reason for h in result.plan.held)
    assert {a: _sids(clients, "getreport", a) for a in ("prod", "dev")} == before
    assert all(s.startswith(f"pointsman-{api}-") for sids in before.values() for s in sids)


def test_an_undeclared_alias_a_declared_stage_routes_to_is_never_pruned(converged, clients, spec_dir):
    clients.lambda_.create_alias(FunctionName="getreport", Name="old", FunctionVersion="1")
    _edit(spec_dir, "getreport.yaml", lambda d: d["rest_apis"]["getreport-api"]["stages"]["dev"]["variables"].update(lambdaAlias="old"))
    result = run(spec_dir, clients, apply=True, prune=True)
    assert not result.failed, [o.as_dict() for o in result.outcomes]
    assert [h.action.resource for h in result.plan.held] == ["lambda_alias/getreport/old"]
    assert result.plan.held[0].reason == "rest_stage/getreport-api/dev, which the spec declares, still uses it"
    assert clients.lambda_.get_alias(FunctionName="getreport", Name="old")["FunctionVersion"] == "1"


def test_an_alias_another_api_routes_to_is_held_until_that_api_moves(converged, clients, spec_dir):
    # A second API, not managed by this spec, routes to getProducts:legacy with its own permission.
    from controller.demo.estate import alias_uri

    apigw, lam = clients.apigateway, clients.lambda_
    lam.create_alias(FunctionName="getProducts", Name="legacy", FunctionVersion="1")
    other = apigw.create_rest_api(name="partner-api")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=other)["items"] if r["path"] == "/")
    res = apigw.create_resource(restApiId=other, parentId=root, pathPart="items")["id"]
    apigw.put_method(restApiId=other, resourceId=res, httpMethod="GET", authorizationType="NONE")
    fn_arn = lam.get_function(FunctionName="getProducts")["Configuration"]["FunctionArn"]
    apigw.put_integration(restApiId=other, resourceId=res, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST", uri=alias_uri("us-east-1", fn_arn))
    deployment = apigw.create_deployment(restApiId=other)["id"]
    apigw.create_stage(restApiId=other, stageName="live", deploymentId=deployment, variables={"lambdaAlias": "legacy"})
    lam.add_permission(
        FunctionName="getProducts",
        Qualifier="legacy",
        StatementId="partner",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{other}/live/*/*",
    )
    clients.counter.reset()

    plan = run(spec_dir, clients, prune=True)
    assert [(d.resource, d.status) for d in plan.drift] == [("lambda_alias/getProducts/legacy", DriftStatus.EXTRA)]
    assert plan.plan.actions == ()
    assert [(h.action.resource, h.reason) for h in plan.plan.held] == [
        ("lambda_alias/getProducts/legacy", "rest_stage/partner-api/live still uses it and is not changed by this plan")
    ]
    assert plan.api_calls["apigateway.GetStages"] == 6  # the five managed APIs and partner-api
    # Without prune the other API is not read: the converged plan's reads stay minimal.
    assert run(spec_dir, clients).api_calls["apigateway.GetStages"] == 5


def test_a_superseded_statement_left_by_a_failed_removal_goes_on_the_next_run(converged, clients, spec_dir):
    api = _api_id(clients, "getreport-api")
    (own,) = _sids(clients, "getreport", "prod")
    # As if an earlier change had left a second Pointsman statement behind (its removal failed).
    leftover = f"pointsman-{api}-prod-wide"
    clients.lambda_.add_permission(
        FunctionName="getreport",
        Qualifier="prod",
        StatementId=leftover,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:us-east-1:123456789012:{api}/*/*/*",
    )
    result = run(spec_dir, clients)
    (drift,) = result.drift
    assert drift.status is DriftStatus.EXTRA and drift.resource == f"lambda_permission/getreport/prod/getreport-api/{leftover}"
    assert "superseded" in drift.reason
    applied = run(spec_dir, clients, apply=True)  # no prune needed: it is Pointsman's own leftover
    assert write_calls(applied.api_calls) == {"lambda.RemovePermission": 1}
    assert _sids(clients, "getreport", "prod") == [own]
    assert run(spec_dir, clients).in_sync


def test_a_superseded_statement_stays_while_an_undeclared_stage_needs_it(converged, clients, spec_dir):
    api = _api_id(clients, "getreport-api")
    (own,) = _sids(clients, "getreport", "dev")
    # A stage made by hand routes to dev too, and Pointsman's dev statement covers only stage dev.
    deployment = clients.apigateway.get_stage(restApiId=api, stageName="dev")["deploymentId"]
    clients.apigateway.create_stage(restApiId=api, stageName="qa", deploymentId=deployment, variables={"lambdaAlias": "dev"})
    # The spec moves stage dev to alias prod: dev's statement would be removed, but qa needs it.
    _edit(spec_dir, "getreport.yaml", lambda d: d["rest_apis"]["getreport-api"]["stages"]["dev"]["variables"].update(lambdaAlias="prod"))
    result = run(spec_dir, clients, apply=True)
    assert not result.failed, [o.as_dict() for o in result.outcomes]
    assert own in _sids(clients, "getreport", "dev")
    assert [h.action.resource for h in result.plan.held] == []  # not superseded: nothing desired replaces it
    pruned = run(spec_dir, clients, apply=True, prune=True)
    assert not pruned.failed, [o.as_dict() for o in pruned.outcomes]
    # With prune, qa goes first, then the statement.
    ops = [(o.action.operation, o.action.resource) for o in pruned.outcomes]
    assert ops.index(("apigateway.DeleteStage", "rest_stage/getreport-api/qa")) < ops.index(
        ("lambda.RemovePermission", "lambda_permission/getreport/dev/getreport-api")
    )
