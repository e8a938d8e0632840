"""Versioned REST APIs for ``pointsman import``: the ``versions`` block that reproduces them.

Three layouts are recognised (README "Adopting an existing estate"):

- **Pointsman's own, strategy lambda**: methods whose AWS integration names the alias
  ``function:NAME:{alias}``, with the generated templates, and stages carrying
  ``pointsmanVersions`` / ``pointsmanDefaultVersion``;
- **Pointsman's own, strategy http-proxy**: a proxy route (an HTTP integration with the
  generated templates) in front of ``{path}/{version}`` routes, each a Lambda proxy integration
  of the alias named after its version;
- **the http-proxy layout built by hand** (the console layout of the header-versioning article):
  the same routes behind a proxy route whose integration and templates are hand-written. It is
  written ``strategy: http-proxy`` with ``proxy: unmanaged``: Pointsman manages the routes
  behind the proxy, their aliases and permissions, and never writes the proxy route.

A generated layout is written only when the spec written back from it generates exactly the
templates that are live (checked here, attribute by attribute, with the generators the plan
uses); a method whose templates were edited by hand is left out with why. Everything here
reads the scope only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller import versions as versioning
from controller.kinds.rest_method import live_attributes, method_attributes, proxy_attributes, versioned_route_attributes
from controller.live.scope import FunctionLive, Scope
from controller.views.yaml_text import comment, flow, scalar

VERSION_VARIABLES = frozenset({versioning.STAGE_VERSIONS_VAR, versioning.STAGE_DEFAULT_VAR, versioning.STAGE_NAME_VAR})
_SELECTED_URI_RE = re.compile(r":function:([A-Za-z0-9_-]+):\{alias\}/invocations$")
_FIXED_URI_RE = re.compile(r":function:([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)/invocations$")
_GENERATED_FOR_RE = re.compile(r"generated for (?:header ([A-Za-z0-9!%&'*+.^_`|~-]+)|Accept (\S+?)\.<version>\+json); do not edit")
# What a hand-written proxy template reads the version from.
_HEADER_READ_RES = (
    re.compile(r"\$method\.request\.header\.([A-Za-z0-9-]+)"),
    re.compile(r"\$input\.params\(\)\.header\.get\(['\"]([A-Za-z0-9-]+)['\"]\)"),
    re.compile(r"\$input\.params\(['\"]([A-Za-z0-9-]+)['\"]\)"),
)
_SET_LITERAL_RE = re.compile(r"#set\(\s*\$[A-Za-z0-9_]+\s*=\s*[\"']([^\"']+)[\"']\s*\)")


class NotImportable(Exception):
    """A versioned API the spec cannot reproduce; ``functions``: those its routes name."""

    def __init__(self, reason: str, functions: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.functions = tuple(functions)


@dataclass(frozen=True, order=True)
class Route:
    method: str
    path: str
    function: str


@dataclass
class Found:
    """A versioned API as the spec says it (the ``versions`` block, in the order it is written)."""

    selector: versioning.Selector
    default: str
    strategy: str  # "lambda" or "http-proxy"
    proxy: str  # "generated" or "unmanaged"
    routes: list[Route]
    catalogue: dict[str, dict[str, Any]]  # version -> {functions: {fn: pin}, description?, stages?} in catalogue order
    exposed: dict[str, list[str]]  # stage -> the versions it serves
    inferred: dict[str, str] = field(default_factory=dict)  # key -> why its value is a guess
    notes: list[str] = field(default_factory=list)  # what a plan will still report, with why

    @property
    def aliases(self) -> set[tuple[str, str]]:
        """(function, alias) the catalogue generates."""
        return {(route.function, version) for route in self.routes for version in self.catalogue}

    def invoked(self, route: Route, version: str) -> str:
        """The resource path API Gateway invokes the version's alias from."""
        return versioning.versioned_path(route.path, version) if self.strategy == "http-proxy" else route.path


