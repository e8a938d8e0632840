"""The resolution core: a request resolved step by step as API Gateway and Lambda would, reading
only through an :class:`~controller.views.explain.answers.Estate` (pure: no AWS calls of its own)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from controller import versions as versioning
from controller.views.explain.answers import (
    LATEST,
    Estate,
    Explanation,
    FunctionHome,
    Integration,
    IntegrationResponse,
    ServedBy,
    Step,
    _Answer,
    _forbidden,
    _internal,
    describe_versions,
)
from controller.views.explain.request import ExplainError, Request

UNSUPPORTED_MEDIA: dict[str, str] = {"message": "Unsupported Media Type"}
_EXECUTE_API_RE = re.compile(r"([a-z0-9]{1,64})\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_LAMBDA_URI_RE = re.compile(
    r":lambda:path/[^/]+/functions/(?P<arn>arn:(?P<partition>[^:]+):lambda:[^:]*:[^:]*:function:(?P<name>[^:/]+))"
    r"(?::(?P<qualifier>[^/]+))?/invocations$"
)

_STAGE_VARIABLE_RE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")
_PATH_PARAMETER_RE = re.compile(r"\{([A-Za-z0-9_]+)\}")
_PARAMETER_SOURCE_RE = re.compile(r"method\.request\.(path|querystring|header)\.(.+)|stageVariables\.(.+)")

# ---------------------------------------------------------------------------------------------
# The resolution core (pure: it only reads through the Estate)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """The API and stage a request reaches, and the path the API sees."""

    api: str
    api_id: str
    stage: str
    path: str  # "/products": without the base path or the stage


@dataclass(frozen=True)
class Route:
    resource: str  # the resource path template: "/users/{id}"
    method: str  # the API's method: the request's, or ANY
    parameters: dict[str, str]
    integration: Integration


@dataclass(frozen=True)
class Selection:
    """The Lambda function and qualifier (alias, version or $LATEST) an integration calls."""

    function: str
    qualifier: str
    function_arn: str
    derived: bool  # Pointsman derives the invoke permission for this kind of route
    rendered: versioning.Rendered | None = None


class _Trace:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(self, step: str, detail: str) -> None:
        self.steps.append(Step(step, detail))


def explain(request: Request, estate: Estate) -> Explanation:
    """Resolve ``request`` step by step against ``estate``."""
    trace = _Trace()
    try:
        entry = _entry(request, estate, trace)
        variables = _stage(entry, estate, trace)
        route = _route(request, entry, estate, trace)
        behind = _proxy_hop(request, entry, route, variables, trace)
        if behind is not None:
            inner = explain(behind, estate)
            trace.steps.extend(inner.steps)
            if inner.status == 403:  # the proxy called a route that does not exist: its 4XX response answers
                raise _proxy_client_error(request, entry, route, variables, inner, trace)
            raise _Answer(inner.status, inner.body, inner.reason, inner.served_by)
        selection = _select(request, entry, route, variables, estate, trace)
        served = _serve(request, entry, route, variables, selection, estate, trace)
        answer = _Answer(200, None, served.describe(), served)
    except _Answer as stop:
        answer = stop
    return Explanation(request, estate.view, tuple(trace.steps), answer.status, answer.body, answer.reason, answer.served_by)


def _segments(path: str) -> list[str]:
    return [unquote(part) for part in path.split("/") if part]


def _entry(request: Request, estate: Estate, trace: _Trace) -> Entry:
    if request.api is not None and request.stage is not None:
        api_id = estate.api_id(request.api)
        if api_id is None:
            raise _forbidden(f"there is no REST API named {request.api}")
        trace.add("api", f"REST API {request.api} ({api_id}), stage {request.stage} (--api, --stage)")
        return Entry(request.api, api_id, request.stage, request.path)
    match = _EXECUTE_API_RE.fullmatch(request.host)
    if match is not None:
        return _execute_api_entry(request, match[1], match[2], estate, trace)
    return _domain_entry(request, estate, trace)


def _execute_api_entry(request: Request, api_id: str, region: str, estate: Estate, trace: _Trace) -> Entry:
    if region != estate.region:
        raise ExplainError(f"the URL is for region {region} but AWS_REGION is {estate.region}: set AWS_REGION={region}")
    api = estate.api_name(api_id)
    if api is None:
        raise _forbidden(f"there is no REST API with id {api_id} in {region}")
    segments = request.path.split("/")[1:]
    if not segments or not segments[0]:
        raise _forbidden(f"the path {request.path} names no stage (https://{request.host}/STAGE/...)")
    stage, rest = unquote(segments[0]), "/" + "/".join(segments[1:])
    trace.add("endpoint", f"{request.host}: REST API {api} ({api_id}), stage {stage} (the first path segment)")
    return Entry(api, api_id, stage, rest)


def match_base_path(base_paths: Iterable[str], path: str) -> tuple[str, str] | None:
    """The longest base path that prefixes ``path`` segment by segment (``(none)``: the root),
    and the rest of the path; None when none does."""
    segments = [part for part in path.split("/") if part]
    best: tuple[int, str] | None = None
    for base in base_paths:
        parts = [] if base == "(none)" else [p for p in base.split("/") if p]
        if [unquote(s) for s in segments[: len(parts)]] == parts and (best is None or len(parts) > best[0]):
            best = (len(parts), base)
    if best is None:
        return None
    return best[1], "/" + "/".join(segments[best[0] :])


def _domain_entry(request: Request, estate: Estate, trace: _Trace) -> Entry:
    mappings = estate.mappings(request.host)
    if mappings is None:
        raise _forbidden(f"{request.host} is not a custom domain name of this account and region")
    found = match_base_path(mappings.by_base_path, request.path)
    if found is None:
        known = ", ".join(sorted(mappings.by_base_path)) or "none"
        raise _forbidden(f"no base path mapping of {request.host} matches {request.path} (base paths: {known})")
    base, rest = found
    target = mappings.by_base_path[base]
    stage = target.stage
    if not stage:  # a mapping without a stage: the next segment names it
        segments = rest.split("/")[1:]
        stage, rest = unquote(segments[0]), "/" + "/".join(segments[1:])
        if not stage:
            raise _forbidden(f"base path {base} of {request.host} maps to every stage of {target.api}, and the path names none")
    if target.api_id is None:
        raise _forbidden(f"base path {base} of {request.host} maps to REST API {target.api}, which does not exist")
    trace.add("domain", f"{request.host} base path {base} -> REST API {target.api} ({target.api_id}), stage {stage} [{mappings.origin}]")
    return Entry(target.api, target.api_id, stage, rest)


def _stage(entry: Entry, estate: Estate, trace: _Trace) -> dict[str, str]:
    stage = estate.stage(entry.api, entry.api_id, entry.stage)
    if stage is None:
        raise _forbidden(f"REST API {entry.api} has no stage {entry.stage}")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(stage.variables.items())) or "none"
    trace.add("stage", f"{entry.stage} of {entry.api}: variables {shown} [{stage.origin}]")
    return stage.variables


def match_resource(paths: Iterable[str], path: str) -> tuple[str, dict[str, str]] | None:
    """The resource path template that matches ``path`` best, and its path parameters.

    Literal segments win over ``{param}``, which wins over ``{proxy+}`` (compared segment by
    segment from the left), as in API Gateway.
    """
    segments = _segments(path)
    best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
    for template in paths:
        matched = _match_template(template, segments)
        if matched is not None and (best is None or matched[0] < best[0]):
            best = (matched[0], template, matched[1])
    return None if best is None else (best[1], best[2])


def _match_template(template: str, segments: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
    parts = [part for part in template.split("/") if part]
    ranks: list[int] = []
    parameters: dict[str, str] = {}
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            if index != len(parts) - 1 or len(segments) <= index:
                return None
            parameters[part[1:-2]] = "/".join(segments[index:])
            return (*ranks, 2), parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = segments[index]
            ranks.append(1)
        elif part == segments[index]:
            ranks.append(0)
        else:
            return None
    return (tuple(ranks), parameters) if len(parts) == len(segments) else None


def _route(request: Request, entry: Entry, estate: Estate, trace: _Trace) -> Route:
    resources = estate.resources(entry.api, entry.api_id)
    found = match_resource(resources, entry.path)
    if found is None:
        raise _forbidden(f"no resource of {entry.api} matches {entry.path}")
    resource, parameters = found
    shown = "".join(f", {k}={v}" for k, v in parameters.items())
    trace.add("resource", f"{resource} matches {entry.path}{shown}")
    methods = resources[resource]
    method = request.method if request.method in methods else "ANY" if "ANY" in methods else None
    if method is None:
        raise _forbidden(f"resource {resource} of {entry.api} has no {request.method} method (it has {', '.join(sorted(methods)) or 'none'})")
    integration = methods[method]
    trace.add("method", method if method == request.method else f"ANY (matches {request.method})")
    if integration is None:
        raise _internal(f"{method} {resource} of {entry.api} has no integration")
    trace.add("integration", f"{integration.type} {integration.uri or '(no URI)'} [{integration.origin}]")
    return Route(resource, method, parameters, integration)


def _context(request: Request, entry: Entry, route: Route) -> dict[str, Any]:
    return {
        "stage": entry.stage,
        "httpMethod": request.method,
        "path": request.path,
        "resourcePath": route.resource,
        "apiId": entry.api_id,
        "domainName": request.host or f"{entry.api_id}.execute-api.amazonaws.com",
    }


def _select(request: Request, entry: Entry, route: Route, variables: dict[str, str], estate: Estate, trace: _Trace) -> Selection:
    integration = route.integration
    match = _LAMBDA_URI_RE.search(integration.uri) if integration.type in ("AWS", "AWS_PROXY") else None
    if match is None:
        raise _Answer(200, None, f"a {integration.type} integration answers; it is not a Lambda function, so explain stops here")
    function, qualifier = match["name"], match["qualifier"]
    if qualifier is None:
        trace.add("alias", f"the URI names no qualifier: {function} {LATEST}")
        return Selection(function, LATEST, match["arn"], derived=False)
    by_variable = _STAGE_VARIABLE_RE.search(qualifier) is not None
    rendered = None
    if _PATH_PARAMETER_RE.search(qualifier):
        rendered = _render_request(request, entry, route, variables, trace)
        qualifier = _path_parameters(qualifier, request, route, variables, rendered)
    qualifier = _stage_variables(qualifier, entry, variables, trace)
    if by_variable:
        names = ", ".join(f"{name}={variables[name]}" for name in _STAGE_VARIABLE_RE.findall(match["qualifier"]))
        trace.add("alias", f"stage variable {names} -> {function}:{qualifier}")
    elif _PATH_PARAMETER_RE.search(match["qualifier"]):
        chooser = "the request template" if rendered is not None else "the integration's request parameters"
        trace.add("alias", f"{chooser} chose {function}:{qualifier}")
    else:
        trace.add("alias", f"the URI names it: {function}:{qualifier}")
    derived = by_variable or integration.generated
    return Selection(function, qualifier, match["arn"], derived, rendered)


_SAME_API_URI_RE = re.compile(r"^https://(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<path>/.*)$")


def _proxy_hop(request: Request, entry: Entry, route: Route, variables: dict[str, str], trace: _Trace) -> Request | None:
    """An HTTP integration calling a route of the same API (versions, strategy http-proxy): the
    request the proxy sends, after its template chose the version. None for anything else.

    What reaches the route behind it: an ``HTTP_PROXY`` integration passes the client's headers
    and query string as they are; an ``HTTP`` one only what its request parameters map
    (``integration.request.header.X`` / ``.querystring.X``) and its template overrides
    (``$context.requestOverride.header`` / ``.querystring``, applied after the mappings). Path
    parameters fill the URI from the override, else from the request parameters."""
    integration = route.integration
    match = _SAME_API_URI_RE.match(integration.uri) if integration.type in ("HTTP", "HTTP_PROXY") else None
    if match is None or match["api"] != entry.api_id:
        return None
    rendered = _render_request(request, entry, route, variables, trace)
    path = _path_parameters(_stage_variables(match["path"], entry, variables, trace), request, route, variables, rendered)
    stage, _, rest = path.lstrip("/").partition("/")
    headers, query = _forwarded(request, route, variables, rendered)
    forwarded = [f"headers {', '.join(headers)}" if headers else "no headers"]
    if query:
        forwarded.append("query " + "&".join(f"{k}={v}" for k, v in query.items()))
    if route.parameters:
        forwarded.append("path " + ", ".join(f"{k}={v}" for k, v in route.parameters.items()))
    trace.add(
        "proxy",
        f"the proxy calls {request.method} /{rest} on stage {stage} of {entry.api} (a second API Gateway call), forwarding {'; '.join(forwarded)}",
    )
    body = rendered.output if rendered is not None else request.body
    return Request(request.method, f"/{rest}", query=query, headers=headers, body=body, api=entry.api, stage=stage)


def _forwarded(request: Request, route: Route, variables: Mapping[str, str], rendered: versioning.Rendered | None) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query string an HTTP integration sends (see :func:`_proxy_hop`)."""
    if route.integration.type == "HTTP_PROXY":
        return dict(request.headers), dict(request.query)
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    for target, source in route.integration.request_parameters.items():
        where, _, name = target.removeprefix("integration.request.").partition(".")
        value = _parameter_source(source, request, route, variables)
        if value is not None and where in ("header", "querystring"):
            (headers if where == "header" else query)[name] = value
    if rendered is not None:
        override = rendered.request_override
        headers.update({str(k): str(v) for k, v in override["header"].items()})
        query.update({str(k): str(v) for k, v in override["querystring"].items()})
    return headers, query


