"""Drift -> ordered actions. Order: wave (publish, alias, permission, stage, mapping; deletions
after, in reverse), then resource id. Extra resources are deleted only with prune."""

from __future__ import annotations

from dataclasses import dataclass

from controller.kinds import BY_NAME
from controller.model import Action, Drift, DriftStatus


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    not_pruned: tuple[Drift, ...]  # extra drift left alone because prune is off


def make_plan(drifts: list[Drift], prune: bool) -> Plan:
    actions: list[Action] = []
    not_pruned: list[Drift] = []
    entries_by_parent: dict[str, list[Drift]] = {}
    for drift in drifts:
        if drift.parent is not None:
            if prune:
                entries_by_parent.setdefault(drift.parent, []).append(drift)
            else:
                not_pruned.append(drift)
    handled_parents: set[str] = set()
    for drift in drifts:
        if drift.parent is not None:
            continue
        kind = BY_NAME[drift.kind]
        if drift.status is DriftStatus.EXTRA:
            if prune:
                assert drift.live is not None
                actions.extend(kind.delete(drift.live))
            else:
                not_pruned.append(drift)
            continue
        entries = entries_by_parent.get(drift.resource, [])
        handled_parents.add(drift.resource)
        actions.extend(kind.converge(drift.desired, drift.live, drift.changes, entries))
    # Resources in sync except for extra entries to prune.
    for parent, entries in entries_by_parent.items():
        if parent in handled_parents:
            continue
        first = entries[0]
        actions.extend(BY_NAME[first.desired.kind].converge(first.desired, first.live, (), entries))  # type: ignore[union-attr]
    actions.sort(key=lambda a: (a.wave, a.resource))
    return Plan(tuple(actions), tuple(not_pruned))
