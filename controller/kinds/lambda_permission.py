"""lambda_permission/FUNCTION/ALIAS/API: API Gateway may invoke the alias a managed stage routes to.

Derived, never declared: for every managed stage, each integration URI naming
``function:NAME:${stageVariables.X}`` routes to alias ``stage.variables[X]`` of NAME, and
that alias's resource policy must let apigateway.amazonaws.com invoke it from that API.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from controller.kinds.base import Kind, PlanContext
from controller.model import Action, Call, Drift, FieldChange, Resource

PRINCIPAL = "apigateway.amazonaws.com"
INVOKE = "lambda:InvokeFunction"
SID_PREFIX = "pointsman-"
_SID_RE = re.compile(r"^pointsman-([a-z0-9]+)-")


def statement_id(api_id: str, alias: str) -> str:
    """One statement per (API, alias): unique even where an emulator keeps one policy per function."""
    return f"{SID_PREFIX}{api_id}-{alias}"[:100]


@dataclass(frozen=True)
class StageRoute:
    api: str
    api_id: str
    stage: str
    function: str
    alias: str
    variable: str
    method: str
    path: str


def stage_routes(ctx: PlanContext) -> list[StageRoute]:
    """Which alias each managed stage sends each alias-selecting integration to (once per plan:
    permissions and stages both need it)."""
    if "stage_routes" not in ctx.derived:
        ctx.derived["stage_routes"] = _stage_routes(ctx)
    return ctx.derived["stage_routes"]


def _stage_routes(ctx: PlanContext) -> list[StageRoute]:
    out: list[StageRoute] = []
    for api_name, decl in ctx.spec.rest_apis.items():
        api_id = ctx.api_id(api_name)
        if api_id is None:
            continue
        routes = ctx.scope.alias_routes(api_id)
        for stage_name, stage in decl.spec.stages.items():
            source = ctx.spec.source_of("rest_apis", api_name, "stages", stage_name)
            for route in routes:
                alias = stage.variables.get(route.variable)
                if alias is None:
                    ctx.problem(
                        source,
                        f"stage {stage_name} of {api_name} has no stage variable {route.variable!r}, which "
                        f"{route.method} {route.path} needs to choose an alias of {route.function}",
                    )
                    continue
                fn = ctx.scope.function(route.function)
                declared = alias in ctx.declared_aliases(route.function)
                if not declared and (fn is None or alias not in fn.aliases):
                    ctx.problem(
                        source,
                        f"stage {stage_name} of {api_name} routes {route.method} {route.path} to "
                        f"{route.function}:{alias} (stage variable {route.variable}), an alias that neither exists nor is declared",
                    )
                    continue
                out.append(
                    StageRoute(api_name, api_id, stage_name, route.function, alias, route.variable, route.method, route.path)
                )
    return out


def source_arn_pattern(ctx: PlanContext, function: str, api_id: str, stages: list[str]) -> str | None:
    fn = ctx.scope.function(function)
    if fn is None:
        return None
    stage = stages[0] if len(stages) == 1 else "*"
    return f"arn:{fn.partition}:execute-api:{fn.region}:{fn.account}:{api_id}/{stage}/*/*"


def covers(statement: dict[str, Any], source_arn: str) -> bool:
    """Does this policy statement let API Gateway invoke from every ARN ``source_arn`` matches?"""
    if statement.get("Effect", "Allow") != "Allow":
        return False
    principal = statement.get("Principal")
    services = principal.get("Service") if isinstance(principal, dict) else principal
    services = services if isinstance(services, list) else [services]
    if PRINCIPAL not in services and "*" not in services:
        return False
    actions = statement.get("Action")
    actions = actions if isinstance(actions, list) else [actions]
    if not any(a in (INVOKE, "lambda:*", "*") for a in actions):
        return False
    live_arn = _source_arn_of(statement)
    if live_arn is None:
        return True  # no SourceArn condition: any API may invoke
    # '*' in the wanted pattern is matched literally by '*' in the live pattern (or a wider one).
    return fnmatch.fnmatchcase(source_arn, live_arn)


def _source_arn_of(statement: dict[str, Any]) -> str | None:
    condition = statement.get("Condition") or {}
    for operator in ("ArnLike", "ArnEquals", "StringLike", "StringEquals"):
        value = (condition.get(operator) or {}).get("AWS:SourceArn")
        if value:
            return value
    return None


class LambdaPermission(Kind):
    name = "lambda_permission"
    wave = 2
    summary = "an invoke permission on an alias for API Gateway (derived from stages and integrations)"
    read_actions = ("lambda:GetPolicy", "apigateway:GET")
    write_actions = ("lambda:AddPermission", "lambda:RemovePermission")

    def desired(self, ctx: PlanContext) -> list[Resource]:
        grouped: dict[tuple[str, str, str], list[StageRoute]] = {}
        for route in stage_routes(ctx):
            grouped.setdefault((route.function, route.alias, route.api), []).append(route)
        out: list[Resource] = []
        for (function, alias, api), routes in sorted(grouped.items()):
            stages = sorted({r.stage for r in routes})
            api_id = routes[0].api_id
            arn = source_arn_pattern(ctx, function, api_id, stages)
            if arn is None:
                ctx.function(function, ctx.spec.source_of("rest_apis", api, "stages", stages[0]))
                continue
            first = routes[0]
            out.append(
                Resource(
                    kind=self.name,
                    key=f"{function}/{alias}/{api}",
                    attributes={"principal": PRINCIPAL, "action": INVOKE, "source_arn": arn},
                    context={
                        "function": function,
                        "alias": alias,
                        "api_id": api_id,
                        "statement_id": statement_id(api_id, alias),
                        "requires": (f"lambda_alias/{function}/{alias}",),
                        "missing_reason": (
                            f"stage {first.stage} of {api} routes to {function}:{alias}, which API Gateway may not invoke"
                        ),
                    },
                    source=ctx.spec.source_of("rest_apis", api, "stages", first.stage),
                )
            )
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        out: list[Resource] = []
        seen: set[str] = set()
        for want in desired:
            statements = ctx.scope.policy_statements(want.context["function"], want.context["alias"])
            covering = [s for s in statements if covers(s, want.attributes["source_arn"])]
            own = [s for s in statements if s.get("Sid") == want.context["statement_id"]]
            if covering:
                # Satisfied (by our statement or anyone's): live equals desired.
                out.append(Resource(self.name, want.key, dict(want.attributes), {**want.context, "live_sid": covering[0].get("Sid")}))
            elif own:
                attrs = {"principal": PRINCIPAL, "action": INVOKE, "source_arn": _source_arn_of(own[0])}
                out.append(Resource(self.name, want.key, attrs, {**want.context, "live_sid": own[0].get("Sid")}))
            seen.add(want.key)
        # Statements Pointsman added that nothing needs any more (on declared functions' aliases).
        for fn_name in ctx.spec.functions:
            fn = ctx.scope.function(fn_name)
            if fn is None:
                continue
            for alias in fn.aliases:
                for statement in ctx.scope.policy_statements(fn_name, alias):
                    match = _SID_RE.match(str(statement.get("Sid", "")))
                    if not match:
                        continue
                    api = ctx.scope.api_name(match[1])
                    key = f"{fn_name}/{alias}/{api}"
                    if key in seen:
                        continue
                    seen.add(key)
                    attrs = {"principal": PRINCIPAL, "action": INVOKE, "source_arn": _source_arn_of(statement)}
                    context = {"function": fn_name, "alias": alias, "live_sid": statement["Sid"]}
                    out.append(Resource(self.name, key, attrs, context))
        return out

    def converge(
        self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]
    ) -> list[Action]:
        assert desired is not None
        ctx = desired.context
        add = Call(
            "lambda",
            "add_permission",
            {
                "FunctionName": ctx["function"],
                "Qualifier": ctx["alias"],
                "StatementId": ctx["statement_id"],
                "Action": INVOKE,
                "Principal": PRINCIPAL,
                "SourceArn": desired.attributes["source_arn"],
            },
        )
        requires = self.requires(desired)
        if live is None:
            return [self.action(desired, "create", [add], ctx["missing_reason"], requires)]
        remove = Call(
            "lambda",
            "remove_permission",
            {"FunctionName": ctx["function"], "Qualifier": ctx["alias"], "StatementId": live.context["live_sid"]},
        )
        reason = f"SourceArn {live.attributes['source_arn']} does not cover {desired.attributes['source_arn']}"
        return [self.action(desired, "update", [remove, add], reason, requires)]

    def delete(self, live: Resource) -> list[Action]:
        call = Call(
            "lambda",
            "remove_permission",
            {"FunctionName": live.context["function"], "Qualifier": live.context["alias"], "StatementId": live.context["live_sid"]},
        )
        return [self.action(live, "delete", [call], "no managed stage routes here any more (prune)")]
