"""rest_method/API/METHOD/PATH: the integration of a method whose function a version chooses.

Generated from ``rest_apis.API.versions``. Strategy ``lambda``: an AWS (non-proxy) Lambda
integration whose URI names the alias as a path parameter (``function:NAME:{alias}``), the
request template that turns the version header (or the Accept media type) into that alias,
with the stage's default, and the integration and method responses that turn "no such alias"
into a 400 listing the versions the stage supports. Strategy ``http-proxy``: the route is an
HTTP proxy whose template calls ``{path}/{version}`` on its own stage, and each version has
that route behind it, a Lambda proxy integration of the version's alias (created, resource
included, when missing). With ``proxy: unmanaged`` the proxy route is left as its owner made
it (the console layout of a hand-written proxy): only the routes behind it are Pointsman's. The route's resource must exist; a missing method is created. The
proxy method declares the ``method.request.path.*`` parameters its integration maps. A route
behind the proxy whose version left the catalogue (and that is shaped as Pointsman makes them)
is extra: pruned once no stage lists its version, never otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller import versions as versioning
from controller.kinds.base import Kind, PlanContext, describe_changes
from controller.model import Action, Call, Drift, FieldChange, Ref, Resource

CONTENT_TYPE = versioning.CONTENT_TYPE
PASSTHROUGH = versioning.PASSTHROUGH_BEHAVIOR  # a body of another content type gets 415, never an unversioned call
_INTEGRATION = "integration."
_METHOD_PARAMETERS = "method.request_parameters"


def method_attributes(selector: versioning.Selector, region: str, function_arn: str) -> dict[str, Any]:
    """The generated configuration, one attribute per piece so a drift names what differs."""
    attrs: dict[str, Any] = {
        "integration.type": "AWS",
        "integration.http_method": "POST",
        "integration.uri": versioning.lambda_uri(region, function_arn),
        "integration.request_parameters": versioning.request_parameters(),
        "integration.request_template": versioning.request_template(selector),
        "integration.passthrough": PASSTHROUGH,
        "method_responses": sorted(versioning.method_responses()),
    }
    return _with_responses(attrs, versioning.integration_responses(selector))


def _with_responses(attrs: dict[str, Any], responses: dict[str, dict[str, object]]) -> dict[str, Any]:
    # The set of integration responses is compared too: one the generator no longer writes (the
    # 4XX and 5XX responses of the lambda strategy's earlier templates) is drift, and goes.
    attrs["integration_responses"] = sorted(responses)
    for code, response in sorted(responses.items()):
        attrs[f"response.{code}.selection_pattern"] = response["selectionPattern"]
        attrs[f"response.{code}.template"] = response["template"]
    return attrs


def proxy_attributes(selector: versioning.Selector, api_id: str, region: str, route_method: str, path: str) -> dict[str, Any]:
    """The http-proxy route: an HTTP integration calling the versioned route of its own stage."""
    attrs: dict[str, Any] = {
        "integration.type": "HTTP",
        "integration.http_method": route_method,
        "integration.uri": versioning.proxy_uri(api_id, region, path),
        "integration.request_parameters": versioning.proxy_request_parameters(path),
        "integration.request_template": versioning.proxy_request_template(selector),
        "integration.passthrough": PASSTHROUGH,
        "method_responses": sorted(versioning.method_responses()),
        # The path parameters the integration maps must be declared on the method (PutMethod).
        _METHOD_PARAMETERS: sorted(versioning.proxy_method_parameters(path)),
    }
    return _with_responses(attrs, versioning.proxy_integration_responses(selector))


def versioned_route_attributes(region: str, function_arn: str, version: str) -> dict[str, Any]:
    """A route behind the http-proxy: the Lambda proxy integration of one version's alias."""
    return {
        "integration.type": "AWS_PROXY",
        "integration.http_method": "POST",
        "integration.uri": versioning.alias_uri(region, function_arn, version),
    }


