"""Observe-only management: ``manage: observe`` on a function, alias, REST API, stage or domain.

Its drift is reported like any other (plan, history, status page, notifications), but no action
on it is ever run: not by apply, a rollout step or prune. An action is observe-only when its
resource is, or when it needs (``requires``) an action that is. What two declarations derive
together is observe-only when either is observed, and the plan says which one holds it back:

- an invoke permission (``lambda_permission/FUNCTION/ALIAS/API``): its function, its alias or
  its API;
- a base path mapping (``base_path_mapping/DOMAIN/PATH``): its domain, or the API or the stage it
  points at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from controller.engine.guardrails import with_dependents
from controller.engine.plan import Held, Plan
from controller.model import Drift
from controller.spec import Spec

OBSERVE = "observe"


@dataclass(frozen=True)
class _Observed:
    """One observed declaration: what it is, and where the spec says so."""

    what: str  # "function getProducts", "alias getProducts:prod", "REST API products-v1"
    where: str

    def reason(self, holds_back: bool = False) -> str:
        text = f"{self.what} is observe-only (manage: observe at {self.where})"
        return f"held back: {text}" if holds_back else text


def _declarations(
    spec: Spec,
) -> tuple[dict[str, _Observed], dict[str, _Observed], dict[str, _Observed], dict[tuple[str, str], _Observed], dict[str, _Observed]]:
    """Observed functions, aliases (``F/A``), APIs, stages (``(API, STAGE)``) and domains."""
    functions: dict[str, _Observed] = {}
    aliases: dict[str, _Observed] = {}
    apis: dict[str, _Observed] = {}
    stages: dict[tuple[str, str], _Observed] = {}
    domains: dict[str, _Observed] = {}
    for fn in spec.functions.values():
        if fn.spec.manage == OBSERVE:
            functions[fn.name] = _Observed(f"function {fn.name}", fn.source)
        for alias, decl in fn.spec.aliases.items():
            if decl.manage == OBSERVE:
                where = spec.source_of("functions", fn.name, "aliases", alias) or fn.source
                aliases[f"{fn.name}/{alias}"] = _Observed(f"alias {fn.name}:{alias}", where)
    for api in spec.rest_apis.values():
        if api.spec.manage == OBSERVE:
            apis[api.name] = _Observed(f"REST API {api.name}", api.source)
        for stage, decl in api.spec.stages.items():
            if decl.manage == OBSERVE:
                where = spec.source_of("rest_apis", api.name, "stages", stage) or api.source
                stages[(api.name, stage)] = _Observed(f"stage {api.name}/{stage}", where)
    for domain in spec.domains.values():
        if domain.spec.manage == OBSERVE:
            domains[domain.name] = _Observed(f"domain {domain.name}", domain.source)
    return functions, aliases, apis, stages, domains


def observed_by(spec: Spec, drift: list[Drift]) -> Callable[[str], tuple[_Observed, bool] | None]:
    """A function of a resource id: the observed declaration that keeps it from being written (and
    whether that declaration only holds back something derived with a managed one), or None."""
    functions, aliases, apis, stages, domains = _declarations(spec)
    targets: dict[str, tuple[str, str]] = {}  # mapping resource -> (API, stage) it points at, in git or live
    for d in drift:
        if d.kind == "base_path_mapping":
            for side in (d.desired, d.live):
                if side is not None and side.attributes.get("api"):
                    targets.setdefault(d.resource, (str(side.attributes["api"]), str(side.attributes.get("stage") or "")))

    def find(resource: str) -> tuple[_Observed, bool] | None:
        kind, _, key = resource.partition("/")
        parts = key.split("/")
        if kind.startswith("lambda_"):
            fn = functions.get(parts[0])
            if fn is not None:
                return fn, kind == "lambda_permission"
            alias = aliases.get("/".join(parts[:2])) if len(parts) >= 2 else None
            if alias is not None and kind in ("lambda_alias", "lambda_permission"):
                return alias, kind == "lambda_permission"
            if kind == "lambda_permission" and len(parts) >= 3 and parts[2] in apis:
                return apis[parts[2]], True
            return None
        if kind in ("rest_api", "rest_stage", "rest_method", "rest_deployment", "stage_variable"):
            if parts[0] in apis:
                return apis[parts[0]], False
            if kind in ("rest_stage", "stage_variable") and len(parts) >= 2 and (parts[0], parts[1]) in stages:
                return stages[(parts[0], parts[1])], False
            return None
        if kind == "base_path_mapping":
            if parts[0] in domains:
                return domains[parts[0]], False
            target = targets.get(resource)
            if target is not None:
                if target[0] in apis:
                    return apis[target[0]], True
                if target in stages:
                    return stages[target], True
                elsewhere = _elsewhere(spec, *target)  # a part of a spec: the API may be declared in the rest
                if elsewhere is not None:
                    return elsewhere, True
        return None

    return find


def _elsewhere(spec: Spec, api: str, stage: str) -> _Observed | None:
    """The observed declaration of ``api`` or its ``stage`` when the whole spec declares them and
    this part of it does not (a mapping in a focused run pointing at an API outside the focus)."""
    if not spec.leaves_out_api(api):
        return None
    declared = spec.declared_api(api)
    assert declared is not None and spec.whole is not None
    if declared.spec.manage == OBSERVE:
        return _Observed(f"REST API {api}", declared.source)
    decl = declared.spec.stages.get(stage)
    if decl is not None and decl.manage == OBSERVE:
        return _Observed(f"stage {api}/{stage}", spec.whole.source_of("rest_apis", api, "stages", stage) or declared.source)
    return None


def observe_only(plan: Plan, spec: Spec, drift: list[Drift]) -> tuple[Plan, tuple[Held, ...]]:
    """Take the observe-only actions out of ``plan`` (and, transitively, those that require them):
    the plan that may run, and the actions set aside with why (reported, never run)."""
    find = observed_by(spec, drift)
    reasons: dict[str, str] = {}
    for action in plan.actions:
        hit = find(action.resource)
        if hit is not None:
            reasons[action.resource] = hit[0].reason(holds_back=hit[1])
    if not reasons:
        return plan, ()
    kept, stopped = with_dependents(plan.actions, set(reasons))
    set_aside = {a.resource for a in stopped}
    observed: list[Held] = []
    for action in stopped:
        if action.resource not in reasons:
            needed = next(r for r in action.requires if r in set_aside)
            reasons[action.resource] = f"needs {needed}, which is observe-only"
        observed.append(Held(action, reasons[action.resource]))
    return dataclasses.replace(plan, actions=tuple(kept)), tuple(observed)
