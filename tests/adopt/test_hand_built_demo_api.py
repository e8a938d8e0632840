"""The demo's hand-built API (``seed_hand_built``): invisible to the controller over desired_state/,
and what README "Walkthrough: adopting the demo's hand-built API" imports.

The README test (tests/e2e/test_readme_adopt_walkthrough.py) runs the walkthrough against the
demo itself; these run the same story in-process, in a second, with the calls counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients, write_calls
from controller.demo.estate import HAND_BUILT_API, HAND_BUILT_DOMAIN, HAND_BUILT_FUNCTIONS, seed_hand_built
from controller.engine.pipeline import reconcile
from controller.spec import load_spec
from tests.conftest import cli, run

HAND_BUILT_NAMES = (HAND_BUILT_API, HAND_BUILT_DOMAIN, *(fn.name for fn in HAND_BUILT_FUNCTIONS))


@pytest.fixture
def demo_account(estate: dict[str, Any], clients: AwsClients, spec_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The demo's emulated account: the example estate and the hand-built API, desired_state/ applied."""
    hand_built = seed_hand_built(clients)
    result = run(spec_dir, clients, apply=True)
    assert not result.failed, [o.as_dict() for o in result.outcomes]
    monkeypatch.setattr("controller.cli.main.AwsClients", lambda: clients)
    clients.counter.reset()
    return hand_built


@pytest.mark.parametrize("prune", [False, True], ids=["plan", "prune"])
def test_the_controller_over_desired_state_neither_sees_nor_touches_the_hand_built_api(
    demo_account: dict[str, Any], clients: AwsClients, spec_dir: Path, prune: bool
) -> None:
    result = run(spec_dir, clients, apply=True, prune=prune)
    assert result.in_sync and not result.problems, [(d.resource, d.status.value) for d in result.drift]
    assert write_calls(clients.counter.snapshot()) == {}
    named = [name for name in HAND_BUILT_NAMES for item in (*result.drift, *result.plan.not_pruned) if name in str(item)]
    assert named == [], named
    # Still as the console left it.
    assert clients.lambda_.get_alias(FunctionName="listOrders", Name="prod")["FunctionVersion"] == "2"
    assert {m["basePath"] for m in clients.apigateway.get_base_path_mappings(domainName=HAND_BUILT_DOMAIN)["items"]} == {"v1"}


def test_imported_the_console_permissions_cover_the_routes_it_is_in_sync_then_drift_heals_and_reimport_is_the_same(
    demo_account: dict[str, Any], clients: AwsClients, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "adopted"
    flags = ("--apis", HAND_BUILT_API, "--domains", HAND_BUILT_DOMAIN)
    code, stdout, stderr = cli(capsys, "import", "--out", str(out), *flags)
    assert (code, stderr) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == ["domains.yaml", "inventory-api.yaml"]
    text = (out / "inventory-api.yaml").read_text()
    assert '      prod: {version: "2", description: "stock levels", routing: {"3": 0.1}}\n' in text
    assert "      prod: {variables: {lambdaAlias: prod}, description: production}\n" in text
    assert "      v1: {api: inventory-api, stage: prod}\n" in (out / "domains.yaml").read_text()
    # The console's statements (one method and path each) cover every route the stages send to the
    # aliases: they are what the plan derives, so nothing is left out.
    assert "nothing left out" in stdout and "console-" not in stdout

    # In sync at once: no write, the console's statements stay as they are.
    clients.counter.reset()
    first = reconcile(load_spec(out), clients, apply=True)
    assert first.in_sync and not first.problems, [(d.resource, d.status.value) for d in first.drift]
    assert write_calls(clients.counter.snapshot()) == {}

    # A console click is drift against the imported spec; apply heals it.
    clients.lambda_.update_alias(FunctionName="listOrders", Name="prod", FunctionVersion="1")
    code, stdout, _ = cli(capsys, "plan", "--spec", str(out))
    assert code == 2 and "~ lambda_alias/listOrders/prod  [modified]" in stdout, stdout
    assert cli(capsys, "apply", "--spec", str(out))[0] == 0
    assert clients.lambda_.get_alias(FunctionName="listOrders", Name="prod")["FunctionVersion"] == "2"
    assert cli(capsys, "plan", "--spec", str(out))[0] == 0

    # A re-import after all that is the same bytes.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli(capsys, "import", "--out", str(out), *flags, "--force")[0] == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
