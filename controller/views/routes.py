"""``pointsman routes``: the routing view, as a client would notice it.

For every custom-domain base path and every stage of the declared REST APIs, the chain a
request follows, resolved from live AWS and from git side by side::

    myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 9 (git: version 7)
    products-v1/prod (lambdaAlias=prod) -> getProducts:prod -> version 3
    api/stage (lambdaAlias=canary) -> fn:canary -> version 3 (90%) + version 4 (10%)
    users-api/prod [Version: 2022-05-03] -> postUser:2022-05-03 -> version 2

How it resolves: a base path mapping sends ``domain/basepath`` to an API's stage; an
integration URI ``...function:NAME:${stageVariables.X}/invocations`` lets the stage's variable
``X`` pick the alias of NAME (or the URI names a fixed alias or version, or none: $LATEST); an
API with ``versions`` lets the request's header or media type pick one of the aliases the stage
exposes. The alias serves one published version, or two with weights.

Git rarely names the functions an API routes to (only ``versions`` routes do): the git side of
a stage-variable route takes the integration from the live API and the stage variable and the
alias's pin from the spec. Where git does not declare something (an alias, a stage, a mapping
of a declared domain) it has no opinion: the route is shown ``(not in git)`` and does not
differ. A route differs when applying git would change what its clients get: ``(git: ...)``
shows git's chain from the first hop that differs, ``(missing live)`` a route only git has,
``(git: not routed)`` a route git sends nowhere. A hop that fails names what clients get:
``getProducts:gone (no such alias: clients get 500)``.

Read-only: the reads go through a :class:`~controller.live.scope.Scope` (each made once; no
GetPolicy, no ListVersionsByFunction unless a ``sha256:`` pin needs resolving).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from controller import versions as versioning
from controller.aws.clients import AWS_ERRORS, error_code
from controller.live.scope import VERSION_SELECTED, AliasRoute, Scope
from controller.spec import LATEST, Spec, VersionsSpec
from controller.views.explain import pinned_versions, weighted
from controller.views.words import percent

Versions = tuple[tuple[str, float], ...]  # (version, weight), the primary first
Which = Literal["both", "live", "desired"]
NO_BASE_PATH = "(none)"
EXIT_OK, EXIT_DIFFERS = 0, 2

# ...functions/arn:...:function:NAME[:QUALIFIER]/invocations with a fixed qualifier (an alias,
# a version, $LATEST) or none; stage-variable and {alias} qualifiers are Scope.alias_routes'.
_FIXED_URI_RE = re.compile(r":function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9_$-]+))?/invocations$")
_Key = tuple[str, str, str]  # (resource path, method, API version or "")


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One step of a chain as shown: ``step`` is entry, stage, variable, selector, alias,
    versions or problem; ``text`` what the line says for it."""

    step: str
    text: str


