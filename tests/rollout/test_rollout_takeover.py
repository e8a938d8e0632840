"""A target handed to another replica mid-rollout: the new holder resumes the rollout at its step
from the shared state (the lease table's ``state#<target>#controller``), not from the start, and
does not re-apply what the last holder applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import write_calls
from controller.loop.runner import SHARED_KEY, Controller
from controller.loop.settings import RunSettings
from tests.rollout.test_rollout_e2e import Clock, alias, estate, invocations, run  # noqa: F401 - estate is a fixture

pytestmark = pytest.mark.server


class Table:
    """A target's shared state as the lease table keeps it: JSON values, every write a new copy."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.fail = False

    def get(self, key: str, default: Any = None) -> Any:
        if self.fail:
            raise ConnectionError("the table cannot be reached")
        return json.loads(self.values[key]) if key in self.values else default

    def put(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)


def replica(estate: dict[str, Any], clock: Clock, table: Table, name: str) -> Controller:  # noqa: F811
    settings = RunSettings(repo=str(estate["repo"]), state_dir=Path(estate["tmp"]) / name, interval=3600, jitter=0, poll_interval=0)
    c = Controller(settings, shared=table, replica=name)
    c.clock = clock
    return c


def test_a_replica_taking_over_mid_rollout_resumes_it_at_its_step(estate: dict[str, Any]) -> None:  # noqa: F811
    clock, table = Clock(), Table()
    first = replica(estate, clock, table, "replica-a")
    try:
        record, row = run(first)
        assert alias(estate) == ("3", {"2": 0.1}) and row["event"] == "rollout_started"
        clock.now += 60
        invocations(estate, clock, 100, 1)
        record, row = run(first)  # pausing at step 2
        assert write_calls(record.api_calls) == {}
    finally:
        first.history.close()
    shared = table.get(SHARED_KEY)
    assert shared["rollouts"]["getProducts/prod"]["step"] == 1 and shared["replica"] == "replica-a" and shared["applied_commit"]
    assert [r["replica"] for r in shared["runs"]] == ["replica-a", "replica-a"] and shared["state"] == "rolling_out"

    # Another replica, its own state directory (no history, no rollout records), takes the target.
    second = replica(estate, clock, table, "replica-b")
    try:
        clock.now += 241
        invocations(estate, clock, 100, 2)
        record, row = run(second)
        assert row["event"] == "rollout_step" and "step 3 of 4 (50%)" in row["line"], row  # not "rollout_started" again
        assert alias(estate) == ("3", {"2": 0.5}) and write_calls(record.api_calls) == {"lambda.UpdateAlias": 1}
        assert second.status.applied_commit == shared["applied_commit"]
        assert [r["replica"] for r in table.get(SHARED_KEY)["runs"]] == ["replica-b", "replica-a", "replica-a"]
        # The table unreachable: the run writes nothing (it would not know the rollout's step).
        table.fail = True
        clock.now += 400
        record = second.reconcile("schedule")
        assert record.status == "error" and "shared state cannot be read" in (record.error or "") and write_calls(record.api_calls) == {}
    finally:
        second.history.close()