def recognise(scope: Scope, api_name: str, api_id: str, stages: Mapping[str, Mapping[str, Any]]) -> Found | None:
    """The versions of this API, None when it has none; :class:`NotImportable` says why not."""
    resources = scope.resources(api_id)
    selected: list[tuple[Route, dict[str, Any]]] = []  # strategy lambda: (route, live method)
    proxies: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []  # (method, path, live method, version -> function)
    for path, resource in sorted(resources.items()):
        for method, body in sorted((resource.get("resourceMethods") or {}).items()):
            integration = (body or {}).get("methodIntegration") or {}
            uri = str(integration.get("uri") or "")
            match = _SELECTED_URI_RE.search(uri)
            if match is not None and integration.get("type") == "AWS":
                selected.append((Route(method, path, match[1]), body))
            elif integration.get("type") in ("HTTP", "HTTP_PROXY"):
                behind = _routes_behind(resources, method, path)
                if behind:
                    proxies.append((method, path, body, behind))
    with_variables = sorted(name for name, stage in stages.items() if VERSION_VARIABLES & set(stage.get("variables") or {}))
    functions = sorted({r.function for r, _ in selected} | {f for *_, behind in proxies for f in behind.values()})
    if not selected and not proxies:
        if with_variables:
            raise NotImportable(f"stage {with_variables[0]} has the versions' stage variables but no route picks a version")
        return None
    if selected and proxies:
        raise NotImportable("it mixes routes whose Lambda integration picks the alias per request with an http-proxy", functions)
    try:
        if selected:
            return _lambda_strategy(scope, api_name, stages, selected)
        found = _http_proxy(scope, api_name, api_id, stages, proxies, bool(with_variables))
        check_behind(found, scope, api_id)
        return found
    except NotImportable as exc:
        raise NotImportable(exc.reason, functions) from None


def _routes_behind(resources: Mapping[str, Mapping[str, Any]], method: str, path: str) -> dict[str, str]:
    """``{path}/{version}`` routes under ``path`` whose ``method`` is a Lambda proxy integration of
    the alias named after the version: version -> function."""
    prefix = path.rstrip("/") + "/"
    out: dict[str, str] = {}
    for candidate, resource in resources.items():
        version = candidate[len(prefix) :] if candidate.startswith(prefix) else ""
        if not version or "/" in version:
            continue
        body = (resource.get("resourceMethods") or {}).get(method) or {}
        integration = body.get("methodIntegration") or {}
        match = _FIXED_URI_RE.search(str(integration.get("uri") or ""))
        if integration.get("type") == "AWS_PROXY" and match is not None and match[2] == version:
            out[version] = match[1]
    return out


def _generated_selector(body: Mapping[str, Any]) -> versioning.Selector | None:
    template = ((body.get("methodIntegration") or {}).get("requestTemplates") or {}).get(versioning.CONTENT_TYPE) or ""
    match = _GENERATED_FOR_RE.search(template)
    if match is None:
        return None
    try:
        return versioning.Selector(header=match[1]) if match[1] else versioning.Selector(media_type=match[2])
    except ValueError:
        return None


def _same(live: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """The attributes of ``wanted`` the live method does not have."""
    return sorted(key for key, value in wanted.items() if live.get(key) != value)


def _exposure(api_name: str, stages: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], dict[str, list[str]], str]:
    """From the stages' version variables: the catalogue order, what each stage serves, the default."""
    exposed = {name: versioning.stage_versions(stage.get("variables") or {}) for name, stage in sorted(stages.items())}
    defaults = {versioning.stage_default(stage.get("variables") or {}) for stage in stages.values()}
    if not stages:
        raise NotImportable("it has no stage to read its versions from")
    if len(defaults) != 1 or "" in defaults:
        shown = ", ".join(sorted(d or "(none)" for d in defaults))
        raise NotImportable(f"its stages have different default versions ({shown}); a spec has one")
    default = next(iter(defaults))
    for stage, served in exposed.items():
        if default not in served:
            raise NotImportable(f"stage {stage} does not serve the default version {default}")
    order = _merge_orders(list(exposed.values()))
    if order is None:
        raise NotImportable("its stages list the versions in orders no catalogue reproduces")
    return order, exposed, default


def _merge_orders(lists: Sequence[Sequence[str]]) -> list[str] | None:
    """One order keeping every list's own order (each list is that order filtered); None if none does."""
    merged: list[str] = []
    for items in lists:
        for item in items:
            if item not in merged:
                merged.append(item)
    # Stable topological repair: move an item after everything a list puts before it.
    for _ in range(len(merged) + 1):
        moved = False
        for items in lists:
            positions = [merged.index(i) for i in items]
            for a, b in zip(positions, positions[1:], strict=False):
                if a > b:
                    item = merged.pop(a)
                    merged.insert(b, item)
                    moved = True
        if not moved:
            break
    for items in lists:
        if [i for i in merged if i in items] != list(items):
            return None
    return merged