def _proxy_client_error(request: Request, entry: Entry, route: Route, variables: dict[str, str], inner: Explanation, trace: _Trace) -> _Answer:
    response = _integration_response(route.integration.responses, str(inner.status))
    if response is None or response.template is None:
        return _Answer(inner.status, inner.body, inner.reason)
    trace.add("response", f"the proxy's {inner.status} selects integration response {response.status} [{route.integration.origin}]")
    try:
        rendered = _render_response(response.template, inner.body, request, entry, route, variables)
    except versioning.TemplateRenderError as exc:
        return _internal(f"the proxy's integration response template fails: {exc}")
    status, body = rendered.status or int(response.status), _json_or_text(rendered.output)
    reason = body["message"] if isinstance(body, dict) and isinstance(body.get("message"), str) else inner.reason
    return _Answer(status, body, f"{reason} (the route behind the proxy does not exist)")


def _stage_variables(qualifier: str, entry: Entry, variables: Mapping[str, str], trace: _Trace) -> str:
    def value(found: re.Match[str]) -> str:
        name = found[1]
        if name not in variables:
            raise _internal(f"stage {entry.stage} of {entry.api} has no stage variable {name}, which the integration URI needs")
        return variables[name]

    return _STAGE_VARIABLE_RE.sub(value, qualifier)


