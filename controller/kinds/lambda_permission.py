"""lambda_permission/FUNCTION/ALIAS/API: API Gateway may invoke the alias a managed stage routes to.

Derived, never declared: for every managed stage, each integration URI naming
``function:NAME:${stageVariables.X}`` routes to alias ``stage.variables[X]`` of NAME, and
that alias's resource policy must let apigateway.amazonaws.com invoke it from that API.

The permission Pointsman adds covers the stage (``API_ID/STAGE/*/*``). One already there counts
when it covers that, or when the statements there together cover every route the stage sends to
the alias: API Gateway invokes with the SourceArn ``arn:aws:execute-api:REGION:ACCOUNT:API_ID/
STAGE/VERB/RESOURCE_PATH`` (https://docs.aws.amazon.com/apigateway/latest/developerguide/
api-gateway-control-access-using-iam-policies-to-invoke-api.html), and the console's own
statement for a method is ``API_ID/*/VERB/PATH`` (``*`` for ANY).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.aws.clients import AWS_ERRORS, error_code
from controller.kinds.base import Kind, PlanContext
from controller.live.scope import VERSION_SELECTED, PolicyStatement
from controller.model import Action, Call, Drift, FieldChange, Resource
from controller.versions import STAGE_VERSIONS_VAR, versioned_path

PRINCIPAL = "apigateway.amazonaws.com"
INVOKE = "lambda:InvokeFunction"
SID_PREFIX = "pointsman-"
_SID_RE = re.compile(r"^pointsman-([a-z0-9]+)-")
_ARN_API_RE = re.compile(r":execute-api:[^:]*:[^:]*:([A-Za-z0-9]+)/")
SID_MAX = 100


def statement_id(api_id: str, alias: str, source_arn: str) -> str:
    """``pointsman-<api id>-<alias>-<digest of SourceArn>``: unique per (API, alias) even where an
    emulator keeps one policy per function, and different for every SourceArn, so a wider
    statement can be added before the narrower one it replaces is removed."""
    digest = hashlib.sha256(source_arn.encode()).hexdigest()[:8]
    head = f"{SID_PREFIX}{api_id}-"
    return f"{head}{alias[: SID_MAX - len(head) - len(digest) - 1]}-{digest}"


def own_api_id(statement: PolicyStatement) -> str | None:
    """The API id of a statement Pointsman added (its id names it); None for anyone else's."""
    match = _SID_RE.match(statement.sid or "")
    return match[1] if match else None


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
    invoked: str = ""  # the resource path API Gateway invokes the alias from, when not ``path`` (behind an http-proxy)

    def source_arn(self, partition: str, region: str, account: str) -> str:
        """The SourceArn API Gateway invokes this route's alias with."""
        return invoke_arn(partition, region, account, self.api_id, self.stage, self.method, self.invoked or self.path)


def invoke_arn(partition: str, region: str, account: str, api_id: str, stage: str, method: str, path: str) -> str:
    """``arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/VERB/PATH`` (``*`` for the verb of ANY)."""
    verb = "*" if method == "ANY" else method
    return f"arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/{verb}/{path.lstrip('/')}"


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
        versions = decl.spec.versions
        managed = {(r.method, r.path) for r in versions.routes} if versions else set()
        # Methods a versions section manages get their routes from the spec (below), not from
        # whatever integration they have now.
        routes = [r for r in ctx.scope.alias_routes(api_id) if (r.method, r.path) not in managed and r.variable != VERSION_SELECTED]
        for stage_name, stage in decl.spec.stages.items():
            source = ctx.spec.source_of("rest_apis", api_name, "stages", stage_name)
            if versions is not None:
                for version in versions.exposed(stage_name):
                    for vroute in versions.routes:
                        invoked = versioned_path(vroute.path, version) if versions.strategy == "http-proxy" else ""
                        out.append(StageRoute(api_name, api_id, stage_name, vroute.function, version, VERSION_SELECTED, vroute.method, vroute.path, invoked))
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
                out.append(StageRoute(api_name, api_id, stage_name, route.function, alias, route.variable, route.method, route.path))
    return out