@dataclass(frozen=True)
class Chain:
    """Where one side (live AWS, or git) sends an entry's requests through one integration.

    ``function`` is None when the side reaches no function at all (``problem`` says why).
    ``variable``/``value``: the stage variable that picks the alias and its value on this side
    (None: the URI names the alias, or the request does). ``selector``: for API versions, the
    request that picks ``alias``. ``versions`` None: no such alias here (or git does not pin
    it: ``declared`` False).
    """

    api: str
    stage: str
    function: str | None = None
    variable: str | None = None
    value: str | None = None
    selector: str | None = None
    alias: str | None = None
    versions: Versions | None = None
    declared: bool = True
    problem: str | None = None

    def hops(self, *, show_variable: bool) -> tuple[Hop, ...]:
        out = [Hop("stage", f"{self.api}/{self.stage}")]
        if show_variable and self.variable is not None:
            out.append(Hop("variable", f"{self.variable}={self.value}" if self.value is not None else f"{self.variable} not set"))
        if self.selector is not None:
            out.append(Hop("selector", self.selector))
        if self.function is not None:
            out.append(Hop("alias", f"{self.function}:{self.alias}" if self.alias is not None else self.function))
        if self.versions is not None:
            out.append(Hop("versions", describe_versions(self.versions)))
        if self.problem is not None:
            out.append(Hop("problem", self.problem))
        return tuple(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "stage": self.stage,
            "variable": self.variable,
            "value": self.value,
            "selector": self.selector,
            "function": self.function,
            "alias": self.alias,
            "versions": _versions_json(self.versions),
            "declared": self.declared,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class Route:
    """One entry's route to one function alias, live and in git.

    ``api``..``alias`` are what clients reach now (live; git's where the route is missing
    live). ``live``: the versions the live alias serves, None when missing live; ``desired``:
    the versions git pins, None when git does not declare them. ``differs``: applying git
    would change what this route's clients get. ``in_git``: the entry (mapping or stage) is
    declared in git. ``methods``: the ``METHOD /path`` integrations that take this route.
    """

    entry: str
    domain: bool  # the entry is a custom domain base path (else a stage)
    methods: tuple[str, ...]
    api: str
    stage: str
    variable: str | None
    value: str | None
    selector: str | None
    function: str | None
    alias: str | None
    live: Versions | None
    desired: Versions | None
    differs: bool
    in_git: bool
    live_chain: Chain | None
    git_chain: Chain | None

    @classmethod
    def of(cls, entry: str, domain: bool, methods: Sequence[str], live: Chain | None, git: Chain | None, in_git: bool) -> Route:
        shown = live if live is not None else git
        assert shown is not None
        if live is None:
            differs = True
        elif git is None:
            differs = in_git
        else:
            differs = not _agree(live, git)
        return cls(
            entry=entry,
            domain=domain,
            methods=tuple(methods),
            api=shown.api,
            stage=shown.stage,
            variable=shown.variable,
            value=shown.value,
            selector=shown.selector,
            function=shown.function,
            alias=shown.alias,
            live=live.versions if live is not None else None,
            desired=git.versions if git is not None and git.declared else None,
            differs=differs,
            in_git=in_git,
            live_chain=live,
            git_chain=git,
        )

    def hops(self, which: Literal["live", "desired"]) -> tuple[Hop, ...]:
        """The chain one side shows, from the entry; () when the route is not on that side."""
        chain = self.live_chain if which == "live" else self.git_chain
        if chain is None:
            return ()
        hops = chain.hops(show_variable=not self.domain)
        return ((Hop("entry", self.entry),) + hops) if self.domain else hops

    def describe(self, which: Which = "both") -> str:
        """One line: the live chain, and git's where it differs (``which``: one side alone)."""
        live, git = self.hops("live"), self.hops("desired")
        if which == "live":
            return join(live)
        if which == "desired":
            return join(git) + (" (not in git)" if self._undeclared_alias() else "")
        if not live:
            return f"{join(git)} (missing live)"
        if not git:
            return f"{join(live)} ({'git: not routed' if self.in_git else 'not in git'})"
        if not self.differs:
            return join(live) + (" (not in git)" if self._undeclared_alias() else "")
        first = next((i for i, (a, b) in enumerate(zip(live, git, strict=False)) if a != b), min(len(live), len(git)))
        return f"{join(live)} (git: {join(git[first:]) or 'nothing more'})"

    def _undeclared_alias(self) -> bool:
        return self.git_chain is not None and not self.git_chain.declared

    def columns(self, which: Which = "both") -> tuple[str, str, str]:
        """(route, live, git) as a table shows them: the chain after the entry up to the alias
        (live's, else git's), then what each side serves there, or its own chain from the first
        hop that differs, or why it has none."""
        # A stage entry is its chain's first hop, as the entry's own hop is a domain's.
        live, git = self.hops("live")[1:], self.hops("desired")[1:]
        shown = live if which != "desired" and live else git
        path = [h for h in shown if h.step not in ("versions", "problem")]
        git_text = _outcome(git, path, "not routed" if self.in_git else "not in git")
        if git and self._undeclared_alias():
            git_text = "not in git"
        return join(path), _outcome(live, path, "missing"), git_text

    def as_dict(self, which: Which = "both") -> dict[str, Any]:
        """Stable keys, whatever the route: what ``render_json`` and the status page show."""
        chain, live_text, desired_text = self.columns(which)
        return {
            "entry": self.entry,
            "entry_kind": "domain" if self.domain else "stage",
            "methods": list(self.methods),
            "api": self.api,
            "stage": self.stage,
            "variable": self.variable,
            "value": self.value,
            "selector": self.selector,
            "function": self.function,
            "alias": self.alias,
            "live": _versions_json(self.live),
            "desired": _versions_json(self.desired),
            "differs": self.differs,
            "in_git": self.in_git,
            "text": self.describe(which),
            "chain": chain,
            "live_text": live_text,
            "desired_text": desired_text,
            "live_chain": self.live_chain.as_dict() if self.live_chain is not None else None,
            "git_chain": self.git_chain.as_dict() if self.git_chain is not None else None,
        }


def _agree(live: Chain, git: Chain) -> bool:
    """Would applying git leave this route's clients where they are? (Git's undeclared alias: no opinion.)"""
    same_path = (live.api, live.stage, live.function, live.variable, live.value, live.selector, live.alias) == (
        git.api,
        git.stage,
        git.function,
        git.variable,
        git.value,
        git.selector,
        git.alias,
    )
    if not same_path:
        return False
    if not git.declared:
        return True
    if live.versions is None or git.versions is None:
        return live.versions is None and git.versions is None and live.problem == git.problem
    return dict(live.versions) == dict(git.versions)


def describe_versions(versions: Versions) -> str:
    """``version 3``, ``$LATEST``, or ``version 3 (90%) + version 4 (10%)``."""

    def one(version: str) -> str:
        return f"version {version}" if version.isdigit() else version

    if len(versions) == 1:
        return one(versions[0][0])
    return " + ".join(f"{one(v)} ({percent(w)})" for v, w in versions)


def join(hops: Sequence[Hop]) -> str:
    """Hops as one line: ``a -> b``, a stage variable ``(x=y)``, a selector ``[h: v]``, a problem ``(p)``."""
    out = ""
    for i, hop in enumerate(hops):
        if i == 0:
            out = hop.text
        elif hop.step in ("variable", "problem"):
            out += f" ({hop.text})"
        elif hop.step == "selector":
            out += f" [{hop.text}]"
        else:
            out += f" -> {hop.text}"
    return out


def _versions_json(versions: Versions | None) -> list[dict[str, Any]] | None:
    return None if versions is None else [{"version": v, "weight": w} for v, w in versions]


# ---------------------------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    """One side of an entry: chains by integration key, or one ``blanket`` chain for every key
    (no such stage, no Lambda integration, routes unknown)."""

    keyed: dict[_Key, Chain]
    blanket: Chain | None = None


def _is_version(qualifier: str) -> bool:
    return qualifier == LATEST or qualifier.isdigit()


def _method(key: _Key) -> str:
    return f"{key[1]} {key[0]}"


class _Resolver:
    def __init__(self, spec: Spec, scope: Scope) -> None:
        self.spec = spec
        self.scope = scope

    # ---------------------------------------------------------------- shared reads

    def _live_stages(self, api_id: str) -> dict[str, dict[str, Any]]:
        try:
            return self.scope.stages(api_id)
        except AWS_ERRORS as exc:
            if error_code(exc) == "NotFoundException":  # the API is gone
                return {}
            raise

    def _alias_routes(self, api_id: str) -> list[AliasRoute]:
        return sorted(self.scope.alias_routes(api_id), key=lambda r: (r.path, r.method, r.function, r.variable))

    def _fixed_routes(self, api_id: str) -> list[tuple[str, str, str, str | None]]:
        """(path, method, function, qualifier or None) of Lambda integrations whose URI names
        the qualifier itself (an alias, a version, $LATEST) or none."""
        out: list[tuple[str, str, str, str | None]] = []
        for path, resource in sorted(self.scope.resources(api_id).items()):
            for method, body in sorted((resource.get("resourceMethods") or {}).items()):
                uri = str(((body or {}).get("methodIntegration") or {}).get("uri") or "")
                match = _FIXED_URI_RE.search(uri)
                if match is not None:
                    out.append((path, str(method), match[1], match[2]))
        return out

    def _versions_of(self, api_name: str) -> VersionsSpec | None:
        declared = self.spec.rest_apis.get(api_name)
        return declared.spec.versions if declared is not None else None

    @staticmethod
    def _behind(versions: VersionsSpec | None) -> dict[tuple[str, str], tuple[str, str]]:
        """http-proxy: (method, versioned path) -> (route path, version) of the routes behind the proxy."""
        if versions is None or versions.strategy != "http-proxy":
            return {}
        return {
            (route.method, versioning.versioned_path(route.path, version)): (route.path, version) for route in versions.routes for version in versions.catalogue
        }

    @staticmethod
    def _selector(versions: VersionsSpec | None, version: str, default: str) -> str:
        if versions is not None and versions.header is not None:
            text = f"{versions.header}: {version}"
        elif versions is not None and versions.media_type is not None:
            text = f"Accept: {versions.media_type}.{version}+json"
        else:
            text = f"version {version}"
        return f"{text} (default)" if version == default else text

    # ---------------------------------------------------------------- live

    def _live_alias(self, function: str, alias: str | None, *, unset: str = "") -> dict[str, Any]:
        """The versions an alias serves, or the problem a client meets: Lambda rejects an invoke of a
        missing function or alias, and API Gateway answers 500 (for an exposed version too)."""
        fn = self.scope.function(function)
        if fn is None:
            return {"problem": "no such function: clients get 500"}
        if alias is None:
            return {"problem": f"{unset} not set: clients get 500"}
        if _is_version(alias):
            return {"versions": ((alias, 1.0),)}
        item = fn.aliases.get(alias)
        if item is None:
            return {"problem": "no such alias: clients get 500"}
        additional = (item.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return {"versions": tuple(weighted(str(item.get("FunctionVersion")), additional).items())}

    def live_side(self, api_id: str, stage: str) -> _Side | None:
        """What the live stage routes to; None when there is no such stage (or API)."""
        item = self._live_stages(api_id).get(stage)
        if item is None:
            return None
        api = self.scope.api_name(api_id)
        variables: dict[str, str] = dict(item.get("variables") or {})
        versions = self._versions_of(api)
        exposed, default = versioning.stage_versions(variables), versioning.stage_default(variables)
        keyed: dict[_Key, Chain] = {}
        for route in self._alias_routes(api_id):
            if route.variable == VERSION_SELECTED:
                for version in exposed:
                    found = self._live_alias(route.function, version)
                    keyed[(route.path, route.method, version)] = Chain(
                        api, stage, route.function, selector=self._selector(versions, version, default), alias=version, **found
                    )
                continue
            value = variables.get(route.variable)
            found = self._live_alias(route.function, value, unset=f"stage variable {route.variable}")
            keyed[(route.path, route.method, "")] = Chain(api, stage, route.function, route.variable, value, alias=value, **found)
        behind = self._behind(versions)
        for path, method, function, qualifier in self._fixed_routes(api_id):
            if (method, path) in behind:
                route_path, version = behind[(method, path)]
                if version in exposed:
                    found = self._live_alias(function, qualifier, unset="alias")
                    selector = self._selector(versions, version, default)
                    keyed[(route_path, method, version)] = Chain(api, stage, function, selector=selector, alias=qualifier, **found)
                continue
            found = {"versions": ((LATEST, 1.0),)} if qualifier is None else self._live_alias(function, qualifier)
            keyed[(path, method, "")] = Chain(api, stage, function, alias=qualifier, **found)
        if not keyed:
            return _Side({}, Chain(api, stage, problem="no Lambda integration"))
        return _Side(keyed)

    # ---------------------------------------------------------------- git

    def _git_alias(self, function: str, alias: str | None, *, unset: str = "") -> dict[str, Any]:
        if alias is None:
            return {"problem": f"{unset} not set: clients get 500"}
        declared = self.spec.functions.get(function)
        pin = declared.spec.aliases.get(alias) if declared is not None else None
        if pin is None:
            if _is_version(alias):
                return {"versions": ((alias, 1.0),)}
            return {"declared": False}
        versions, _ = pinned_versions(pin.version, pin.routing, self.scope.function(function))
        return {"versions": tuple(versions.items())}

    def git_side(self, api: str, stage: str) -> _Side | None:
        """What git routes the stage to; None when git does not declare the stage."""
        declared = self.spec.rest_apis.get(api)
        if declared is None or stage not in declared.spec.stages:
            return None
        variables: dict[str, str] = dict(declared.spec.stages[stage].variables)
        versions: VersionsSpec | None = declared.spec.versions
        api_id = self.scope.unique_api_ids([api]).get(api)
        managed = {(r.method, r.path) for r in versions.routes} if versions is not None else set()
        behind = self._behind(versions)
        keyed: dict[_Key, Chain] = {}
        if api_id is not None:
            # The integrations git does not describe are the live ones (as the plan derives them).
            for route in self._alias_routes(api_id):
                if route.variable == VERSION_SELECTED or (route.method, route.path) in managed:
                    continue
                value = variables.get(route.variable)
                found = self._git_alias(route.function, value, unset=f"stage variable {route.variable}")
                keyed[(route.path, route.method, "")] = Chain(api, stage, route.function, route.variable, value, alias=value, **found)
            for path, method, function, qualifier in self._fixed_routes(api_id):
                if (method, path) in managed or (method, path) in behind:
                    continue
                found = {"versions": ((LATEST, 1.0),)} if qualifier is None else self._git_alias(function, qualifier)
                keyed[(path, method, "")] = Chain(api, stage, function, alias=qualifier, **found)
        if versions is not None:
            for vroute in versions.routes:
                for version in versions.exposed(stage):
                    selector = self._selector(versions, version, versions.default)
                    found = self._git_alias(vroute.function, version)
                    keyed[(vroute.path, vroute.method, version)] = Chain(api, stage, vroute.function, selector=selector, alias=version, **found)
        if not keyed:
            problem = "no Lambda integration" if api_id is not None else f"routes unknown: no REST API {api} live"
            return _Side({}, Chain(api, stage, problem=problem))
        return _Side(keyed)

    # ---------------------------------------------------------------- entries

    def entry_routes(self, entry: str, domain: bool, live: _Side | None, git: _Side | None, in_git: bool) -> list[Route]:
        live_keyed = live.keyed if live is not None else {}
        git_keyed = git.keyed if git is not None else {}
        keys = list(git_keyed) + [k for k in live_keyed if k not in git_keyed]
        pairs: list[tuple[_Key | None, Chain | None, Chain | None]] = []
        for each in keys:
            left = live_keyed.get(each) or (live.blanket if live is not None and not live_keyed else None)
            right = git_keyed.get(each) or (git.blanket if git is not None and not git_keyed else None)
            pairs.append((each, left, right))
        if not keys and (live is not None or git is not None):
            pairs.append((None, live.blanket if live else None, git.blanket if git else None))
        grouped: dict[tuple[Chain | None, Chain | None], list[str]] = {}
        for key, left, right in pairs:
            if left is None and right is None:
                continue
            methods = grouped.setdefault((left, right), [])
            if key is not None and _method(key) not in methods:
                methods.append(_method(key))
        return [Route.of(entry, domain, methods, left, right, in_git) for (left, right), methods in grouped.items()]

    def domain_routes(self) -> list[Route]:
        out: list[Route] = []
        for domain, declared in self.spec.domains.items():
            live_mappings = self.scope.mappings(domain)
            wanted = declared.spec.mappings
            base_paths = list(wanted) + sorted(set(live_mappings or {}) - set(wanted))
            for base_path in base_paths:
                entry = domain if base_path == NO_BASE_PATH else f"{domain}/{base_path}"
                live: _Side | None = None
                item = (live_mappings or {}).get(base_path)
                if item is not None:
                    api_id, stage = str(item.get("restApiId") or ""), str(item.get("stage") or "")
                    live = self.live_side(api_id, stage) or _Side({}, Chain(self.scope.api_name(api_id), stage, problem="no such stage: clients get 403"))
                mapping = wanted.get(base_path)
                git = self.git_side(mapping.api, mapping.stage) if mapping is not None else None
                out.extend(self.entry_routes(entry, True, live, git, mapping is not None))
        return out

    def stage_routes(self) -> list[Route]:
        out: list[Route] = []
        for api, declared in self.spec.rest_apis.items():
            api_id = self.scope.unique_api_ids([api]).get(api)
            live_stages = self._live_stages(api_id) if api_id is not None else {}
            wanted = declared.spec.stages
            for stage in list(wanted) + sorted(set(live_stages) - set(wanted)):
                live = self.live_side(api_id, stage) if api_id is not None else None
                git = self.git_side(api, stage)
                out.extend(self.entry_routes(f"{api}/{stage}", False, live, git, stage in wanted))
        return out


def _prefetch(spec: Spec, scope: Scope) -> None:
    """The reads the view needs, every quota bucket busy at once (as ``engine.observe``, without
    the policies and versions a plan reads): APIs, their stages and integrations, the functions
    those route to and the declared ones, the declared domains' mappings."""
    lanes = scope.lanes()
    asked: set[str] = set()
    guard = threading.Lock()

    def function(name: str) -> None:
        with guard:
            fresh = name not in asked
            asked.add(name)
        if fresh:
            lanes.submit("lambda.ListAliases", partial(scope.function, name))

    def found_routes(found: list[AliasRoute]) -> None:
        for route in found:
            function(route.function)

    def found_apis(_: object) -> None:
        for api_id in scope.unique_api_ids(spec.rest_apis).values():
            lanes.submit("apigateway.GetStages", partial(scope.stages, api_id))
            lanes.submit("apigateway.GetResources", partial(scope.alias_routes, api_id), found_routes)

    lanes.submit("apigateway.GetRestApis", scope.rest_api_ids, found_apis)
    for name in spec.functions:
        function(name)
    for domain in spec.domains:
        lanes.submit("apigateway.GetBasePathMappings", partial(scope.mappings, domain))
    lanes.wait()


def route_rows(spec: Spec, scope: Scope) -> list[dict[str, Any]]:
    """``routes`` as JSON-ready rows (``Route.as_dict``): for reports and the status page."""
    return [route.as_dict() for route in routes(spec, scope)]


def routes(spec: Spec, scope: Scope) -> list[Route]:
    """Every route of the spec's domains (base path mappings) and REST API stages, live and in
    git side by side: domains first, then stages, each in spec order (live-only ones after)."""
    _prefetch(spec, scope)
    resolver = _Resolver(spec, scope)
    return resolver.domain_routes() + resolver.stage_routes()


def _outcome(hops: Sequence[Hop], path: Sequence[Hop], absent: str) -> str:
    """A side's cell (``hops`` after the entry): its versions (or problem) where it takes the
    row's route, else its own chain from the first hop that differs."""
    if not hops:
        return absent
    own = list(hops)
    if [h for h in own if h.step not in ("versions", "problem")] == list(path):
        return "; ".join(h.text for h in own if h.step in ("versions", "problem")) or " "
    first = next((i for i, (a, b) in enumerate(zip(own, path, strict=False)) if a != b), min(len(own), len(path)))
    return join(own[first:])
