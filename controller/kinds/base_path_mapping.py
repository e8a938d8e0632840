"""base_path_mapping/DOMAIN/BASE_PATH: which API and stage a custom domain's base path serves."""

from __future__ import annotations

from controller.kinds.base import Kind, PlanContext, describe_changes
from controller.model import Action, Call, Drift, FieldChange, Resource

NO_BASE_PATH = "(none)"


class BasePathMapping(Kind):
    name = "base_path_mapping"
    wave = 7
    summary = "a custom domain base path mapping: API and stage"
    read_actions = ("apigateway:GET",)
    write_actions = ("apigateway:POST", "apigateway:PATCH", "apigateway:DELETE")

    def desired(self, ctx: PlanContext) -> list[Resource]:
        out: list[Resource] = []
        for domain, decl in ctx.spec.domains.items():
            if ctx.scope.mappings(domain) is None:
                ctx.problem(decl.source, f"custom domain {domain!r} does not exist")
                continue
            for base_path, mapping in decl.spec.mappings.items():
                source = ctx.spec.source_of("domains", domain, "mappings", base_path)
                api_id = ctx.api_id(mapping.api, source)
                if api_id is None:
                    continue
                out.append(
                    Resource(
                        self.name,
                        f"{domain}/{base_path}",
                        {"api": mapping.api, "stage": mapping.stage},
                        {
                            "domain": domain,
                            "base_path": base_path,
                            "api_id": api_id,
                            "requires": (f"rest_stage/{mapping.api}/{mapping.stage}",),
                        },
                        source,
                    )
                )
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        out: list[Resource] = []
        for domain in ctx.spec.domains:
            for base_path, item in (ctx.scope.mappings(domain) or {}).items():
                attrs = {"api": ctx.scope.api_name(item["restApiId"]), "stage": item.get("stage")}
                context = {"domain": domain, "base_path": base_path, "api_id": item["restApiId"]}
                out.append(Resource(self.name, f"{domain}/{base_path}", attrs, context))
        return out

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        assert desired is not None
        ctx = desired.context
        requires = self.requires(desired)
        if live is None:
            params = {"domainName": ctx["domain"], "restApiId": ctx["api_id"], "stage": desired.attributes["stage"]}
            if ctx["base_path"] != NO_BASE_PATH:
                params["basePath"] = ctx["base_path"]
            call = Call("apigateway", "create_base_path_mapping", params)
            return [self.action(desired, "create", [call], "mapping missing; create", requires)]
        patches = []
        if live.context["api_id"] != ctx["api_id"]:
            patches.append({"op": "replace", "path": "/restapiId", "value": ctx["api_id"]})
        if live.attributes["stage"] != desired.attributes["stage"]:
            patches.append({"op": "replace", "path": "/stage", "value": desired.attributes["stage"]})
        params = {"domainName": ctx["domain"], "basePath": ctx["base_path"], "patchOperations": patches}
        call = Call("apigateway", "update_base_path_mapping", params)
        return [self.action(desired, "update", [call], describe_changes(changes), requires)]

    def delete(self, live: Resource) -> list[Action]:
        params = {"domainName": live.context["domain"], "basePath": live.context["base_path"]}
        return [self.action(live, "delete", [Call("apigateway", "delete_base_path_mapping", params)], "mapping not declared (prune)")]