@dataclass(frozen=True)
class LiveRoute:
    """A live stage that routes to a function alias now (through its stage variables)."""

    api_id: str
    stage: str
    function: str
    alias: str


def live_routes(ctx: PlanContext, api_id: str) -> list[LiveRoute]:
    """Which alias each live stage of an API routes to now; an API that is gone routes nowhere."""
    memo: dict[str, list[LiveRoute]] = ctx.derived.setdefault("live_routes", {})
    if api_id not in memo:
        try:
            stages, routes = ctx.scope.stages(api_id), ctx.scope.alias_routes(api_id)
        except AWS_ERRORS as exc:
            if error_code(exc) != "NotFoundException":
                raise
            stages, routes = {}, []
        out: list[LiveRoute] = []
        for stage_name, item in sorted(stages.items()):
            variables = item.get("variables") or {}
            for route in routes:
                if route.variable == VERSION_SELECTED:  # every version the stage exposes
                    aliases = [v for v in (variables.get(STAGE_VERSIONS_VAR) or "").split(",") if v]
                else:
                    aliases = [variables[route.variable]] if variables.get(route.variable) else []
                out.extend(LiveRoute(api_id, stage_name, route.function, alias) for alias in aliases)
        memo[api_id] = out
    return memo[api_id]


def stage_users(ctx: PlanContext, function: str, alias: str, api_ids: Iterable[str], still_covered: Callable[[str], bool] | None = None) -> tuple[str, ...]:
    """``rest_stage/...`` ids of the live stages of ``api_ids`` that route to ``function:alias``,
    leaving out those whose invoke ARN ``still_covered(arn)`` says stays permitted."""
    fn = ctx.scope.function(function)
    users: list[str] = []
    for api_id in api_ids:
        for route in live_routes(ctx, api_id):
            if route.function != function or route.alias != alias:
                continue
            if still_covered is not None and fn is not None:
                arn = f"arn:{fn.partition}:execute-api:{fn.region}:{fn.account}:{api_id}/{route.stage}/*/*"
                if still_covered(arn):
                    continue
            users.append(f"rest_stage/{ctx.scope.api_name(api_id)}/{route.stage}")
    return tuple(dict.fromkeys(users))


def route_users(ctx: PlanContext, function: str, alias: str, api_ids: Iterable[str]) -> tuple[str, ...]:
    """``rest_method/API/METHOD/PATH`` ids of the live methods of ``api_ids`` whose integration
    URI names ``function:alias`` literally (``...function:NAME:2022-01-01/invocations``: the
    routes behind an http-proxy, and anyone else's); an API that is gone has none."""
    suffix = f":function:{function}:{alias}/invocations"
    users: list[str] = []
    for api_id in api_ids:
        try:
            resources = ctx.scope.resources(api_id)
        except AWS_ERRORS as exc:
            if error_code(exc) != "NotFoundException":
                raise
            continue
        for path, resource in sorted(resources.items()):
            for method, body in sorted((resource.get("resourceMethods") or {}).items()):
                uri = str(((body or {}).get("methodIntegration") or {}).get("uri") or "")
                if uri.endswith(suffix):
                    users.append(f"rest_method/{ctx.scope.api_name(api_id)}/{method}{path}")
    return tuple(dict.fromkeys(users))


def apis_named_by(statements: Iterable[PolicyStatement]) -> list[str]:
    """API ids an alias's policy lets invoke it (from SourceArn conditions and Pointsman's ids)."""
    ids: list[str] = []
    for statement in statements:
        arn = statement.source_arn or ""
        match = _ARN_API_RE.search(arn)
        if match and "*" not in match[1]:
            ids.append(match[1])
        own = own_api_id(statement)
        if own:
            ids.append(own)
    return list(dict.fromkeys(ids))