def live_attributes(method: dict[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The live method as the attributes ``wanted`` has (generated ones only, see below)."""
    wanted_codes = wanted.get("method_responses", [])
    integration = method.get("methodIntegration") or {}
    attrs: dict[str, Any] = {
        "integration.type": integration.get("type"),
        "integration.http_method": integration.get("httpMethod"),
        "integration.uri": integration.get("uri"),
        "integration.request_parameters": dict(integration.get("requestParameters") or {}),
        "integration.request_template": (integration.get("requestTemplates") or {}).get(CONTENT_TYPE),
        "integration.passthrough": integration.get("passthroughBehavior"),
        # Other status codes someone added are theirs: only the generated ones are compared.
        "method_responses": sorted(set(method.get("methodResponses") or {}) & set(wanted_codes)),
        "integration_responses": sorted(integration.get("integrationResponses") or {}),
    }
    for code, response in (integration.get("integrationResponses") or {}).items():
        attrs[f"response.{code}.selection_pattern"] = response.get("selectionPattern")
        attrs[f"response.{code}.template"] = (response.get("responseTemplates") or {}).get(CONTENT_TYPE)
    if _METHOD_PARAMETERS in wanted:
        # Parameters someone else declared (a required header, say) are theirs: only the generated ones count.
        attrs[_METHOD_PARAMETERS] = sorted(set(method.get("requestParameters") or {}) & set(wanted[_METHOD_PARAMETERS]))
    return attrs


class RestMethod(Kind):
    name = "rest_method"
    wave = 4
    summary = "a REST API method whose Lambda alias a version header or media type chooses (generated templates)"
    read_actions = ("apigateway:GET",)
    write_actions = ("apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE")
    # A deleted method or resource leaves the API's working copy only: stages serve their
    # deployment's snapshot, which still holds it until the API's next deployment.
    deletion_reaches_clients_at_next_deployment = True

    def desired(self, ctx: PlanContext) -> list[Resource]:
        out: list[Resource] = []
        for api_name, decl in ctx.spec.rest_apis.items():
            versions = decl.spec.versions
            if versions is None:
                continue
            api_id = ctx.api_id(api_name)
            if api_id is None:
                continue
            source = ctx.spec.source_of("rest_apis", api_name, "versions") or decl.source
            if versions.generated_proxy and (ctx.scope.rest_api(api_id) or {}).get("disableExecuteApiEndpoint"):
                # https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-disable-default-endpoint.html:
                # with the default endpoint disabled, execute-api answers 403 Forbidden to every call.
                ctx.problem(
                    source,
                    f"REST API {api_name} has disableExecuteApiEndpoint set: strategy http-proxy calls the API's own "
                    "execute-api URL, which then answers 403 to every request (use strategy lambda, or enable the default endpoint)",
                )
                continue
            selector = versioning.Selector(header=versions.header, media_type=versions.media_type)
            resources = ctx.scope.resources(api_id)
            for route in versions.routes:
                resource = resources.get(route.path)
                if resource is None:
                    ctx.problem(source, f"REST API {api_name} has no resource {route.path} (create it with the tool that builds the API)")
                    continue
                fn = ctx.function(route.function, source)
                if fn is None:
                    continue
                context = {"api": api_name, "api_id": api_id, "resource_id": resource["id"], "method": route.method, "path": route.path}
                if versions.strategy == "http-proxy" and versioning.VERSION_PARAM in versioning.proxy_path_parameters(route.path):
                    ctx.problem(
                        source, f"route {route.method} {route.path}: strategy http-proxy needs the path parameter name {{{versioning.VERSION_PARAM}}} itself"
                    )
                    continue
                if versions.strategy == "http-proxy":
                    attrs = proxy_attributes(selector, api_id, fn.region, route.method, route.path)
                else:
                    attrs = method_attributes(selector, fn.region, fn.arn)
                if versions.proxy != "unmanaged":  # an unmanaged proxy route is its owner's: never read as drift, never written
                    out.append(Resource(self.name, f"{api_name}/{route.method}{route.path}", attrs, context, source))
                if versions.strategy != "http-proxy":
                    continue
                for version in versions.catalogue:
                    path = versioning.versioned_path(route.path, version)
                    behind = resources.get(path)
                    context = {
                        "api": api_name,
                        "api_id": api_id,
                        "resource_id": behind["id"] if behind else None,
                        "parent_id": resource["id"],
                        "path_part": version,
                        "method": route.method,
                        "path": path,
                        # Make before break: the alias exists before a route names it, and is not pruned while one does.
                        "requires": (f"lambda_alias/{route.function}/{version}",),
                    }
                    attrs = versioned_route_attributes(fn.region, fn.arn, version)
                    out.append(Resource(self.name, f"{api_name}/{route.method}{path}", attrs, context, source))
                retired = _retired_routes(api_name, api_id, route.method, route.path, fn.region, fn.arn, versions.catalogue, resources)
                ctx.derived.setdefault("retired_routes", {}).setdefault(api_name, []).extend(retired)
        ctx.derived["rest_methods"] = out
        return out

    def live(self, ctx: PlanContext, desired: list[Resource]) -> list[Resource]:
        out: list[Resource] = []
        for want in desired:
            resource = ctx.scope.resources(want.context["api_id"]).get(want.context["path"]) or {}
            method = (resource.get("resourceMethods") or {}).get(want.context["method"])
            if method is not None:
                attrs = live_attributes(method, want.attributes)
                out.append(Resource(self.name, want.key, attrs, dict(want.context)))
        for api_name, retired in sorted(ctx.derived.get("retired_routes", {}).items()):
            for route in retired:
                context = dict(route.context)
                if ctx.prune:
                    # The stages that still list its version call it through the proxy: they change first.
                    context["users"] = _stages_exposing(ctx, api_name, context["api_id"], context["version"])
                out.append(Resource(self.name, route.key, dict(route.attributes), context))
        return out

    def converge(self, desired: Resource | None, live: Resource | None, changes: tuple[FieldChange, ...], prune_entries: list[Drift]) -> list[Action]:
        assert desired is not None
        attrs, ctx = desired.attributes, desired.context
        calls: list[Call] = []
        resource_id: Any = ctx["resource_id"]
        if resource_id is None:  # a versioned route behind the http-proxy, first time
            calls.append(Call("apigateway", "create_resource", {"restApiId": ctx["api_id"], "parentId": ctx["parent_id"], "pathPart": ctx["path_part"]}))
            resource_id = Ref(desired.id, "id")
        where = {"restApiId": ctx["api_id"], "resourceId": resource_id, "httpMethod": ctx["method"]}
        changed = {c.field for c in changes}
        declared = attrs.get(_METHOD_PARAMETERS, [])
        if live is None:
            method: dict[str, Any] = {**where, "authorizationType": "NONE"}
            if declared:
                method["requestParameters"] = {name: True for name in declared}
            calls.append(Call("apigateway", "put_method", method))
        else:
            missing = [name for name in declared if name not in (live.attributes.get(_METHOD_PARAMETERS) or [])]
            if missing:
                # Before PutIntegration, which maps them. UpdateMethod's patch path for a method
                # request parameter is /requestParameters/method.request.path.NAME, value "true"
                # for required (https://docs.aws.amazon.com/apigateway/latest/api/patch-operations.html).
                ops = [{"op": "add", "path": f"/requestParameters/{name}", "value": "true"} for name in missing]
                calls.append(Call("apigateway", "update_method", {**where, "patchOperations": ops}))
        # PutIntegration replaces the integration and its responses: they are put again after it.
        integration = live is None or any(f.startswith(_INTEGRATION) for f in changed)
        if integration:
            params: dict[str, Any] = {
                **where,
                "type": attrs["integration.type"],
                "integrationHttpMethod": attrs["integration.http_method"],
                "uri": attrs["integration.uri"],
            }
            if "integration.request_parameters" in attrs:
                params["requestParameters"] = attrs["integration.request_parameters"]
            if "integration.request_template" in attrs:
                params["requestTemplates"] = {CONTENT_TYPE: attrs["integration.request_template"]}
                params["passthroughBehavior"] = attrs["integration.passthrough"]
            calls.append(Call("apigateway", "put_integration", params))
        have = set(live.attributes["method_responses"]) if live is not None else set()
        for code in attrs.get("method_responses", []):
            if code not in have:
                calls.append(Call("apigateway", "put_method_response", {**where, "statusCode": code}))
        for code in attrs.get("integration_responses", []):
            if integration or {f"response.{code}.selection_pattern", f"response.{code}.template"} & changed:
                response: dict[str, Any] = {**where, "statusCode": code, "responseTemplates": {CONTENT_TYPE: attrs[f"response.{code}.template"]}}
                if attrs[f"response.{code}.selection_pattern"] is not None:
                    response["selectionPattern"] = attrs[f"response.{code}.selection_pattern"]
                calls.append(Call("apigateway", "put_integration_response", response))
        if not integration and live is not None and "integration_responses" in attrs:
            # PutIntegration drops the integration's responses; without it, the ones no longer generated are deleted.
            for code in sorted(set(live.attributes.get("integration_responses") or ()) - set(attrs.get("integration_responses") or ())):
                calls.append(Call("apigateway", "delete_integration_response", {**where, "statusCode": code}))
        if live is None:
            reason = "method missing; create it with the generated integration"
        else:
            reason = describe_changes(tuple(c for c in changes if not c.field.endswith(".template") and c.field != "integration.request_template"))
            edited = sorted(c.field for c in changes if c.field.endswith(".template") or c.field == "integration.request_template")
            if edited:
                reason = "; ".join(filter(None, [reason, "generated template differs: " + ", ".join(edited)]))
        verb = "create" if live is None else "update"
        return [self.action(desired, verb, calls, reason, self.requires(desired))]

    def delete(self, live: Resource) -> list[Action]:
        ctx = live.context
        if not ctx.get("retired"):
            return []  # methods belong to the API's own tooling; Pointsman only writes their integration
        where = {"restApiId": ctx["api_id"], "resourceId": ctx["resource_id"]}
        calls = [Call("apigateway", "delete_method", {**where, "httpMethod": ctx["method"]})]
        if ctx["delete_resource"]:
            calls.append(Call("apigateway", "delete_resource", where))
        reason = f"version {ctx['version']} left the catalogue: its route behind the proxy goes (prune); clients stop reaching it at the API's next deployment"
        return [self.action(live, "delete", calls, reason, users=tuple(ctx.get("users", ())))]


def _retired_routes(
    api: str, api_id: str, method: str, path: str, region: str, function_arn: str, catalogue: Iterable[str], resources: dict[str, Any]
) -> list[Resource]:
    """The routes behind an http-proxy route whose version left the catalogue, as Pointsman made
    them: resource ``{path}/{version}`` with a Lambda proxy integration of that function's alias
    ``version`` on ``method``. A route built any other way is someone else's and never listed."""
    prefix = path.rstrip("/") + "/"
    out: list[Resource] = []
    for candidate, resource in sorted(resources.items()):
        version = candidate[len(prefix) :]
        if not candidate.startswith(prefix) or not version or "/" in version or version in catalogue:
            continue
        body = (resource.get("resourceMethods") or {}).get(method)
        integration = (body or {}).get("methodIntegration") or {}
        try:
            generated = versioned_route_attributes(region, function_arn, version)
        except ValueError:
            continue
        if integration.get("type") != generated["integration.type"] or integration.get("uri") != generated["integration.uri"]:
            continue
        others = set(resource.get("resourceMethods") or {}) - {method}
        children = any(other.startswith(candidate + "/") for other in resources)
        context = {
            "api": api,
            "api_id": api_id,
            "resource_id": resource["id"],
            "method": method,
            "path": candidate,
            "version": version,
            "retired": True,
            "delete_resource": not others and not children,  # a resource with other methods or children stays
            "extra_reason": f"version {version} is not in the catalogue any more (a route Pointsman generated behind the proxy)",
        }
        attrs = {
            "integration.type": integration.get("type"),
            "integration.http_method": integration.get("httpMethod"),
            "integration.uri": integration.get("uri"),
        }
        out.append(Resource("rest_method", f"{api}/{method}{candidate}", attrs, context))
    return out


def _stages_exposing(ctx: PlanContext, api: str, api_id: str, version: str) -> tuple[str, ...]:
    """``rest_stage`` ids of the API's live stages whose version list names ``version``."""
    users = []
    for stage, item in sorted(ctx.scope.stages(api_id).items()):
        if version in versioning.stage_versions(item.get("variables") or {}):
            users.append(f"rest_stage/{api}/{stage}")
    return tuple(users)
