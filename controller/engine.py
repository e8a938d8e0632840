"""The pipeline in one screen: observe -> expand -> diff -> plan -> apply."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import structlog

from controller.apply import apply_actions
from controller.aws import AwsClients
from controller.diff import diff
from controller.kinds import KINDS, PlanContext, PlanProblem
from controller.model import Drift, Outcome, OutcomeStatus, Resource
from controller.plan import Plan, make_plan
from controller.scope import Scope
from controller.spec import Spec

log = structlog.get_logger("pointsman.engine")


@dataclass
class Result:
    """Everything one reconcile found and did; reports and history are made from it."""

    problems: list[PlanProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what apply cannot fix (not drift)
    drift: list[Drift] = field(default_factory=list)
    plan: Plan = field(default_factory=lambda: Plan((), ()))
    outcomes: list[Outcome] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    applied: bool = False
    dry_run: bool = False
    prune: bool = False
    duration_s: float = 0.0

    @property
    def in_sync(self) -> bool:
        return not self.problems and not self.drift

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(o.status in (OutcomeStatus.FAILED, OutcomeStatus.SKIPPED) for o in self.outcomes)


def observe(spec: Spec, scope: Scope) -> None:
    """Read the managed scope with bounded concurrency, in dependency order, each read once."""
    first: list[Callable[[], object]] = [scope.rest_api_ids]
    first += [partial(scope.function, name) for name in spec.functions]
    first += [partial(scope.mappings, domain) for domain in spec.domains]
    scope.each(first)
    api_ids = scope.unique_api_ids(spec.rest_apis)
    per_api: list[Callable[[], object]] = [partial(scope.stages, i) for i in api_ids.values()]
    per_api += [partial(scope.alias_routes, i) for i in api_ids.values()]
    scope.each(per_api)
    routed: set[tuple[str, str]] = set()
    for name, api_id in api_ids.items():
        for stage in spec.rest_apis[name].spec.stages.values():
            for route in scope.alias_routes(api_id):
                if route.variable in stage.variables:
                    routed.add((route.function, stage.variables[route.variable]))
    scope.each([partial(scope.function, f) for f in {f for f, _ in routed} - set(spec.functions)])
    wanted = set(routed)
    for name in spec.functions:
        fn = scope.function(name)
        wanted.update((name, alias) for alias in (fn.aliases if fn else ()))
    scope.each([partial(scope.policy_statements, f, a) for f, a in sorted(wanted)])


def reconcile(
    spec: Spec,
    clients: AwsClients,
    *,
    apply: bool = False,
    prune: bool = False,
    dry_run: bool = False,
    concurrency: int = 8,
    should_stop: Callable[[], bool] = lambda: False,
) -> Result:
    started = time.monotonic()
    result = _pass(spec, clients, apply, prune, dry_run, concurrency, should_stop)
    created = [o for o in result.outcomes if o.action.kind == "rest_api" and o.status is OutcomeStatus.SUCCEEDED]
    if created and not should_stop():
        # APIs were just cloned: plan and apply what they carry (stages, permissions, mappings) now.
        log.info("planning again for the APIs just created", apis=[o.action.resource for o in created])
        follow = _pass(spec, clients, apply, prune, dry_run, concurrency, should_stop)
        seen = {d.resource for d in result.drift}
        result.problems = follow.problems
        result.warnings = follow.warnings
        result.drift = result.drift + [d for d in follow.drift if d.resource not in seen]
        result.plan = Plan(result.plan.actions + follow.plan.actions, follow.plan.not_pruned, follow.plan.held)
        result.outcomes = result.outcomes + follow.outcomes
    result.api_calls = clients.counter.snapshot()
    result.duration_s = time.monotonic() - started
    return result


def _pass(
    spec: Spec,
    clients: AwsClients,
    apply: bool,
    prune: bool,
    dry_run: bool,
    concurrency: int,
    should_stop: Callable[[], bool],
) -> Result:
    result = Result(prune=prune, dry_run=dry_run)
    scope = Scope(clients, concurrency=concurrency)
    observe(spec, scope)
    ctx = PlanContext(spec, scope, prune=prune)
    desired: list[Resource] = [r for kind in KINDS for r in kind.desired(ctx)]
    result.warnings = ctx.warnings
    if ctx.problems:
        result.problems = ctx.problems
    else:
        live: list[Resource] = []
        for kind in KINDS:
            live.extend(kind.live(ctx, [r for r in desired if r.kind == kind.name]))
        result.drift = diff(desired, live)
        result.plan = make_plan(result.drift, prune, desired)
        log.info("planned", drift=len(result.drift), actions=len(result.plan.actions))
        if apply and result.plan.actions:
            result.outcomes = apply_actions(clients, result.plan.actions, dry_run=dry_run, should_stop=should_stop)
            result.applied = not dry_run
    return result
