"""The example estate: first apply creates everything; the next plan is in sync with zero writes."""

from controller.aws import is_write
from controller.model import DriftStatus

from tests.conftest import run


def test_first_apply_converges_and_second_plan_is_clean(estate, clients, spec_dir):
    first = run(spec_dir, clients)
    assert not first.problems
    assert {d.status for d in first.drift} == {DriftStatus.MISSING}
    assert len(first.plan.actions) == 22
    assert not any(is_write(op) for op in first.api_calls)

    applied = run(spec_dir, clients, apply=True)
    assert not applied.failed
    assert applied.api_calls["lambda.CreateAlias"] == 6
    assert applied.api_calls["lambda.AddPermission"] == 6
    assert applied.api_calls["apigateway.CreateStage"] == 6
    assert applied.api_calls["apigateway.CreateBasePathMapping"] == 4

    again = run(spec_dir, clients)
    assert again.in_sync, [d.as_dict() for d in again.drift]
    assert not [op for op in again.api_calls if is_write(op)]
