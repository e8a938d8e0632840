"""Drift -> ordered actions.

Order: wave (publish, alias, permission, stage, mapping; deletions after, in reverse), then
resource id. Every change is make-before-break: what a resource needs is created (or
repointed) before the resource is, and a deletion waits for every live user of what it
deletes (the stage routing to an alias, the mapping pointing at a stage) to stop using it.
A deletion whose user stays as it is, or which something declared still needs, is held
back and reported, never run; so is one whose user this plan deletes when that deletion reaches
clients only at the API's next deployment (a route behind an http-proxy and the alias it names). Extra resources are deleted only with prune; statements
Pointsman replaced by wider ones are removed without it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from controller.kinds import BY_NAME
from controller.model import Action, Drift, DriftStatus, Resource


@dataclass(frozen=True)
class Held:
    """A deletion the plan will not run now, and why (what still uses the resource)."""

    action: Action
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.action.resource, "operation": self.action.operation, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    not_pruned: tuple[Drift, ...]  # extra drift left alone because prune is off
    held: tuple[Held, ...] = ()  # deletions held back because something still uses the resource


def make_plan(drifts: list[Drift], prune: bool, desired: Iterable[Resource] = ()) -> Plan:
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
            assert drift.live is not None
            # A statement Pointsman replaced goes once nothing needs it, prune or not.
            if prune or drift.live.context.get("superseded_by"):
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
    kept, held = _deletions_wait_for_users(actions, list(desired))
    return Plan(tuple(kept), tuple(not_pruned), tuple(held))


_DECLARED_USERS = ("rest_stage", "base_path_mapping")


def _deletions_wait_for_users(actions: list[Action], desired: list[Resource]) -> tuple[list[Action], list[Held]]:
    """Make each deletion require the actions of its live users; hold it when a user stays.

    ``actions`` are in apply order, so a user's own deletion (a mapping before its stage, a
    stage before its alias) is decided before the deletions that wait for it.
    """
    desired_ids = {r.id for r in desired}
    needed_by: dict[str, str] = {}  # resource id -> a declared resource that needs it
    # Name what a person declared (a stage, a mapping) before what Pointsman derives from it.
    for resource in sorted(desired, key=lambda r: r.kind not in _DECLARED_USERS):
        for need in resource.context.get("requires", ()):
            needed_by.setdefault(need, resource.id)
    acting = Counter(a.resource for a in actions)  # resources with an action that will run
    deleting = {a.resource for a in actions if a.deletes}
    kept: list[Action] = []
    held: list[Held] = []
    for action in actions:
        if not action.deletes:
            kept.append(action)
            continue
        reason = ""
        if action.resource not in desired_ids and action.resource in needed_by:
            reason = f"{needed_by[action.resource]}, which the spec declares, still uses it"
        requires = list(action.requires)
        for user in action.users:
            user_kind = BY_NAME.get(user.split("/", 1)[0])
            if acting[user] and user in deleting and user_kind is not None and user_kind.deletion_reaches_clients_at_next_deployment:
                if not reason:
                    reason = f"{user} still uses it: this plan deletes it, but stages serve it until the API's next deployment"
            elif acting[user]:
                requires.append(user)
            elif not reason:
                reason = f"{user} still uses it and is not changed by this plan"
        if reason:
            held.append(Held(action, reason))
            acting[action.resource] -= 1
            continue
        kept.append(dataclasses.replace(action, requires=tuple(dict.fromkeys(requires))))
    return kept, held