def _catalogue(
    scope: Scope, api_name: str, routes: Sequence[Route], order: Sequence[str], exposed: Mapping[str, Sequence[str]] | None
) -> dict[str, dict[str, Any]]:
    """Each version's pins (the live aliases named after it), description and stages."""
    catalogue: dict[str, dict[str, Any]] = {}
    live: dict[str, FunctionLive] = {}
    for route in routes:
        fn = scope.function(route.function)
        if fn is None:
            raise NotImportable(f"{route.method} {route.path} routes to function {route.function}, which does not exist")
        live[route.function] = fn
    for version in order:
        pins: dict[str, str] = {}
        descriptions: set[str] = set()
        for function in sorted({r.function for r in routes}):
            alias = live[function].aliases.get(version)
            if alias is None:
                raise NotImportable(f"alias {function}:{version} does not exist, so the version's pin cannot be read")
            if ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")) or {}:
                raise NotImportable(f"alias {function}:{version} sends weighted traffic to a second version (a rollout?); a catalogue pins one")
            pins[function] = str(alias.get("FunctionVersion"))
            descriptions.add(str(alias.get("Description") or ""))
        if len(descriptions) > 1:
            raise NotImportable(f"the aliases of version {version} have different descriptions; a catalogue entry has one")
        entry: dict[str, Any] = {"functions": pins}
        description = next(iter(descriptions))
        if description != f"{api_name} API version {version}":
            entry["description"] = description
        if exposed is not None:
            serving = sorted(stage for stage, served in exposed.items() if version in served)
            if len(serving) != len(exposed):
                entry["stages"] = serving
        catalogue[version] = entry
    return catalogue


def _lambda_strategy(scope: Scope, api_name: str, stages: Mapping[str, Mapping[str, Any]], selected: list[tuple[Route, dict[str, Any]]]) -> Found:
    selectors = {_generated_selector(body) for _, body in selected}
    if None in selectors or len(selectors) != 1:
        route = next(r for r, body in selected if _generated_selector(body) is None) if None in selectors else selected[0][0]
        raise NotImportable(f"{route.method} {route.path} has hand-written templates (not the ones Pointsman generates)")
    selector = next(iter(selectors))
    assert selector is not None
    for route, body in selected:
        fn = scope.function(route.function)
        if fn is None:
            raise NotImportable(f"{route.method} {route.path} routes to function {route.function}, which does not exist")
        wanted = method_attributes(selector, fn.region, fn.arn)
        differ = _same(live_attributes(body, wanted), wanted)
        if differ:
            raise NotImportable(f"{route.method} {route.path} differs from what Pointsman generates for {selector.describe()} ({', '.join(differ)})")
    order, exposed, default = _exposure(api_name, stages)
    routes = [route for route, _ in selected]
    catalogue = _catalogue(scope, api_name, routes, order, exposed)
    return Found(selector, default, "lambda", "generated", routes, catalogue, exposed)


