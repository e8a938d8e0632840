"""rest_api/NAME: a REST API that apply creates as a clone of another (a new major version).

Declared with ``clone_from``. When the API does not exist, apply creates it with
CreateRestApi's ``cloneFrom`` (resources, methods and integrations copied) and deploys it;
its stages, permissions and mappings are then planned and applied in a second pass of the
same apply. An API that exists is in sync whatever it holds now: it is never cloned again,
and never deleted.
"""

from __future__ import annotations

from controller.kinds.base import Kind, PlanContext
from controller.model import Action, Call, Drift, FieldChange, Ref, Resource


class RestApi(Kind):
    name = "rest_api"
    wave = 0
    summary = "a REST API created as a clone of another when it does not exist (clone_from)"
    read_actions = ("apigateway:GET",)
    write_actions = ("apigateway:POST",)

    def desired(self, ctx: PlanContext) -> list[Resource]:
        out: list[Resource] = []
        apis = ctx.scope.rest_api_ids()
        for name, decl in ctx.spec.rest_apis.items():
            source_name = decl.spec.clone_from
            if source_name is None:
                continue
            attrs = {"clone_from": source_name}
            if apis.get(name):
                out.append(Resource(self.name, name, attrs, {"exists": True}, decl.source))
                continue
            source_id = ctx.api_id(source_name, decl.source)
            if source_id is None:
                continue
            ctx.pending_apis.add(name)
            context = {
                "source_id": source_id,
                "missing_reason": f"{name} does not exist: apply clones it from {source_name}, deploys it, then creates its stages, permissions and mappings",
            }
            out.append(Resource(self.name, name, attrs, context, decl.source))
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        return [Resource(self.name, d.key, dict(d.attributes), dict(d.context)) for d in desired if d.context.get("exists")]

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        assert desired is not None
        if live is not None:
            return []  # never cloned again
        clone = Call(
            "apigateway",
            "create_rest_api",
            {"name": desired.key, "cloneFrom": desired.context["source_id"], "description": f"cloned from {desired.attributes['clone_from']}"},
        )
        deploy = Call("apigateway", "create_deployment", {"restApiId": Ref(desired.id, "id"), "description": "first deployment of the clone"})
        return [self.action(desired, "create", [clone, deploy], desired.context["missing_reason"])]

    def delete(self, live: Resource) -> list[Action]:
        return []