def _request_template(request: Request, integration: Integration) -> str | None:
    """The template API Gateway applies to this request's content type (None: passed through)."""
    if not integration.request_templates:
        return None
    content_type = (request.header("Content-Type") or versioning.CONTENT_TYPE).split(";")[0].strip().lower()
    template = integration.request_templates.get(content_type)
    if template is None and integration.passthrough != "WHEN_NO_MATCH":
        raise _Answer(415, UNSUPPORTED_MEDIA, f"no request template for Content-Type {content_type} (passthrough {integration.passthrough})")
    return template


def _render_request(request: Request, entry: Entry, route: Route, variables: dict[str, str], trace: _Trace) -> versioning.Rendered | None:
    template = _request_template(request, route.integration)
    if template is None:
        return None
    try:
        rendered = versioning.render_request(
            template,
            headers=request.headers,
            body=request.body,
            query=request.query,
            path_parameters=route.parameters,
            stage_variables=variables,
            context=_context(request, entry, route),
        )
    except versioning.TemplateRenderError as exc:
        raise _internal(f"the request mapping template fails: {exc}") from None
    origin = "generated" if route.integration.generated else "on the method"
    requested = _requested_version(rendered)
    default = " (the stage's default)" if requested is not None and requested == variables.get(versioning.STAGE_DEFAULT_VAR) else ""
    asked = f"requested version {requested!r}{default}, " if requested is not None else ""
    invocation = f", {versioning.INVOCATION_TYPE_HEADER} {rendered.invocation_type}" if rendered.invocation_type else ""
    trace.add("template", f"the request template ({origin}) renders: {asked}alias path parameter {rendered.alias or '(not set)'}{invocation}")
    return rendered


