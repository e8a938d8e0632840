"""Focused reconciles: an event re-plans what it touched, and what depends on it.

A CloudTrail event names a function, a REST API (by id) or a custom domain. A focused run plans
the part of the spec (``Spec.part``) those can affect, against the reads a full run kept, so
what it costs (reads and CPU) follows what the event touched, not the size of the estate:

- a **function**: its declaration (aliases, published versions, environment), and every
  declared REST API whose stages route to it (the invoke permissions on its aliases are
  derived from those stages);
- a **REST API**: its stages, methods and deployment, the permissions its routes derive, the
  functions it routes to (a permission needs its alias), and the declared domains whose
  mappings point at it;
- a **domain**: its mappings.

``Dependencies`` knows who routes to whom: for each declared REST API, the functions its
integrations (and ``versions`` routes) name; for each declared domain, the APIs its mappings
point at, in git and live. It is made from a full run's reads and refreshed, for what a
focused run read again, after it. ``focus`` returns None when the touch cannot be mapped (a name
the spec and the reads do not know, an id of no declared API): the run is then a full one.

A focused run never prunes (what a part of the spec leaves out is not extra) and never treats
another API's permissions as extra (``Spec.leaves_out_api``); ``Focus.covers`` says which
resources its findings replace in what the last full run found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.live.scope import Scope
from controller.spec import Spec

Owner = tuple[str, str]  # ("function", NAME), ("api", NAME) or ("domain", NAME)

_FUNCTION_KINDS = frozenset({"lambda_alias", "lambda_function_config", "lambda_version"})
_API_KINDS = frozenset({"rest_api", "rest_stage", "rest_method", "rest_deployment", "stage_variable"})


def owner(resource: str) -> Owner | None:
    """The declaration a managed resource is planned with: a function's aliases, versions and
    environment with the function; a stage, method, deployment or derived invoke permission with
    its REST API; a mapping with its domain. None for another kind."""
    kind, _, key = resource.partition("/")
    if kind in _FUNCTION_KINDS:
        return ("function", key.split("/", 1)[0])
    if kind in _API_KINDS:
        return ("api", key.split("/", 1)[0])
    if kind == "lambda_permission":
        parts = key.split("/", 2)
        return ("api", parts[2]) if len(parts) == 3 else None
    if kind == "base_path_mapping":
        return ("domain", key.split("/", 1)[0])
    return None


@dataclass
class Dependencies:
    """Who routes to whom in one spec, as a full run read it (see the module)."""

    routes_to: dict[str, frozenset[str]] = field(default_factory=dict)  # API -> functions its routes name
    maps_to: dict[str, frozenset[str]] = field(default_factory=dict)  # domain -> APIs its mappings point at
    callers: dict[str, set[str]] = field(default_factory=dict)  # function -> APIs routing to it
    mappers: dict[str, set[str]] = field(default_factory=dict)  # API -> domains mapping to it
    order: dict[Owner, int] = field(default_factory=dict)  # each declaration's place in the spec

    @classmethod
    def of(cls, spec: Spec, scope: Scope) -> Dependencies:
        deps = cls()
        for kind, names in (("function", spec.functions), ("api", spec.rest_apis), ("domain", spec.domains)):
            for n, name in enumerate(names):
                deps.order[(kind, name)] = n
        deps.refresh(spec, scope, spec.rest_apis, spec.domains)
        return deps

    def refresh(self, spec: Spec, scope: Scope, apis: Iterable[str], domains: Iterable[str]) -> None:
        """Read again who ``apis`` route to and where ``domains`` map (reads the scope lacks are made)."""
        ids = scope.unique_api_ids(spec.rest_apis)
        names = {api_id: name for name, ids_ in scope.rest_api_ids().items() for api_id in ids_}
        for api in apis:
            decl = spec.rest_apis.get(api)
            if decl is None:
                continue
            functions = {route.function for route in scope.alias_routes(ids[api])} if api in ids else set()
            if decl.spec.versions is not None:
                functions |= {route.function for route in decl.spec.versions.routes}
            for function in self.routes_to.get(api, frozenset()) - functions:
                self.callers.get(function, set()).discard(api)
            for function in functions:
                self.callers.setdefault(function, set()).add(api)
            self.routes_to[api] = frozenset(functions)
        for domain in domains:
            decl = spec.domains.get(domain)
            if decl is None:
                continue
            targets = {mapping.api for mapping in decl.spec.mappings.values()}
            targets |= {names.get(str(item.get("restApiId")), str(item.get("restApiId"))) for item in (scope.mappings(domain) or {}).values()}
            for api in self.maps_to.get(domain, frozenset()) - targets:
                self.mappers.get(api, set()).discard(domain)
            for api in targets:
                self.mappers.setdefault(api, set()).add(domain)
            self.maps_to[domain] = frozenset(targets)

    def sorted(self, kind: str, names: Iterable[str]) -> list[str]:
        """``names`` in the spec's order (those it does not declare last, by name)."""
        return sorted(names, key=lambda name: (self.order.get((kind, name), len(self.order)), name))


