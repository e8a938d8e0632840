"""rest_stage/API/STAGE: a REST API stage's variables, description and (optionally) deployment."""

from __future__ import annotations

from typing import Any

from controller.kinds.base import Kind, PlanContext, describe_changes
from controller.kinds.lambda_permission import stage_routes
from controller.kinds.rest_deployment import adopted, deployment_for
from controller.model import Action, Call, Drift, FieldChange, Ref, Resource


def _escape(name: str) -> str:
    # JSON-pointer escaping for patch paths.
    return name.replace("~", "~0").replace("/", "~1")


class RestStage(Kind):
    name = "rest_stage"
    wave = 6
    summary = "a REST API stage: stage variables, description, deployment"
    read_actions = ("apigateway:GET",)
    write_actions = ("apigateway:POST", "apigateway:PATCH", "apigateway:DELETE")
    entry_kinds = {"variables": "stage_variable"}

    def desired(self, ctx: PlanContext) -> list[Resource]:
        requires: dict[tuple[str, str], set[str]] = {}
        for route in stage_routes(ctx):
            needs = requires.setdefault((route.api, route.stage), set())
            needs.add(f"lambda_alias/{route.function}/{route.alias}")
            needs.add(f"lambda_permission/{route.function}/{route.alias}/{route.api}")
        out: list[Resource] = []
        for api_name, decl in ctx.spec.rest_apis.items():
            api_id = ctx.api_id(api_name)
            if api_id is None:
                continue
            live_stages = ctx.scope.stages(api_id)
            for stage_name, stage in decl.spec.stages.items():
                source = ctx.spec.source_of("rest_apis", api_name, "stages", stage_name)
                attrs: dict[str, Any] = {"variables": dict(stage.variables), "description": stage.description}
                context: dict[str, Any] = {
                    "api": api_name,
                    "api_id": api_id,
                    "stage": stage_name,
                    "requires": tuple(sorted(requires.get((api_name, stage_name), ()))),
                }
                snapshot = deployment_for(ctx, api_name)
                if snapshot is not None:
                    context["requires"] += (snapshot[0],)
                if snapshot is not None and not adopted(ctx, api_name):
                    # A versioned API: every stage serves the deployment holding the generated integrations.
                    # (A hand-built http-proxy adopted as it is keeps the deployment each stage serves.)
                    deployment_resource, deployment_id = snapshot
                    if deployment_id:
                        attrs["deployment"] = deployment_id
                    else:
                        attrs["deployment"] = "(a new deployment with the generated integrations)"
                        context["pending_deployment"] = deployment_resource
                elif stage.deployment:
                    attrs["deployment"] = stage.deployment
                elif stage_name not in live_stages:
                    newest = ctx.scope.newest_deployment(api_id)
                    if newest is None:
                        ctx.problem(source, f"stage {stage_name} of {api_name} must be created but the API has no deployment")
                        continue
                    context["deployment"] = newest
                out.append(Resource(self.name, f"{api_name}/{stage_name}", attrs, context, source))
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        out: list[Resource] = []
        # The mappings of managed domains that point at each stage now: its users.
        mapped: dict[tuple[str, str], list[str]] = {}
        for domain in ctx.spec.domains:
            for base_path, item in sorted((ctx.scope.mappings(domain) or {}).items()):
                mapped.setdefault((item.get("restApiId", ""), item.get("stage", "")), []).append(f"base_path_mapping/{domain}/{base_path}")
        for api_name, api_id in ctx.scope.unique_api_ids(ctx.spec.rest_apis).items():
            for stage_name, item in ctx.scope.stages(api_id).items():
                attrs = {
                    "variables": dict(item.get("variables") or {}),
                    "description": item.get("description") or "",
                    "deployment": item.get("deploymentId"),
                }
                users = tuple(mapped.get((api_id, stage_name), ()))
                context = {"api": api_name, "api_id": api_id, "stage": stage_name, "users": users}
                out.append(Resource(self.name, f"{api_name}/{stage_name}", attrs, context))
        return out

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        target = desired or live
        assert target is not None
        api_id = target.context["api_id"]
        stage = target.context["stage"]
        requires = self.requires(desired) if desired else ()
        pending = desired.context.get("pending_deployment") if desired else None
        deployment: Any = Ref(pending, "id") if pending else None
        if live is None:
            assert desired is not None
            params: dict[str, Any] = {
                "restApiId": api_id,
                "stageName": stage,
                "deploymentId": deployment or desired.attributes.get("deployment") or desired.context["deployment"],
                "description": desired.attributes["description"],
            }
            if desired.attributes["variables"]:
                params["variables"] = desired.attributes["variables"]
            call = Call("apigateway", "create_stage", params)
            return [self.action(desired, "create", [call], "stage missing; create", requires)]
        patches: list[dict[str, str]] = []
        for change in changes:
            if change.field.startswith("variables."):
                name = change.field.removeprefix("variables.")
                patches.append({"op": "replace", "path": f"/variables/{_escape(name)}", "value": str(change.desired)})
            elif change.field == "description":
                patches.append({"op": "replace", "path": "/description", "value": change.desired})
            elif change.field == "deployment":
                patches.append({"op": "replace", "path": "/deploymentId", "value": deployment or change.desired})
        for entry in prune_entries:
            for change in entry.changes:
                patches.append({"op": "remove", "path": f"/variables/{_escape(change.field)}"})
        if not patches:
            return []
        reasons = [describe_changes(changes)] if changes else []
        if prune_entries:
            reasons.append("prune variables " + ", ".join(c.field for e in prune_entries for c in e.changes))
        call = Call("apigateway", "update_stage", {"restApiId": api_id, "stageName": stage, "patchOperations": patches})
        return [self.action(target, "update", [call], "; ".join(reasons), requires)]

    def delete(self, live: Resource) -> list[Action]:
        call = Call("apigateway", "delete_stage", {"restApiId": live.context["api_id"], "stageName": live.context["stage"]})
        return [self.action(live, "delete", [call], "stage not declared (prune)", users=tuple(live.context.get("users", ())))]
