"""Guardrails on what one plan may do, decided before any write call.

- **protect** (``protect: true`` on an alias, stage, mapping or REST API): its deletion is held
  back (never run, prune or not), and an update or deletion of it refuses the whole plan unless
  ``allow_protected``. Protection is read from the spec being applied and from ``protected_before``
  (the spec applied last, when known): a resource whose protected declaration was removed in the
  new commit stays protected from deletion until a commit that declares it unprotected is applied.
- **blast radius**: more actions than ``max_changes`` or deletions than ``max_deletions`` refuse
  the plan.
- **sync windows** (``windows:`` in the spec): while one blocks, nothing is applied; with
  ``allow_heal`` a plan that restores a commit already applied (``heal``) goes through.
- **manual approval** (``approve: manual`` on an alias or stage, honoured when ``approvals``):
  its actions, and every action that requires them, wait until approved (``approved``: the
  fingerprints of the actions a person approved); the rest of the plan is applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.engine.plan import Held, Plan
from controller.model import Action
from controller.spec import Spec
from controller.spec.windows import verdict


@dataclass(frozen=True)
class Guardrails:
    allow_protected: bool = False
    max_changes: int | None = None
    max_deletions: int | None = None
    now: datetime | None = None  # the clock (tests inject one); None: the time now
    heal: bool = False  # the commit was applied before: the plan restores git's state
    approvals: bool = False  # honour approve: manual (the controller; a person running apply approves by running it)
    approved: frozenset[str] = frozenset()  # fingerprints (``fingerprint``) of approved actions
    protected_before: Spec | None = None  # the spec applied last: its protection outlives a removal

    def clock(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


@dataclass
class Verdict:
    """What the guardrails decided for a plan; ``applies`` is False when nothing may be written."""

    plan: Plan
    refused: list[str] = field(default_factory=list)  # why the plan is refused, one line each
    window: str = ""  # the sync window that defers applies, as words
    waiting: tuple[Action, ...] = ()  # actions waiting for approval

    @property
    def applies(self) -> bool:
        return not self.refused and not self.window


def fingerprint(action: Action) -> str:
    """What an approval approves: this resource, this operation, for this reason (its values)."""
    return f"{action.resource} | {action.operation} | {action.reason}"


def _protected(spec: Spec | None) -> dict[str, str]:
    """Resource id (or id prefix, ending in /) -> the spec line that protects it."""
    out: dict[str, str] = {}
    if spec is None:
        return out
    for fn in spec.functions.values():
        for alias, decl in fn.spec.aliases.items():
            if decl.protect:
                out[f"lambda_alias/{fn.name}/{alias}"] = spec.source_of("functions", fn.name, "aliases", alias) or fn.source
    for api in spec.rest_apis.values():
        if api.spec.protect:
            out[f"rest_api/{api.name}"] = api.source
            for kind in ("rest_stage", "rest_method", "stage_variable"):
                out[f"{kind}/{api.name}/"] = api.source
            out[f"rest_deployment/{api.name}"] = api.source
        for stage, decl in api.spec.stages.items():
            if decl.protect:
                where = spec.source_of("rest_apis", api.name, "stages", stage) or api.source
                out[f"rest_stage/{api.name}/{stage}"] = where
                out[f"stage_variable/{api.name}/{stage}/"] = where
    for domain in spec.domains.values():
        for base_path, decl in domain.spec.mappings.items():
            if decl.protect:
                out[f"base_path_mapping/{domain.name}/{base_path}"] = spec.source_of("domains", domain.name, "mappings", base_path) or domain.source
    return out


def _approval(spec: Spec) -> dict[str, str]:
    out: dict[str, str] = {}
    for fn in spec.functions.values():
        for alias, decl in fn.spec.aliases.items():
            if decl.approve == "manual":
                out[f"lambda_alias/{fn.name}/{alias}"] = spec.source_of("functions", fn.name, "aliases", alias) or fn.source
    for api in spec.rest_apis.values():
        for stage, decl in api.spec.stages.items():
            if decl.approve == "manual":
                out[f"rest_stage/{api.name}/{stage}"] = spec.source_of("rest_apis", api.name, "stages", stage) or api.source
    return out


def _match(resource: str, rules: dict[str, str]) -> str | None:
    if resource in rules:
        return rules[resource]
    for key, where in rules.items():
        if key.endswith("/") and resource.startswith(key):
            return where
    return None


def with_dependents(actions: Iterable[Action], stopped: set[str]) -> tuple[list[Action], list[Action]]:
    """Split ``actions`` into those that may run and those that do not: the actions on ``stopped``
    resources and, transitively, every action that requires one of them."""
    actions = list(actions)
    stopped = set(stopped)
    while True:
        grown = {a.resource for a in actions if a.resource not in stopped and any(r in stopped for r in a.requires)}
        if not grown:
            break
        stopped |= grown
    return [a for a in actions if a.resource not in stopped], [a for a in actions if a.resource in stopped]


def check(plan: Plan, spec: Spec, rails: Guardrails) -> Verdict:
    """Apply the guardrails to ``plan``: hold protected deletions, set aside what waits for
    approval, and say whether the rest may be applied now (refusals, sync windows)."""
    protected = {**_protected(rails.protected_before), **_protected(spec)}
    held = list(plan.held)
    # Protected deletions are held, and so is every deletion that waits for one of them.
    deletions = {a.resource: where for a in plan.actions if a.deletes and (where := _match(a.resource, protected)) is not None}
    actions, stopped = with_dependents(plan.actions, set(deletions))
    for action in stopped:
        where = deletions.get(action.resource)
        reason = f"protected (protect: true at {where})" if where else "it waits for a protected deletion that is held back"
        held.append(Held(action, reason))
    verdict_ = Verdict(dataclasses.replace(plan, actions=tuple(actions), held=tuple(held)))
    # Changes to protected resources need allow_protected.
    touched = [a for a in actions if a.verb in ("update", "delete") and _match(a.resource, protected) is not None]
    if touched and not rails.allow_protected:
        verdict_.refused.append(
            f"{len(touched)} {'change' if len(touched) == 1 else 'changes'} to protected resources "
            f"({', '.join(sorted({a.resource for a in touched}))}); pass --allow-protected (or set POINTSMAN_ALLOW_PROTECTED) to allow"
        )
    deletes = sum(1 for a in actions if a.deletes)
    if rails.max_changes is not None and len(actions) > rails.max_changes:
        verdict_.refused.append(f"the plan has {len(actions)} actions, over --max-changes {rails.max_changes}")
    if rails.max_deletions is not None and deletes > rails.max_deletions:
        verdict_.refused.append(f"the plan has {deletes} deletions, over --max-deletions {rails.max_deletions}")
    if rails.approvals:
        manual = _approval(spec)
        waiting_ids = {a.resource for a in actions if _match(a.resource, manual) is not None and fingerprint(a) not in rails.approved}
        kept, waiting = with_dependents(actions, waiting_ids)
        verdict_.waiting = tuple(waiting)
        verdict_.plan = dataclasses.replace(verdict_.plan, actions=tuple(kept))
    if spec.windows and verdict_.plan.actions and not verdict_.refused:
        now = rails.clock()
        window = verdict(spec.windows, now)
        if window.blocked and not (rails.heal and window.heal_allowed):
            verdict_.window = window.message(now)
    return verdict_