def _requested_version(rendered: versioning.Rendered) -> str | None:
    try:
        data = rendered.json()
    except ValueError:
        return None
    version = (data.get("requestContext") or {}).get("apiVersion") if isinstance(data, dict) else None
    return str(version) if version is not None else None


def _path_parameters(qualifier: str, request: Request, route: Route, variables: Mapping[str, str], rendered: versioning.Rendered | None) -> str:
    """Fill ``{name}`` from the template's override, else from the integration's request parameters."""

    def value(found: re.Match[str]) -> str:
        name = found[1]
        if rendered is not None and rendered.request_override["path"].get(name) is not None:
            return str(rendered.request_override["path"][name])
        source = route.integration.request_parameters.get(f"integration.request.path.{name}")
        resolved = _parameter_source(source, request, route, variables)
        if resolved is None:
            raise _internal(f"the integration URI needs path parameter {name}, which nothing sets")
        return resolved

    return _PATH_PARAMETER_RE.sub(value, qualifier)


def _parameter_source(source: str | None, request: Request, route: Route, variables: Mapping[str, str]) -> str | None:
    if source is None:
        return None
    if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
        return source[1:-1]
    match = _PARAMETER_SOURCE_RE.fullmatch(source)
    if match is None:
        return None
    where, name, variable = match.groups()
    if variable is not None:
        return variables.get(variable)
    if where == "path":
        return route.parameters.get(name)
    if where == "querystring":
        return request.query.get(name)
    return request.header(name)