def _http_proxy(
    scope: Scope,
    api_name: str,
    api_id: str,
    stages: Mapping[str, Mapping[str, Any]],
    proxies: list[tuple[str, str, dict[str, Any], dict[str, str]]],
    with_variables: bool,
) -> Found:
    routes: list[Route] = []
    for method, path, _, behind in proxies:
        if len(set(behind.values())) != 1:
            raise NotImportable(f"the routes behind {method} {path} call different functions ({', '.join(sorted(set(behind.values())))})")
        routes.append(Route(method, path, next(iter(behind.values()))))
    live = [fn for fn in (scope.function(r.function) for r in routes) if fn is not None]
    region = live[0].region if live else None
    selectors = {_generated_selector(body) for _, _, body, _ in proxies}
    generated = None not in selectors and len(selectors) == 1 and with_variables and region is not None
    if generated:
        selector = next(iter(selectors))
        assert selector is not None and region is not None
        for method, path, body, _ in proxies:
            wanted = proxy_attributes(selector, api_id, region, method, path)
            if _same(live_attributes(body, wanted), wanted):
                generated = False
    if generated:
        assert selector is not None
        order, exposed, default = _exposure(api_name, stages)
        for stage_name, stage in sorted(stages.items()):
            if (stage.get("variables") or {}).get(versioning.STAGE_NAME_VAR) != stage_name:
                raise NotImportable(f"stage {stage_name}'s {versioning.STAGE_NAME_VAR} is not its own name, which the generated proxy calls")
        catalogue = _catalogue(scope, api_name, routes, order, exposed)
        found = Found(selector, default, "http-proxy", "generated", routes, catalogue, exposed)
        for method, path, _, behind in proxies:
            for version in sorted(set(behind) - set(order)):
                found.notes.append(
                    f"route {method} {versioning.versioned_path(path, version)} serves version {version}, which no stage lists: "
                    "a plan reports it extra (--prune deletes it)"
                )
        return found
    # Built by hand: the proxy route stays its owner's (proxy: unmanaged).
    if with_variables:
        raise NotImportable("its stages carry Pointsman's versions variables but its proxy route is not the one Pointsman generates")
    sets = {tuple(sorted(behind)) for *_, behind in proxies}
    if len(sets) != 1:
        raise NotImportable("its proxy routes have different versions behind them; a catalogue is shared by every route")
    order = list(next(iter(sets)))
    catalogue = _catalogue(scope, api_name, routes, order, None)
    templates = "\n".join(
        str(((body.get("methodIntegration") or {}).get("requestTemplates") or {}).get(versioning.CONTENT_TYPE) or "") for _, _, body, _ in proxies
    )
    inferred: dict[str, str] = {}
    header = next((m[1] for pattern in _HEADER_READ_RES for m in [pattern.search(templates)] if m is not None), None)
    if header is None:
        header = "Version"
        inferred["header"] = "the proxy's template names no header: check it"
    else:
        inferred["header"] = "read from the proxy route's template"
    literal = next((str(value) for value in _SET_LITERAL_RE.findall(templates) if value in catalogue), None)
    if literal is None:
        default = order[-1]
        inferred["default"] = "the proxy's template sets no version: the newest is written, check it"
    else:
        default = literal
        inferred["default"] = "read from the proxy route's template"
    found = Found(versioning.Selector(header=header), default, "http-proxy", "unmanaged", routes, catalogue, {s: list(order) for s in stages})
    found.inferred = inferred
    for method, path, body, _ in proxies:
        integration = body.get("methodIntegration") or {}
        found.notes.append(
            f"route {method} {path}: the proxy's {integration.get('type')} integration and its templates are hand-written: "
            "kept as they are (proxy: unmanaged), never written"
        )
    return found


def versions_lines(found: Found, indent: str = "    ") -> list[str]:
    """The ``versions:`` block, one key per line, values as flow mappings."""

    def noted(line: str, key: str) -> str:
        return f"{line}  {comment('inferred: ' + found.inferred[key])}" if key in found.inferred else line

    inner = indent + "  "
    lines = [f"{indent}versions:"]
    if found.selector.header is not None:
        lines.append(noted(f"{inner}header: {scalar(found.selector.header)}", "header"))
    else:
        lines.append(f"{inner}media_type: {scalar(found.selector.media_type)}")
    lines.append(noted(f"{inner}default: {scalar(found.default)}", "default"))
    if found.strategy != "lambda":
        lines.append(f"{inner}strategy: {found.strategy}")
    if found.proxy != "generated":
        lines.append(f"{inner}proxy: {found.proxy}  {comment('the proxy routes are hand-written: Pointsman never writes them')}")
    lines.append(f"{inner}routes:")
    for route in sorted(found.routes, key=lambda r: (r.path, r.method)):
        lines.append(f"{inner}  - {flow({'method': route.method, 'path': route.path, 'function': route.function})}")
    lines.append(f"{inner}catalogue:")
    for version, entry in found.catalogue.items():
        lines.append(f"{inner}  {scalar(version)}: {flow(entry)}")
    return lines


def check_behind(found: Found, scope: Scope, api_id: str) -> None:
    """The routes behind the proxy are the Lambda proxy integrations the plan wants (type, method, URI)."""
    resources = scope.resources(api_id)
    for route in found.routes:
        fn = scope.function(route.function)
        if fn is None:
            continue
        for version in found.catalogue:
            path = versioning.versioned_path(route.path, version)
            body = ((resources.get(path) or {}).get("resourceMethods") or {}).get(route.method) or {}
            wanted = versioned_route_attributes(fn.region, fn.arn, version)
            differ = _same(live_attributes(body, wanted), wanted)
            if differ:
                found.notes.append(f"route {route.method} {path}: {', '.join(differ)} differ from the Lambda proxy integration of alias {version}")
