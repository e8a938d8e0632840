"""Canary rollouts of Lambda aliases: steps, gates, rollback, and the book a plan keeps them in.

- :mod:`controller.rollout.decide`: where a rollout stands and what the alias serves this run;
- :mod:`controller.rollout.gates`: CloudWatch alarms and the new version's error rate;
- :class:`RolloutBook`: the persisted records and requested controls a plan reads, and the
  decisions it makes (reported, then persisted by the controller once applied).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.aws.clients import AwsClients
from controller.rollout.decide import ABORTED, CONTROLS, PROGRESSING, PROMOTED, WAITING, Decision, RolloutRecord, decide
from controller.rollout.gates import GateReader, Readings
from controller.spec.schema import RolloutSpec

__all__ = [
    "ABORTED",
    "CONTROLS",
    "PROGRESSING",
    "PROMOTED",
    "WAITING",
    "Decision",
    "GateReader",
    "Readings",
    "RolloutBook",
    "RolloutRecord",
    "decide",
]


@dataclass
class RolloutBook:
    """What a plan knows of rollouts: the records persisted by earlier runs (alias ->
    record), the controls asked for (``abort``, ``promote``, ``retry``), the commit and the
    clock. The plan fills ``decisions`` (alias -> Decision)."""

    records: dict[str, RolloutRecord] = field(default_factory=dict)
    controls: dict[str, str] = field(default_factory=dict)
    commit: str | None = None
    now: Callable[[], float] = time.time
    ignore_alarms_at_start: bool = False
    decisions: dict[str, Decision] = field(default_factory=dict)

    def decide(self, clients: AwsClients, alias: str, rollout: RolloutSpec, target: str, live_version: str, live_routing: dict[str, float]) -> Decision:
        """Decide one alias (``FUNCTION/ALIAS``), reading its gates with ``clients`` only when asked."""
        reader = GateReader(clients)
        function, name = alias.split("/", 1)
        now = self.now()

        def gates(since: float) -> Readings:
            readings = Readings()
            if rollout.alarms:
                readings.alarms = reader.alarms(list(rollout.alarms))
            if rollout.analysis is not None:
                readings.errors, readings.invocations = reader.version_metrics(function, name, target, since, now)
            return readings

        decision = decide(
            alias=alias,
            rollout=rollout,
            target=target,
            live_version=live_version,
            live_routing=live_routing,
            record=self.records.get(alias),
            commit=self.commit,
            now=now,
            gates=gates,
            control=self.controls.get(alias),
            ignore_alarms_at_start=self.ignore_alarms_at_start,
        )
        self.decisions[alias] = decision
        return decision

    def summaries(self) -> list[dict[str, Any]]:
        """Each decision for reports (``Decision.summary``): alias, line, event, where it stands."""
        return [d.summary(alias) for alias, d in self.decisions.items()]
