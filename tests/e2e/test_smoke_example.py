"""The example estate: first apply creates everything; the next plan is in sync with zero writes."""

from controller.aws.clients import is_write
from controller.model import DriftStatus
from tests.conftest import run


def test_first_apply_converges_and_second_plan_is_clean(estate, clients, spec_dir):
    first = run(spec_dir, clients)
    assert not first.problems
    # Everything is missing but the two versioned methods, which exist with a placeholder integration.
    assert {d.resource for d in first.drift if d.status is not DriftStatus.MISSING} == {
        "rest_method/catalog-api/GET/items",
        "rest_method/users-api/POST/users",
    }
    assert len(first.plan.actions) == 39
    assert not any(is_write(op) for op in first.api_calls)

    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed
    # 6 aliases for stages, 5 for API versions (postUser x 3 dated versions, listItems x 2 media types).
    assert applied.api_calls["lambda.CreateAlias"] == 11
    assert applied.api_calls["lambda.AddPermission"] == 11
    assert applied.api_calls["apigateway.CreateStage"] == 9
    assert applied.api_calls["apigateway.CreateBasePathMapping"] == 4
    assert applied.api_calls["apigateway.PutIntegration"] == 2
    assert applied.api_calls["apigateway.CreateDeployment"] == 2  # one per versioned API

    again = run(spec_dir, clients)
    assert again.in_sync, [d.as_dict() for d in again.drift]
    assert not [op for op in again.api_calls if is_write(op)]
