"""The pipeline in one screen: observe -> expand -> diff -> plan -> apply."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import structlog

from controller.aws.clients import AwsClients
from controller.engine.apply import apply_actions
from controller.engine.diff import diff
from controller.engine.guardrails import Guardrails, check
from controller.engine.observe import observe_only
from controller.engine.plan import Held, Plan, make_plan
from controller.kinds import KINDS, PlanContext, PlanProblem
from controller.kinds.lambda_alias import needs_versions
from controller.live.scope import SSM_BATCH, AliasRoute, FunctionLive, Scope
from controller.model import Action, Drift, Outcome, OutcomeStatus, Resource
from controller.rollout import RolloutBook
from controller.spec import Spec

log = structlog.get_logger("pointsman.engine")


@dataclass(frozen=True)
class Managed:
    """One resource git declares, with what the run read of it: ``live`` is None when it is
    missing in AWS. ``desired.source`` is the file:line that declares it."""

    desired: Resource
    live: Resource | None

    @property
    def id(self) -> str:
        return self.desired.id

    @property
    def kind(self) -> str:
        return self.desired.kind

    @property
    def source(self) -> str | None:
        return self.desired.source


@dataclass
class Result:
    """Everything one reconcile found and did; reports and history are made from it."""

    problems: list[PlanProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what apply cannot fix (not drift)
    drift: list[Drift] = field(default_factory=list)
    plan: Plan = field(default_factory=lambda: Plan((), ()))
    outcomes: list[Outcome] = field(default_factory=list)
    # Every desired resource with its live state as read before apply (empty when the plan had problems).
    managed: list[Managed] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    applied: bool = False
    dry_run: bool = False
    prune: bool = False
    duration_s: float = 0.0
    # Actions on observe-only resources (manage: observe), with why: reported, never run.
    observed: tuple[Held, ...] = ()
    # The rollouts this plan decided (the book's decisions; persisted by the controller once applied).
    rollouts: RolloutBook = field(default_factory=RolloutBook)
    # Guardrails (engine/guardrails.py): why nothing was applied, and what waits for approval.
    refused: list[str] = field(default_factory=list)
    window: str = ""
    waiting: tuple[Action, ...] = ()

    @property
    def in_sync(self) -> bool:
        return not self.problems and not self.drift

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(o.status in (OutcomeStatus.FAILED, OutcomeStatus.SKIPPED) for o in self.outcomes)


def observe(spec: Spec, scope: Scope) -> None:
    """Read the managed scope, each read once, every quota bucket busy from the start.

    Each read starts as soon as what it depends on is known: the GetPolicy of each alias of a
    declared function as soon as its function's ListAliases lists it, of an alias an integration
    routes to as soon as its API's resources are read and its function's aliases listed. An
    alias that is not created yet (a first apply, a new service) has no policy and costs no
    GetPolicy, nor does any alias of a function that does not exist. Published versions are
    read only for functions whose plan needs them (``lambda_alias.needs_versions``); the SSM
    parameters the spec's environments name, ten a call.
    """
    lanes = scope.lanes()
    asked: set[tuple[str, ...]] = set()
    listed: dict[str, FunctionLive | None] = {}  # the functions whose ListAliases answered
    routed: dict[str, set[str]] = {}  # function -> aliases routed to, before its ListAliases answered
    guard = threading.Lock()

    def once(key: tuple[str, ...]) -> bool:
        with guard:
            fresh = key not in asked
            asked.add(key)
            return fresh

    def policy(function: str, alias: str) -> None:
        if once(("policy", function, alias)):
            lanes.submit("lambda.GetPolicy", partial(scope.policy_statements, function, alias))

    def policy_once_listed(function: str, alias: str) -> None:
        with guard:
            if function not in listed:
                routed.setdefault(function, set()).add(alias)
                return
            fn = listed[function]
        if fn is not None and alias in fn.aliases:
            policy(function, alias)

    def found_function(name: str, fn: FunctionLive | None) -> None:
        with guard:
            listed[name] = fn
            aliases = routed.pop(name, set())
        if fn is None:
            return
        decl = spec.functions.get(name)
        if decl is not None:
            aliases |= set(fn.aliases)
            if needs_versions(decl.spec, fn):
                lanes.submit("lambda.ListVersionsByFunction", partial(scope.function_versions, name))
        for alias in sorted(aliases):
            if alias in fn.aliases:
                policy(name, alias)

    def function(name: str) -> None:
        if once(("function", name)):
            lanes.submit("lambda.ListAliases", partial(scope.function, name), partial(found_function, name))

    def found_routes(api_name: str, routes: list[AliasRoute]) -> None:
        for stage in spec.rest_apis[api_name].spec.stages.values():
            for route in routes:
                if route.variable in stage.variables:
                    function(route.function)
                    policy_once_listed(route.function, stage.variables[route.variable])

    def found_apis(_: object) -> None:
        for name, api_id in scope.unique_api_ids(spec.rest_apis).items():
            lanes.submit("apigateway.GetStages", partial(scope.stages, api_id))
            lanes.submit("apigateway.GetResources", partial(scope.alias_routes, api_id), partial(found_routes, name))

    lanes.submit("apigateway.GetRestApis", scope.rest_api_ids, found_apis)
    for name in spec.functions:
        function(name)
    for domain in spec.domains:
        lanes.submit("apigateway.GetBasePathMappings", partial(scope.mappings, domain))
    parameters = sorted({name for decl in spec.functions.values() for name in decl.spec.ssm_parameters().values()})
    for start in range(0, len(parameters), SSM_BATCH):
        lanes.submit("ssm.GetParameters", partial(scope.parameters, parameters[start : start + SSM_BATCH]))
    lanes.wait()


# How many drifted resources a log line names (the rest are counted).
LOGGED_DRIFT = 20


def reconcile(
    spec: Spec,
    clients: AwsClients,
    *,
    apply: bool = False,
    prune: bool = False,
    dry_run: bool = False,
    concurrency: int = 8,
    should_stop: Callable[[], bool] = lambda: False,
    scope: Scope | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    rollouts: RolloutBook | None = None,
    guardrails: Guardrails | None = None,
    fence: Callable[[], bool] | None = None,
) -> Result:
    """One reconcile. ``scope``: reads to reuse (a scope kept from an earlier reconcile, whose
    changed resources were invalidated); what the plan writes is forgotten from it afterwards.
    ``on_plan(drift, actions)``: told the counts once planned, before anything is applied.
    ``guardrails``: the limits on what the plan may do (protect and sync windows, read from the
    spec, always apply); a refused or deferred plan makes no write call. ``fence()``: asked
    before every write call applied, completing actions too (a conditional check of the replica's lease
    on the target): False, and no further action is applied."""
    rails = guardrails if guardrails is not None else Guardrails()
    started = time.monotonic()
    clients.start_deadline()
    book = rollouts if rollouts is not None else RolloutBook()
    result = _pass(spec, clients, apply, prune, dry_run, concurrency, should_stop, scope, on_plan, rails, book, fence)
    created = [o for o in result.outcomes if o.action.kind == "rest_api" and o.status is OutcomeStatus.SUCCEEDED]
    if created and not should_stop():
        # APIs were just cloned: plan and apply what they carry (stages, permissions, mappings) now.
        log.info("planning again for the APIs just created", apis=[o.action.resource for o in created])
        follow = _pass(spec, clients, apply, prune, dry_run, concurrency, should_stop, guardrails=rails, rollouts=book, fence=fence)
        seen = {d.resource for d in result.drift}
        result.problems = follow.problems
        result.warnings = follow.warnings
        result.drift = result.drift + [d for d in follow.drift if d.resource not in seen]
        result.plan = Plan(result.plan.actions + follow.plan.actions, follow.plan.not_pruned, follow.plan.held)
        result.outcomes = result.outcomes + follow.outcomes
        # The second pass read the cloned APIs and what they carry: its reads are the newer ones.
        newer = {m.id: m for m in follow.managed}
        result.managed = [newer.pop(m.id, m) for m in result.managed] + list(newer.values())
        result.refused, result.window, result.waiting = follow.refused, follow.window, result.waiting + follow.waiting
        result.observed = result.observed + follow.observed
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
    scope: Scope | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    guardrails: Guardrails | None = None,
    rollouts: RolloutBook | None = None,
    fence: Callable[[], bool] | None = None,
) -> Result:
    book = rollouts if rollouts is not None else RolloutBook()
    result = Result(prune=prune, dry_run=dry_run, rollouts=book)
    scope = scope if scope is not None else Scope(clients, concurrency=concurrency)
    observe(spec, scope)
    ctx = PlanContext(spec, scope, prune=prune, rollouts=book)
    desired: list[Resource] = [r for kind in KINDS for r in kind.desired(ctx)]
    result.warnings = ctx.warnings
    if ctx.problems:
        result.problems = ctx.problems
    else:
        live: list[Resource] = []
        for kind in KINDS:
            live.extend(kind.live(ctx, [r for r in desired if r.kind == kind.name]))
        result.drift = diff(desired, live)
        found = {r.id: r for r in live}
        result.managed = [Managed(r, found.get(r.id)) for r in desired]
        # Observe-only resources (manage: observe): their drift is reported, their actions never run.
        result.plan, result.observed = observe_only(make_plan(result.drift, prune, desired), spec, result.drift)
        verdict = check(result.plan, spec, guardrails or Guardrails())
        result.plan, result.refused, result.window, result.waiting = verdict.plan, verdict.refused, verdict.window, verdict.waiting
        for line in result.refused:
            log.warning("plan refused; nothing is applied", reason=line)
        if result.window:
            log.info("sync window: nothing is applied", window=result.window)
        log.info("planned", drift=len(result.drift), actions=len(result.plan.actions))
        if result.drift:
            named = [f"{d.resource} ({d.status.value})" for d in result.drift[:LOGGED_DRIFT]]
            more = len(result.drift) - len(named)
            log.info("drift found", drift=len(result.drift), resources=named + ([f"and {more} more"] if more else []))
        if on_plan is not None:
            on_plan(len(result.drift), len(result.plan.actions))
        if apply and result.plan.actions and verdict.applies:
            result.outcomes = apply_actions(clients, result.plan.actions, dry_run=dry_run, should_stop=should_stop, fence=fence)
            result.applied = not dry_run
            scope.forget_writes((call.service, call.params) for action in result.plan.actions for call in action.calls)
    return result