@dataclass(frozen=True)
class Focus:
    """The declarations a focused run plans: functions, REST APIs and domains, by name."""

    functions: frozenset[str]
    apis: frozenset[str]
    domains: frozenset[str]

    def spec(self, whole: Spec, deps: Dependencies) -> Spec:
        """The part of ``whole`` this focus plans."""
        return whole.part(deps.sorted("function", self.functions), deps.sorted("api", self.apis), deps.sorted("domain", self.domains))

    def owners(self) -> set[Owner]:
        return {("function", f) for f in self.functions} | {("api", a) for a in self.apis} | {("domain", d) for d in self.domains}

    def covers(self, resource: str, whole: Spec) -> bool:
        """Is ``resource`` (a drifted or managed resource id) one this focus plans: what it found
        of it replaces what earlier runs found? An invoke permission of a function in focus is,
        unless it is for an API the whole spec declares outside the focus."""
        kind, _, key = resource.partition("/")
        if kind == "lambda_permission":
            parts = key.split("/")
            if len(parts) < 3:
                return False
            for api in ("/".join(parts[2:]), "/".join(parts[2:-1])):
                if api in self.apis:
                    return True
                if api in whole.rest_apis:
                    return False
            return parts[0] in self.functions
        found = owner(resource)
        if found is None:
            return False
        return found in self.owners()

    def routes_spec(self, whole: Spec, deps: Dependencies) -> Spec:
        """The part of ``whole`` whose routing view this focus can change: its APIs and domains,
        the domains mapping to its APIs, the APIs those map to, and the functions they route to."""
        domains = set(self.domains) | {d for api in self.apis for d in deps.mappers.get(api, ())}
        apis = set(self.apis) | {a for d in domains for a in deps.maps_to.get(d, ())}
        functions = set(self.functions) | {f for api in apis for f in deps.routes_to.get(api, ())}
        return whole.part(deps.sorted("function", functions), deps.sorted("api", apis), deps.sorted("domain", domains))


def focus(spec: Spec, scope: Scope, deps: Dependencies, functions: Iterable[str], api_ids: Iterable[str], domains: Iterable[str]) -> Focus | None:
    """What a touch of these functions, REST API ids and domains makes a focused run plan (see
    the module); None when one cannot be mapped: the run must be a full one."""
    touched_functions = set(functions)
    touched_domains = set(domains)
    touched_apis: set[str] = set()
    ids = {api_id: name for name, api_id in scope.unique_api_ids(spec.rest_apis).items()}
    for api_id in api_ids:
        name = ids.get(api_id)
        if name is None:
            return None  # no declared API has this id (any more): only a full run can say
        touched_apis.add(name)
    if not (touched_functions or touched_apis or touched_domains):
        return None
    for function in touched_functions:
        if function not in spec.functions and not deps.callers.get(function):
            return None  # neither declared nor routed to by a declared API
    if any(domain not in spec.domains for domain in touched_domains):
        return None
    deps.refresh(spec, scope, touched_apis, touched_domains)  # what the event changed: its routes and mappings
    apis = touched_apis | {api for function in touched_functions for api in deps.callers.get(function, ())}
    focused_domains = touched_domains | {domain for api in touched_apis for domain in deps.mappers.get(api, ())}
    focused_functions = {f for f in touched_functions if f in spec.functions}
    focused_functions |= {f for api in apis for f in deps.routes_to.get(api, ()) if f in spec.functions}
    return Focus(frozenset(focused_functions), frozenset(apis), frozenset(focused_domains))