def _source_arn(home: FunctionHome, entry: Entry, request: Request) -> str:
    return f"arn:{home.partition}:execute-api:{home.region}:{home.account}:{entry.api_id}/{entry.stage}/{request.method}{entry.path}"


def _serve(request: Request, entry: Entry, route: Route, variables: dict[str, str], selection: Selection, estate: Estate, trace: _Trace) -> ServedBy:
    function, qualifier = selection.function, selection.qualifier
    home = estate.function_home(function)
    if home is None:
        trace.add("lambda", f"function {function} does not exist: Lambda answers 404")
        raise _lambda_not_found(f"function {function} does not exist", trace)
    if qualifier == LATEST or qualifier.isdigit():
        trace.add("permission", "not checked: explain reads the resource policies of aliases")
        return ServedBy(function, None, {qualifier: 1.0})
    alias = estate.alias(function, qualifier)
    if alias is None:
        unknown = qualifier == versioning.UNKNOWN_ALIAS
        why = "the stage serves no version, so " if unknown else ""
        trace.add("lambda", f"{why}{function}:{qualifier} does not exist: Lambda answers 404")
        raise _lambda_not_found(f"{function}:{qualifier} does not exist", trace)
    note = f"; {alias.note}" if alias.note else ""
    trace.add("versions", f"{function}:{qualifier} serves {describe_versions(alias.versions)}{note} [{alias.origin}]")
    permission = estate.permission(function, qualifier, entry.api, entry.stage, _source_arn(home, entry, request), selection.derived)
    trace.add("permission", permission.detail)
    if not permission.allowed:
        raise _internal(f"API Gateway may not invoke {function}:{qualifier}")
    dry_run = _dry_run(request, entry, route, variables, selection, trace)
    if dry_run is not None:
        raise dry_run
    return ServedBy(function, qualifier, alias.versions)


def _lambda_not_found(reason: str, trace: _Trace) -> _Answer:
    """Lambda rejects the invoke with 404: API Gateway answers 500 before any integration response runs.

    "Execution failed due to configuration error" (Lambda developer guide, "Handle Lambda errors
    with an API Gateway API"): an integration response's selection pattern never sees the 404.
    """
    trace.add("response", "Lambda rejected the invoke: API Gateway answers 500 (no integration response runs)")
    return _internal(reason)


def _dry_run(request: Request, entry: Entry, route: Route, variables: dict[str, str], selection: Selection, trace: _Trace) -> _Answer | None:
    """A call the request template made a DryRun (a version the stage does not serve): what the client gets.

    Lambda validates the call and the permission, runs nothing and answers 204 with no payload;
    with no function error the default integration response answers (for a Lambda backend, a
    selection pattern sees only a function's error message). None when the call is not a DryRun.
    """
    if selection.rendered is None or selection.rendered.invocation_type != versioning.DRY_RUN:
        return None
    qualified = f"{selection.function}:{selection.qualifier}"
    trace.add("lambda", f"{versioning.INVOCATION_TYPE_HEADER}: {versioning.DRY_RUN} on {qualified}: Lambda checks the call, runs no function, answers 204")
    integration = route.integration
    default = next((response for response in integration.responses if not response.pattern), None)
    if default is None:
        return _Answer(200, None, f"a DryRun of {qualified}: no function runs, and no default integration response answers")
    trace.add("response", f"no function error: the default integration response {default.status} answers [{integration.origin}]")
    status, body = int(default.status), None
    if default.template is not None:
        try:
            answered = _render_response(default.template, "", request, entry, route, variables)
        except versioning.TemplateRenderError as exc:
            return _internal(f"the integration response template fails: {exc}")
        status, body = answered.status or status, _json_or_text(answered.output)
    reason = f"no function runs; {status}"
    if isinstance(body, dict) and isinstance(body.get("supported"), list):
        reason += " listing " + ", ".join(str(version) for version in body["supported"])
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        reason = f"{body['message']} ({reason})"
    return _Answer(status, body, reason)


def _render_response(template: str, payload: Any, request: Request, entry: Entry, route: Route, variables: dict[str, str]) -> versioning.Rendered:
    """An integration response template rendered for this request and the integration's answer."""
    return versioning.render_response(
        template,
        payload=payload,
        headers=request.headers,
        query=request.query,
        path_parameters=route.parameters,
        stage_variables=variables,
        context=_context(request, entry, route),
    )


def _integration_response(responses: Iterable[IntegrationResponse], status: str) -> IntegrationResponse | None:
    """The response whose selection pattern matches (a Java regex: the whole text), else the default."""
    default = None
    for response in responses:
        if not response.pattern:
            default = default or response
        elif re.fullmatch(response.pattern, status):
            return response
    return default


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