def source_arn_pattern(ctx: PlanContext, function: str, api_id: str, stages: list[str]) -> str | None:
    fn = ctx.scope.function(function)
    if fn is None:
        return None
    stage = stages[0] if len(stages) == 1 else "*"
    return f"arn:{fn.partition}:execute-api:{fn.region}:{fn.account}:{api_id}/{stage}/*/*"


def covers(statement: PolicyStatement | Mapping[str, Any], source_arn: str) -> bool:
    """Does this policy statement (as the scope keeps it, or as a policy document has it) let API
    Gateway invoke from every ARN ``source_arn`` matches?"""
    if not isinstance(statement, PolicyStatement):
        statement = PolicyStatement.parse(statement)
    if statement.effect != "Allow":
        return False
    principal = statement.principal
    services = principal.get("Service") if isinstance(principal, dict) else principal
    services = services if isinstance(services, list) else [services]
    if PRINCIPAL not in services and "*" not in services:
        return False
    actions = statement.action
    actions = actions if isinstance(actions, list) else [actions]
    if not any(a in (INVOKE, "lambda:*", "*") for a in actions):
        return False
    live_arn = statement.source_arn
    if live_arn is None:
        return True  # no SourceArn condition: any API may invoke
    # '*' in the wanted pattern is matched literally by '*' in the live pattern (or a wider one).
    return fnmatch.fnmatchcase(source_arn, live_arn)


