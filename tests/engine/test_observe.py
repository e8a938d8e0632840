"""manage: observe, per kind, on the converged example estate (moto in-process): the drift is
reported, the action that would heal it is set aside with why, and not one write call is made,
with --prune too and with a rollout declared. What an observed and a managed declaration derive
together (an invoke permission, a mapping) is held back, and the plan names who holds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients, write_calls
from controller.views.report import render
from tests.conftest import run


def edit(spec_dir: Path, name: str, old: str, new: str) -> None:
    path = spec_dir / name
    text = path.read_text()
    assert old in text, (name, old)
    path.write_text(text.replace(old, new))


def api_id(clients: AwsClients, name: str) -> str:
    return next(i["id"] for i in clients.apigateway.get_rest_apis()["items"] if i["name"] == name)


def observed(result: Any) -> dict[str, str]:
    return {h.action.resource: h.reason for h in result.observed}


def test_an_observed_alias_is_reported_never_written(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    edit(spec_dir, "products.yaml", 'prod: {version: 3, description: "v1 production"}', 'prod: {version: 3, description: "v1 production", manage: observe}')
    clients.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    result = run(spec_dir, clients, apply=True, prune=True)
    assert [d.resource for d in result.drift] == ["lambda_alias/getProducts/prod"]
    assert write_calls(result.api_calls) == {} and result.outcomes == []
    reason = observed(result)["lambda_alias/getProducts/prod"]
    assert reason.startswith("alias getProducts:prod is observe-only (manage: observe at ") and "products.yaml:7" in reason
    text = render(result, fmt="text", mode="apply")
    assert "Observe only (1; manage: observe, never written):" in text and "would lambda.UpdateAlias  lambda_alias/getProducts/prod" in text
    assert clients.lambda_.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "1"


def test_an_observed_function_covers_its_aliases_and_their_permissions(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    edit(spec_dir, "getreport.yaml", "  getreport:\n", "  getreport:\n    manage: observe\n")
    clients.lambda_.delete_alias(FunctionName="getreport", Name="dev")
    result = run(spec_dir, clients, apply=True)
    assert "lambda_alias/getreport/dev" in [d.resource for d in result.drift]
    assert write_calls(result.api_calls) == {}
    assert {"lambda_alias/getreport/dev", "lambda_permission/getreport/dev/getreport-api"} <= set(observed(result))


def test_an_observed_api_is_never_written_nor_pruned_and_holds_back_its_permissions(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    edit(spec_dir, "products.yaml", "  products-v1:\n    stages:\n", "  products-v1:\n    manage: observe\n    stages:\n")
    v1 = api_id(clients, "products-v1")
    clients.apigateway.update_stage(restApiId=v1, stageName="dev", patchOperations=[{"op": "replace", "path": "/description", "value": "changed by hand"}])
    deployment = clients.apigateway.get_deployments(restApiId=v1)["items"][0]["id"]
    clients.apigateway.create_stage(restApiId=v1, stageName="hotfix", deploymentId=deployment)  # extra: prune would delete it
    clients.lambda_.remove_permission(FunctionName="getProducts", Qualifier="prod", StatementId=_sid(clients, "getProducts", "prod"))
    result = run(spec_dir, clients, apply=True, prune=True)
    drifted = {d.resource for d in result.drift}
    assert {"rest_stage/products-v1/dev", "rest_stage/products-v1/hotfix"} <= drifted, drifted
    # moto keeps one policy per function, whatever the qualifier: the statement removed is one of getProducts' aliases'.
    (permission,) = [r for r in drifted if r.startswith("lambda_permission/getProducts/") and r.endswith("/products-v1")]
    assert write_calls(result.api_calls) == {}
    held = observed(result)
    assert held["rest_stage/products-v1/hotfix"].startswith("REST API products-v1 is observe-only")
    # The alias is managed, the API observed: the permission they derive waits, and says who holds it.
    assert held[permission].startswith("held back: REST API products-v1 is observe-only")


def test_an_observed_stage_and_an_observed_domain(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    edit(
        spec_dir,
        "products.yaml",
        "      prod: {variables: {lambdaAlias: prod}, description: production}\n      dev: {variables: {lambdaAlias: dev}, description: development}\n  products-v2:",
        "      prod: {variables: {lambdaAlias: prod}, description: production}\n      dev: {variables: {lambdaAlias: dev}, description: development}\n  products-v2:",
    )
    edit(
        spec_dir,
        "products.yaml",
        "  products-v2:\n    stages:\n      prod: {variables: {lambdaAlias: prod}, description: production}",
        "  products-v2:\n    stages:\n      prod: {variables: {lambdaAlias: prod}, description: production, manage: observe}",
    )
    edit(spec_dir, "products.yaml", "  dev.myapi.com:\n    mappings:", "  dev.myapi.com:\n    manage: observe\n    mappings:")
    v2 = api_id(clients, "products-v2")
    clients.apigateway.update_stage(restApiId=v2, stageName="prod", patchOperations=[{"op": "replace", "path": "/variables/lambdaAlias", "value": "dev"}])
    clients.apigateway.delete_base_path_mapping(domainName="dev.myapi.com", basePath="v1")
    clients.apigateway.delete_base_path_mapping(domainName="myapi.com", basePath="v2")  # a managed domain's mapping to the observed stage
    result = run(spec_dir, clients, apply=True)
    held = observed(result)
    assert held["rest_stage/products-v2/prod"].startswith("stage products-v2/prod is observe-only")
    assert held["base_path_mapping/dev.myapi.com/v1"].startswith("domain dev.myapi.com is observe-only")
    assert held["base_path_mapping/myapi.com/v2"].startswith("held back: stage products-v2/prod is observe-only")
    assert write_calls(result.api_calls) == {}


def test_an_observed_alias_with_a_rollout_is_not_rolled_out(converged: dict[str, Any], clients: AwsClients, spec_dir: Path) -> None:
    edit(
        spec_dir,
        "products.yaml",
        'prod: {version: 3, description: "v1 production"}',
        'prod: {version: 2, description: "v1 production", manage: observe, rollout: Canary10Percent5Minutes}',
    )
    result = run(spec_dir, clients, apply=True)
    assert [d.resource for d in result.drift] == ["lambda_alias/getProducts/prod"]
    assert result.rollouts.decisions == {} and write_calls(result.api_calls) == {}
    assert "lambda_alias/getProducts/prod" in observed(result)


def test_manage_takes_only_full_or_observe(spec_dir: Path) -> None:
    from controller.spec import SpecInvalid, load_spec

    edit(spec_dir, "products.yaml", 'prod: {version: 3, description: "v1 production"}', 'prod: {version: 3, description: "v1 production", manage: watch}')
    with pytest.raises(SpecInvalid) as info:
        load_spec(spec_dir)
    assert "products.yaml:7" in str(info.value) and "'full' or 'observe'" in str(info.value)


def _sid(clients: AwsClients, function: str, alias: str) -> str:
    import json

    policy = json.loads(clients.lambda_.get_policy(FunctionName=function, Qualifier=alias)["Policy"])
    return str(policy["Statement"][0]["Sid"])
