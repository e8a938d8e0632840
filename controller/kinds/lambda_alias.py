"""lambda_alias/FUNCTION/ALIAS: which published version (and weighted second version) an alias serves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controller.kinds.base import Kind, PlanContext, describe_changes
from controller.kinds.lambda_permission import apis_named_by, route_users, stage_users
from controller.kinds.lambda_version import resolve_sha
from controller.kinds.rest_deployment import deployment_for
from controller.live.scope import FunctionLive
from controller.model import Action, Call, Drift, FieldChange, Ref, Resource
from controller.sensitive import Sensitive, environment_changes
from controller.spec import LATEST, FunctionSpec


def _unproven(fn: FunctionLive, alias: str, versions: Iterable[str]) -> list[str]:
    """Those of ``versions`` whose existence only the published versions can tell: ``$LATEST``
    always exists, and so do the versions the live alias serves now (Lambda keeps a version an
    alias uses)."""
    serving = fn.serving(alias)
    return [v for v in versions if v != LATEST and v not in serving]


def _known_versions(fn: FunctionLive, alias: str, versions: Iterable[str]) -> bool:
    """Do these versions exist? Reads the versions only for those the live alias does not prove."""
    return all(v in fn.versions for v in _unproven(fn, alias, versions))


def needs_versions(function: FunctionSpec, fn: FunctionLive) -> bool:
    """Must the plan read this function's published versions (ListVersionsByFunction)?

    Only to resolve a ``sha256:`` pin, to compare a declared environment, or to check a
    version an alias is to move to; an alias that already serves its declared versions
    proves they exist."""
    if function.environment is not None:
        return True
    for name, alias in function.aliases.items():
        if alias.version.startswith("sha256:"):
            return True
        if _unproven(fn, name, [alias.version, *alias.routing]):
            return True
    return False


def _proxy_snapshot_users(ctx: PlanContext, function: str) -> tuple[str, ...]:
    """The live stages of the http-proxy APIs routing to ``function`` that do not serve the
    deployment the plan wants: an older snapshot may still hold a route behind the proxy that
    names the alias (a deleted route leaves a stage only when it moves to a newer deployment)."""
    users: list[str] = []
    for api, api_id in sorted(ctx.scope.unique_api_ids(ctx.spec.rest_apis).items()):
        versions = ctx.spec.rest_apis[api].spec.versions
        if versions is None or versions.strategy != "http-proxy" or all(r.function != function for r in versions.routes):
            continue
        wanted = deployment_for(ctx, api)
        for stage, item in sorted(ctx.scope.stages(api_id).items()):
            if wanted is None or wanted[1] is None or item.get("deploymentId") != wanted[1]:
                users.append(f"rest_stage/{api}/{stage}")
    return tuple(users)


class LambdaAlias(Kind):
    name = "lambda_alias"
    wave = 2
    summary = "a Lambda alias: version, description, weighted routing"
    read_actions = ("lambda:ListAliases", "lambda:ListVersionsByFunction")
    write_actions = ("lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias")

    def desired(self, ctx: PlanContext) -> list[Resource]:
        out: list[Resource] = []
        for fn_name, decl in ctx.spec.functions.items():
            fn = ctx.function(fn_name)
            if fn is None:
                continue
            environment = ctx.environment(fn_name)
            served: dict[str, list[str]] = {}  # published version pinned by number -> aliases serving it
            for alias_name, alias in decl.spec.aliases.items():
                source = ctx.spec.source_of("functions", fn_name, "aliases", alias_name)
                version = alias.version
                context: dict[str, Any] = {"function": fn_name, "alias": alias_name}
                if version.startswith("sha256:"):
                    sha = version.removeprefix("sha256:")
                    pin = resolve_sha(fn, sha, environment)
                    if pin.version:
                        version = pin.version
                        if pin.stale and environment is not None:
                            changes = environment_changes(fn.version_environments.get(pin.version, {}), environment)
                            ctx.warn(
                                f"{fn_name}: alias {alias_name} asks for sha256:{sha}, which only version {pin.version} has, "
                                f"and its environment differs from the declared one ({changes}); $LATEST has other code, "
                                "so no version with both can be published"
                            )
                    elif pin.publish:
                        pending = f"lambda_version/{fn_name}/sha256:{sha}"
                        context["pending_version"] = pending
                        context["requires"] = (pending,)
                        version = f"sha256:{sha} (to be published)"
                    else:
                        ctx.problem(
                            source,
                            f"alias {fn_name}:{alias_name} asks for code sha256:{sha}, which no published version of {fn_name} and not $LATEST has",
                        )
                        continue
                elif not _known_versions(fn, alias_name, [version]):
                    ctx.problem(source, f"alias {fn_name}:{alias_name} names version {version}, which is not published")
                    continue
                missing = [v for v in alias.routing if not _known_versions(fn, alias_name, [v])]
                if missing:
                    ctx.problem(source, f"alias {fn_name}:{alias_name} routes to version {missing[0]}, which is not published")
                    continue
                for number in ([alias.version] if alias.version.isdigit() else []) + list(alias.routing):
                    served.setdefault(number, []).append(alias_name)
                routing: dict[str, float] = dict(alias.routing)
                rollout = decl.spec.rollout_of(alias_name)
                live = fn.aliases.get(alias_name)
                observed = "observe" in (decl.spec.manage, alias.manage)  # nothing is written to it: no rollout either
                if rollout is not None and not observed and live is not None and version.isdigit() and str(live["FunctionVersion"]).isdigit():
                    # The new version takes traffic step by step: this run's step decides what the alias serves.
                    live_routing = {str(k): float(v) for k, v in ((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()}
                    decision = ctx.rollouts.decide(ctx.scope.clients, f"{fn_name}/{alias_name}", rollout, version, str(live["FunctionVersion"]), live_routing)
                    version, routing = decision.version, decision.routing
                    if decision.line:
                        context["rollout"] = decision.line
                    if live.get("RevisionId"):
                        context["revision_id"] = live["RevisionId"]  # compare-and-swap: an alias changed meanwhile is not overwritten
                out.append(
                    Resource(
                        kind=self.name,
                        key=f"{fn_name}/{alias_name}",
                        attributes={"version": version, "description": alias.description, "routing": routing},
                        context=context,
                        source=source,
                    )
                )
            if environment is not None:
                self._warn_published_environments(ctx, fn_name, environment, served)
        return out

    @staticmethod
    def _warn_published_environments(ctx: PlanContext, fn_name: str, environment: dict[str, Sensitive], served: dict[str, list[str]]) -> None:
        """Published versions are immutable: apply cannot give them the declared environment."""
        fn = ctx.scope.function(fn_name)
        assert fn is not None
        for number in sorted(served, key=int):
            live = fn.version_environments.get(number, {})
            if live == environment:
                continue
            aliases = served[number]
            who = f"alias {aliases[0]} serves" if len(aliases) == 1 else f"aliases {', '.join(aliases)} serve"
            ctx.warn(f"{fn_name}: {who} version {number}, whose environment differs from the declared one ({environment_changes(live, environment)})")

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        out: list[Resource] = []
        wanted = {r.key for r in desired}
        managed = list(ctx.scope.unique_api_ids(ctx.spec.rest_apis).values())
        for fn_name in ctx.spec.functions:
            fn = ctx.scope.function(fn_name)
            if fn is None:
                continue
            for alias_name, item in fn.aliases.items():
                routing = (item.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
                context: dict[str, Any] = {"function": fn_name, "alias": alias_name}
                if ctx.prune and f"{fn_name}/{alias_name}" not in wanted:
                    # A prune would delete it: every stage that routes here must move first, in
                    # the managed APIs and in any API its resource policy lets invoke it.
                    apis = list(dict.fromkeys(managed + apis_named_by(ctx.scope.policy_statements(fn_name, alias_name))))
                    context["users"] = (
                        stage_users(ctx, fn_name, alias_name, apis) + route_users(ctx, fn_name, alias_name, apis) + _proxy_snapshot_users(ctx, fn_name)
                    )
                out.append(
                    Resource(
                        kind=self.name,
                        key=f"{fn_name}/{alias_name}",
                        attributes={
                            "version": item["FunctionVersion"],
                            "description": item.get("Description") or "",
                            "routing": {str(k): float(v) for k, v in routing.items()},
                        },
                        context=context,
                    )
                )
        return out

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        assert desired is not None
        attrs = desired.attributes
        version: Any = attrs["version"]
        if "pending_version" in desired.context:
            version = Ref(desired.context["pending_version"], "Version")
        base = {"FunctionName": desired.context["function"], "Name": desired.context["alias"]}
        requires = self.requires(desired)
        completes = desired.context.get("pending_version")
        if live is None:
            params = {**base, "FunctionVersion": version, "Description": attrs["description"]}
            if attrs["routing"]:
                params["RoutingConfig"] = {"AdditionalVersionWeights": attrs["routing"]}
            reason = f"alias missing; create -> version {attrs['version']}"
            return [self.action(desired, "create", [Call("lambda", "create_alias", params)], reason, requires, completes)]
        params = dict(base)
        changed = {c.field for c in changes}
        if "version" in changed:
            params["FunctionVersion"] = version
        if "description" in changed:
            params["Description"] = attrs["description"]
        if "routing" in changed:
            params["RoutingConfig"] = {"AdditionalVersionWeights": attrs["routing"]}
        reason = describe_changes(changes)
        if "rollout" in desired.context:
            reason = desired.context["rollout"]
            if desired.context.get("revision_id"):
                params["RevisionId"] = desired.context["revision_id"]
        return [self.action(desired, "update", [Call("lambda", "update_alias", params)], reason, requires, completes)]

    def delete(self, live: Resource) -> list[Action]:
        call = Call("lambda", "delete_alias", {"FunctionName": live.context["function"], "Name": live.context["alias"]})
        return [self.action(live, "delete", [call], "alias not declared (prune)", users=tuple(live.context.get("users", ())))]
