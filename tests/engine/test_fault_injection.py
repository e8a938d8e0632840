"""A failure at any single write call leaves every client path working, and a rerun converges.

The full matrix (every scenario x every write call x both fault modes) is `make fuzz`;
this is its fast slice: the scenarios where ordering matters most, failures before the call
reaches AWS, plus the checker itself proven able to see a broken path.
"""

from __future__ import annotations

import pytest

from controller.logs import configure
from tests.fuzz_faults import FAST_SLICE, SCENARIOS, broken_paths, run_case, run_fault_matrix

pytestmark = pytest.mark.fuzz


@pytest.fixture(autouse=True)
def _quiet() -> None:
    configure("critical")


def test_checker_sees_a_stage_routed_to_nothing_and_a_mapping_to_nothing(tmp_path) -> None:
    from moto import mock_aws

    from controller.aws.clients import AwsClients
    from controller.demo.emulator import fix_moto_gaps
    from controller.demo.estate import seed
    from controller.engine.pipeline import reconcile
    from controller.spec import load_spec
    from tests.conftest import EXAMPLE_SPEC

    fix_moto_gaps()
    with mock_aws():
        clients = AwsClients(max_attempts=1)
        seed(clients)
        assert not reconcile(load_spec(EXAMPLE_SPEC), clients, apply=True).failed
        assert broken_paths(clients) == []
        clients.lambda_.delete_alias(FunctionName="getProducts", Name="dev")
        api = next(a["id"] for a in clients.apigateway.get_rest_apis()["items"] if a["name"] == "products-v2")
        clients.apigateway.delete_stage(restApiId=api, stageName="prod")
        problems = broken_paths(clients)
    assert "products-v1/dev GET /products: routes to getProducts:dev, which does not exist" in problems
    assert "myapi.com/v2: points at stage prod, which does not exist" in problems


def test_every_scenario_applies_cleanly_and_converges(tmp_path) -> None:
    for scenario in SCENARIOS:
        case = run_case(scenario, 0, "before", tmp_path / scenario.name)
        assert case.traceback == "" and case.harmful == [] and case.converged, (scenario.name, case)
        assert case.writes, scenario.name


def test_the_issue_cases_are_make_before_break(tmp_path) -> None:
    by_name = {s.name: s for s in SCENARIOS}
    same_alias = run_case(by_name["second stage on the same alias"], 0, "before", tmp_path / "a")
    # The wider statement is added before the narrow one goes, after the new stage exists.
    assert same_alias.writes == ["AddPermission", "CreateStage", "RemovePermission"]
    chain = run_case(by_name["prune mapping -> stage -> alias"], 0, "before", tmp_path / "b")
    assert chain.writes == ["DeleteBasePathMapping", "DeleteStage", "RemovePermission", "DeleteAlias"]


def test_fault_matrix_fast_slice() -> None:
    for scenarios, modes in ((FAST_SLICE, ("before",)), (FAST_SLICE[:1], ("after",))):
        figures = run_fault_matrix(scenarios=scenarios, modes=modes)
        print({k: v for k, v in figures.items() if k != "failures"})
        assert figures["failures"] == []
        assert figures["tracebacks"] == figures["harmful_states"] == figures["not_converged"] == 0
        assert figures["cases"] > len(scenarios)
