"""`pointsman import` against moto's server (the converged example estate, as the e2e tests see it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import write_calls
from controller.engine.pipeline import reconcile
from controller.spec import load_spec
from tests.conftest import cli

pytestmark = pytest.mark.server


def test_import_then_plan_over_http_is_in_sync_and_apply_writes_nothing(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clients = world["clients"]
    monkeypatch.setattr("controller.cli.main.AwsClients", lambda: clients)
    out = tmp_path / "imported"
    clients.counter.reset()
    code, _, err = cli(capsys, "import", "--out", str(out))
    assert (code, err) == (0, "")
    calls = clients.counter.snapshot()
    assert calls and write_calls(calls) == {}
    code, _, _ = cli(capsys, "plan", "--spec", str(out))
    assert code == 0
    clients.counter.reset()
    result = reconcile(load_spec(out), clients, apply=True)
    assert result.in_sync and write_calls(clients.counter.snapshot()) == {}
