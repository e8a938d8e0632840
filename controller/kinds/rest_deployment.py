"""rest_deployment/API: a deployment holding the generated integrations of a versioned API.

A deployment is a snapshot of the API; stages serve the snapshot they point at. Pointsman
names its deployments ``pointsman <digest>``, the digest of the generated method
configuration (and of the retired http-proxy routes still in the API, which a deployment made
now holds), so it knows whether a snapshot with the current configuration exists: when
one does, stages are moved to it (no new deployment); when the configuration changed, one
CreateDeployment per API, after the methods are written and before the stages move.
Exposing another version on a stage changes only stage variables and needs no deployment.

An API whose proxy routes are unmanaged (``proxy: unmanaged``, a hand-built http-proxy
adopted as it is) has no deployment of Pointsman's until Pointsman changes one of its routes:
while every generated route in the working copy is already as the spec says, its stages keep
the deployment they serve (``adopted``), so adopting it writes nothing.
"""

from __future__ import annotations

import hashlib
import json

from controller.kinds.base import Kind, PlanContext
from controller.kinds.rest_method import live_attributes
from controller.model import Action, Call, Drift, FieldChange, Resource

DESCRIPTION_PREFIX = "pointsman "


def deployment_for(ctx: PlanContext, api: str) -> tuple[str, str | None] | None:
    """For a versioned API: (resource id of its deployment, the live deployment id or None if it
    must be created). None for an API without versions."""
    return ctx.derived.get("deployments", {}).get(api)


def adopted(ctx: PlanContext, api: str) -> bool:
    """Does this versioned API's stages keep the deployments they serve (see the module)?"""
    return api in ctx.derived.get("adopted_deployments", set())


def _working_copy_as_desired(ctx: PlanContext, methods: list[Resource]) -> bool:
    for method in methods:
        resource = ctx.scope.resources(method.context["api_id"]).get(method.context["path"]) or {}
        body = (resource.get("resourceMethods") or {}).get(method.context["method"])
        if body is None:
            return False
        live = live_attributes(body, method.attributes)
        if any(live.get(key) != value for key, value in method.attributes.items()):
            return False
    return True


class RestDeployment(Kind):
    name = "rest_deployment"
    wave = 5
    summary = "a deployment of a versioned REST API holding its generated integrations (stages move to it)"
    read_actions = ("apigateway:GET",)
    write_actions = ("apigateway:POST",)

    def desired(self, ctx: PlanContext) -> list[Resource]:
        by_api: dict[str, list[Resource]] = {}
        for method in ctx.derived.get("rest_methods", []):
            by_api.setdefault(method.context["api"], []).append(method)
        out: list[Resource] = []
        found: dict[str, tuple[str, str | None]] = {}
        for api, methods in sorted(by_api.items()):
            api_id = methods[0].context["api_id"]
            snapshot: list[object] = [(m.key, sorted(m.attributes.items())) for m in sorted(methods, key=lambda m: m.key)]
            retired = sorted(r.key for r in ctx.derived.get("retired_routes", {}).get(api, []))
            if retired:
                # Routes behind an http-proxy whose version left the catalogue are in the working copy
                # until pruned: a deployment made now holds them, and the one after their deletion differs.
                snapshot.append(("retired routes", retired))
            digest = hashlib.sha256(json.dumps(snapshot, default=str).encode()).hexdigest()[:16]
            description = f"{DESCRIPTION_PREFIX}{digest}"
            existing = [d for d in ctx.scope.deployments(api_id) if d.get("description") == description]
            deployment_id = str(existing[0]["id"]) if existing else None
            versions = ctx.spec.rest_apis[api].spec.versions if api in ctx.spec.rest_apis else None
            if deployment_id is None and versions is not None and versions.proxy == "unmanaged" and _working_copy_as_desired(ctx, methods):
                ctx.derived.setdefault("adopted_deployments", set()).add(api)
            context = {
                "api": api,
                "api_id": api_id,
                "description": description,
                "deployment_id": deployment_id,
                "requires": tuple(m.id for m in methods),
                "missing_reason": f"no deployment of {api} holds the generated integrations ({description})",
            }
            resource = Resource(self.name, api, {"snapshot": description}, context, methods[0].source)
            out.append(resource)
            found[api] = (resource.id, deployment_id)
        ctx.derived["deployments"] = found
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        return [Resource(self.name, d.key, dict(d.attributes), dict(d.context)) for d in desired if d.context["deployment_id"] or adopted(ctx, d.key)]

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        assert desired is not None
        call = Call("apigateway", "create_deployment", {"restApiId": desired.context["api_id"], "description": desired.context["description"]})
        return [self.action(desired, "create", [call], desired.context["missing_reason"], self.requires(desired))]

    def delete(self, live: Resource) -> list[Action]:
        return []  # deployments are history (and a rollback target): never deleted