class LambdaPermission(Kind):
    name = "lambda_permission"
    wave = 3
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
            fn = ctx.scope.function(function)
            assert fn is not None  # source_arn_pattern found it
            route_arns = sorted({r.source_arn(fn.partition, fn.region, fn.account) for r in routes})
            out.append(
                Resource(
                    kind=self.name,
                    key=f"{function}/{alias}/{api}",
                    attributes={"principal": PRINCIPAL, "action": INVOKE, "source_arn": arn},
                    context={
                        "function": function,
                        "alias": alias,
                        "api_id": api_id,
                        "statement_id": statement_id(api_id, alias, arn),
                        "route_arns": route_arns,
                        "requires": (f"lambda_alias/{function}/{alias}",),
                        "missing_reason": (f"stage {first.stage} of {api} routes to {function}:{alias}, which API Gateway may not invoke"),
                    },
                    source=ctx.spec.source_of("rest_apis", api, "stages", first.stage),
                )
            )
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        out: list[Resource] = []
        handled: set[tuple[str, str, str]] = set()
        for want in desired:
            function, alias, api_id = want.context["function"], want.context["alias"], want.context["api_id"]
            handled.add((function, alias, api_id))
            out.extend(self._live_for_desired(ctx, want))
        # Statements Pointsman added that nothing declared needs any more (on declared functions' aliases).
        for fn_name in ctx.spec.functions:
            fn = ctx.scope.function(fn_name)
            if fn is None:
                continue
            for alias in fn.aliases:
                keys: set[str] = set()
                for statement in ctx.scope.policy_statements(fn_name, alias):
                    api_id = own_api_id(statement)
                    if api_id is None or (fn_name, alias, api_id) in handled:
                        continue
                    if ctx.spec.leaves_out_api(ctx.scope.api_name(api_id)):
                        continue  # a part of the spec (a focused run): that API's statements are planned with it
                    key = f"{fn_name}/{alias}/{ctx.scope.api_name(api_id)}"
                    key = f"{key}/{statement.sid}" if key in keys else key
                    keys.add(key)
                    # Only a prune deletes these: then (and only then) find who still routes here.
                    users = stage_users(ctx, fn_name, alias, [api_id]) if ctx.prune else ()
                    context = {"function": fn_name, "alias": alias, "live_sid": statement.sid, "users": users}
                    out.append(Resource(self.name, key, _attributes(statement), context))
        return out

    def _live_for_desired(self, ctx: PlanContext, want: Resource) -> list[Resource]:
        """The live side of one derived permission, and Pointsman's statements it supersedes.

        A statement covering the wanted SourceArn (ours exactly, else any) makes it present.
        Without one, our first statement is its live state (``modified``). Our other statements
        for the same API and alias are superseded: removed once nothing needs them any more.
        """
        function, alias, api_id = want.context["function"], want.context["alias"], want.context["api_id"]
        wanted = want.attributes["source_arn"]
        statements = ctx.scope.policy_statements(function, alias)
        own = [s for s in statements if own_api_id(s) == api_id]
        covering = (
            [s for s in own if s.source_arn == wanted]
            or [s for s in own if covers(s, wanted)]
            or [s for s in statements if covers(s, wanted)]
            or _covering_every_route(statements, want.context.get("route_arns") or ())
        )
        primary = covering[0] if covering else None
        rest = [s for s in own if all(s is not c for c in covering)]

        def still_covered(arn: str) -> bool:
            # After apply, the covering statements (or the one added for `wanted`) stay.
            return any(covers(s, arn) for s in covering) if covering else fnmatch.fnmatchcase(arn, wanted)

        out: list[Resource] = []
        if primary is not None:
            out.append(Resource(self.name, want.key, dict(want.attributes), {**want.context, "live_sid": primary.sid}))
        elif rest:
            first = rest.pop(0)
            users = stage_users(ctx, function, alias, [api_id], still_covered)
            context = {**want.context, "live_sid": first.sid, "users": users}
            out.append(Resource(self.name, want.key, _attributes(first), context))
        for statement in rest:
            sid = statement.sid
            context = {
                "function": function,
                "alias": alias,
                "live_sid": sid,
                "superseded_by": want.id,
                "users": stage_users(ctx, function, alias, [api_id], still_covered),
                "extra_reason": f"statement {sid} is superseded by one covering {wanted}; removed once nothing needs it",
            }
            out.append(Resource(self.name, f"{want.key}/{sid}", _attributes(statement), context))
        return out

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
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
        # Make before break: the new statement first, the old one once nothing needs it.
        old = live.context["live_sid"]
        reason = (
            f"SourceArn {live.attributes['source_arn']} does not cover {desired.attributes['source_arn']}: "
            f"add statement {ctx['statement_id']}, then remove {old}"
        )
        return [
            self.action(desired, "update", [add], reason, requires),
            self.action(
                desired,
                "delete",
                [self._remove(ctx["function"], ctx["alias"], old)],
                f"statement {old} is replaced by {ctx['statement_id']}",
                requires=(desired.id,),
                users=tuple(live.context.get("users", ())),
            ),
        ]

    def delete(self, live: Resource) -> list[Action]:
        ctx = live.context
        call = self._remove(ctx["function"], ctx["alias"], ctx["live_sid"])
        superseded_by = ctx.get("superseded_by")
        if superseded_by:
            reason = f"superseded by the statement of {superseded_by}"
            return [self.action(live, "delete", [call], reason, requires=(superseded_by,), users=tuple(ctx.get("users", ())))]
        reason = "no managed stage routes here any more (prune)"
        return [self.action(live, "delete", [call], reason, users=tuple(ctx.get("users", ())))]

    @staticmethod
    def _remove(function: str, alias: str, sid: str) -> Call:
        return Call("lambda", "remove_permission", {"FunctionName": function, "Qualifier": alias, "StatementId": sid})


def _covering_every_route(statements: Sequence[PolicyStatement], route_arns: Iterable[str]) -> list[PolicyStatement]:
    """The statements that together cover every route's SourceArn (each route by one of them,
    the console's statement per method, say), in policy order; empty unless every route is."""
    arns = list(route_arns)
    chosen: list[PolicyStatement] = []
    for arn in arns:
        found = next((s for s in statements if covers(s, arn)), None)
        if found is None:
            return []
        if all(found is not c for c in chosen):
            chosen.append(found)
    order = {id(s): n for n, s in enumerate(statements)}
    return sorted(chosen, key=lambda s: order[id(s)])


def _attributes(statement: PolicyStatement) -> dict[str, Any]:
    return {"principal": PRINCIPAL, "action": INVOKE, "source_arn": statement.source_arn}
