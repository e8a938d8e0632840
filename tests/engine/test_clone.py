"""Major versions as cloned APIs: clone_from creates a missing API by CreateRestApi cloneFrom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from botocore.stub import Stubber

from controller.aws.clients import AwsClients, write_calls
from controller.engine.apply import apply_actions
from controller.kinds.rest_api import RestApi
from controller.model import OutcomeStatus, Resource
from tests.conftest import run


def _add_v3(spec_dir: Path) -> None:
    path = spec_dir / "products.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["rest_apis"]["products-v3"] = {
        "clone_from": "products-v2",
        "stages": {"prod": {"variables": {"lambdaAlias": "prod"}, "description": "production"}},
    }
    data["domains"]["myapi.com"]["mappings"]["v3"] = {"api": "products-v3", "stage": "prod"}
    path.write_text(yaml.safe_dump(data))


def test_the_clone_request_names_the_source_and_the_deployment_uses_the_new_id() -> None:
    # moto ignores cloneFrom, so the request itself is checked with botocore's Stubber.
    clients = AwsClients(region="us-east-1")
    client = clients.client("apigateway")
    desired = Resource("rest_api", "products-v3", {"clone_from": "products-v2"}, {"source_id": "v2id", "missing_reason": "x"})
    (action,) = RestApi().converge(desired, None, (), [])
    with Stubber(client) as stub:
        stub.add_response(
            "create_rest_api",
            {"id": "v3id", "name": "products-v3"},
            {"name": "products-v3", "cloneFrom": "v2id", "description": "cloned from products-v2"},
        )
        stub.add_response("create_deployment", {"id": "dep1"}, {"restApiId": "v3id", "description": "first deployment of the clone"})
        (outcome,) = apply_actions(clients, [action])
        stub.assert_no_pending_responses()
    assert outcome.status is OutcomeStatus.SUCCEEDED


def test_plan_reports_the_clone_and_what_follows_it(converged, clients, spec_dir) -> None:
    _add_v3(spec_dir)
    result = run(spec_dir, clients)
    assert not result.problems, result.problems
    clone = next(d for d in result.drift if d.resource == "rest_api/products-v3")
    assert clone.status.value == "missing" and "clones it from products-v2" in clone.reason
    assert [a.operation for a in result.plan.actions] == ["apigateway.CreateRestApi + apigateway.CreateDeployment"]
    assert write_calls(result.api_calls) == {}


def test_apply_clones_deploys_then_creates_stages_permissions_and_mappings(converged, clients, spec_dir) -> None:
    _add_v3(spec_dir)
    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed, [o.as_dict() for o in applied.outcomes]
    assert [o.action.resource for o in applied.outcomes] == [
        "rest_api/products-v3",
        "lambda_permission/getProductsV2/prod/products-v3",
        "rest_stage/products-v3/prod",
        "base_path_mapping/myapi.com/v3",
    ]
    v3 = next(a["id"] for a in clients.apigateway.get_rest_apis()["items"] if a["name"] == "products-v3")
    resources = {r["path"]: r for r in clients.apigateway.get_resources(restApiId=v3, embed=["methods"])["items"]}
    assert "/products" in resources  # the clone carries the source's resources and integrations
    mapping = clients.apigateway.get_base_path_mapping(domainName="myapi.com", basePath="v3")
    assert (mapping["restApiId"], mapping["stage"]) == (v3, "prod")
    again = run(spec_dir, clients, apply=True)
    assert again.in_sync and write_calls(again.api_calls) == {}
    # An API that exists is never cloned again.
    assert [a["name"] for a in clients.apigateway.get_rest_apis()["items"]].count("products-v3") == 1
