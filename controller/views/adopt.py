"""``pointsman import``: write the spec of a live estate, reading AWS and writing nothing to it.

The layout (README "Adopting an existing estate"):

- ``<api>.yaml`` per REST API in scope: its stages (and its ``versions`` block, see
  :mod:`controller.views.adopt_versions`), and the functions only it routes to;
- ``functions.yaml``: the functions in scope that no imported API (or more than one) routes to;
- ``domains.yaml``: the custom domains in scope and their base path mappings.

Everything is sorted and the text depends only on what AWS holds, so a re-import gives the
same bytes. What the spec cannot say is left out, named in ``# not managed:`` comments in the
files and in the summary printed at the end.
"""

from __future__ import annotations

import fnmatch
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from controller.kinds.lambda_permission import covers, invoke_arn, own_api_id
from controller.live.scope import VERSION_SELECTED, AliasRoute, FunctionLive, PolicyStatement, Scope
from controller.views.adopt_versions import VERSION_VARIABLES, Found, NotImportable, recognise, versions_lines
from controller.views.yaml_text import comment, flow, scalar

FUNCTIONS_FILE = "functions.yaml"
DOMAINS_FILE = "domains.yaml"
_FILE_SAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


class AdoptError(Exception):
    """Bad input for import (a glob matching nothing, nothing in scope, --out unusable, a file in the way)."""


@dataclass(frozen=True)
class Scoping:
    """What to import: name globs for functions and APIs, domain names. All empty: everything."""

    functions: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # (key, value): functions, APIs and domains carrying every one

    @property
    def everything(self) -> bool:
        return not (self.functions or self.apis or self.domains or self.tags)


@dataclass
class Imported:
    """The files to write (name -> text) and what was left out, one line each, with why."""

    files: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- reading


def _matching(names: Iterable[str], globs: Sequence[str], what: str, flag: str) -> set[str]:
    names = list(names)
    found: set[str] = set()
    for glob in globs:
        hits = {n for n in names if fnmatch.fnmatchcase(n, glob)}
        if not hits:
            raise AdoptError(f"{flag} {glob!r} matches no {what}")
        found |= hits
    return found


@dataclass(frozen=True)
class _Invoke:
    """A stage's route to an alias: API Gateway invokes it with this stage, verb and path."""

    api_id: str
    stage: str
    method: str
    path: str


@dataclass
class _Api:
    name: str
    api_id: str
    stages: dict[str, dict[str, Any]]
    routes: list[AliasRoute]
    newest: str | None
    versions: Found | None = None

    def said(self, function: str) -> list[str]:
        """What this API's routes do with ``function``, one comment each."""
        out = [
            f"{self.name} routes {method} {path} to it via stage variable {variable}"
            for method, path, variable in sorted(
                {(r.method, r.path, r.variable) for r in self.routes if r.function == function and r.variable != VERSION_SELECTED}
            )
        ]
        if self.versions is not None:
            chosen = self.versions.selector.describe()
            for route in sorted(r for r in self.versions.routes if r.function == function):
                out.append(
                    f"{self.name} routes {route.method} {route.path} to it by {chosen}: its aliases {', '.join(self.versions.catalogue)} come from the versions catalogue"
                )
        return out

    def functions(self) -> set[str]:
        """The functions this API's routes name (stage-variable routes and versions)."""
        names = {r.function for r in self.routes if r.variable != VERSION_SELECTED}
        return names | ({r.function for r in self.versions.routes} if self.versions is not None else set())


def gather(
    scope: Scope, scoping: Scoping, *, observe: bool = False, environment: bool = False, progress: Callable[[str, int, int], None] | None = None
) -> Imported:
    """Read what the scope needs (reads only) and render the spec files. ``observe``: every
    function, API and domain is written ``manage: observe`` (reported, never written to).
    ``progress(what, done, total)``: told as each REST API, function and domain is read."""
    tell = progress or (lambda what, done, total: None)
    manage = ["    manage: observe"] if observe else []
    every_api = scope.rest_api_ids()
    every_function = scope.function_names()
    every_domain = scope.domain_names()
    all_of = scoping.everything
    function_names = set(every_function) if all_of else _matching(every_function, scoping.functions, "function", "--functions")
    by_id = {api_id: name for name, ids in every_api.items() for api_id in ids}
    api_globs = [glob for glob in scoping.apis if glob not in by_id or glob in every_api]
    api_names = set(every_api) if all_of else _matching(every_api, api_globs, "REST API", "--apis")
    api_names |= {by_id[glob] for glob in scoping.apis if glob in by_id and glob not in every_api}  # an API id
    if all_of:
        domain_names = set(every_domain)
    else:
        unknown = sorted(set(scoping.domains) - set(every_domain))
        if unknown:
            raise AdoptError(f"--domains {unknown[0]!r}: no such custom domain")
        domain_names = set(scoping.domains)
    if scoping.tags:
        wanted_tags = dict(scoping.tags)

        def tagged(tags: dict[str, str]) -> bool:
            return all(tags.get(k) == v for k, v in wanted_tags.items())

        by_tag = (
            {n for n in every_function if tagged(scope.function_tags(n))},
            {n for n, ids in every_api.items() if any(tagged(scope.rest_api_tags(i)) for i in ids)},
            {d for d in every_domain if tagged(scope.domain_tags(d))},
        )
        if not any(by_tag):
            shown = ", ".join(f"{k}={v}" for k, v in scoping.tags)
            raise AdoptError(f"--tag {shown}: no function, REST API or custom domain carries it")
        function_names, api_names, domain_names = function_names | by_tag[0], api_names | by_tag[1], domain_names | by_tag[2]
    if not (function_names or api_names or domain_names):
        raise AdoptError("nothing in scope: the account has no function, REST API or custom domain to import")

    left_out: list[str] = []
    notes: dict[str, list[str]] = {}  # file -> its `# not managed:` lines
    _read_ahead(scope, sorted(function_names), [every_api[n][0] for n in sorted(api_names) if len(every_api[n]) == 1], sorted(domain_names), tell)

    # REST APIs: the ones whose name is one id, and whose versions (if any) a spec reproduces.
    apis: dict[str, _Api] = {}
    versioned: dict[str, str] = {}  # api id -> name, of versioned APIs not imported
    held_back: dict[str, str] = {}  # function -> the versioned API not imported that routes to it
    for done, name in enumerate(sorted(api_names), 1):
        tell("REST APIs", done, len(api_names))
        ids = every_api[name]
        if len(ids) != 1:
            left_out.append(f"rest_api {name}: {len(ids)} REST APIs have this name (ids {', '.join(sorted(ids))}); a spec names one")
            continue
        api = _Api(name, ids[0], scope.stages(ids[0]), scope.alias_routes(ids[0]), None)
        try:
            api.versions = recognise(scope, name, api.api_id, api.stages)
        except NotImportable as exc:
            versioned[api.api_id] = name
            left_out.append(f"rest_api {name}: not imported: its versions cannot be written as a spec: {exc.reason}")
            for function in exc.functions:
                held_back.setdefault(function, name)
            continue
        if api.versions is not None:
            left_out.extend(f"rest_api {name}: {note}" for note in api.versions.notes)
        api.newest = scope.newest_deployment(api.api_id)
        apis[name] = api
    # The functions in scope: matched, and those the imported APIs route to.
    routed_by: dict[str, set[str]] = {}
    for api in apis.values():
        for function in api.functions():
            routed_by.setdefault(function, set()).add(api.name)
    wanted = sorted(function_names | set(routed_by))
    functions: dict[str, FunctionLive] = {}
    for done, name in enumerate(wanted, 1):
        tell("functions", done, len(wanted))
        if name in held_back:
            left_out.append(f"function {name}: not imported: REST API {held_back[name]}, not imported, picks its aliases per request (versions)")
            continue
        fn = scope.function(name)
        if fn is None:
            left_out.append(f"function {name}: an integration routes to it but it does not exist")
            continue
        functions[name] = fn
    imported_ids = {api.api_id: api.name for api in apis.values()}

    # Where each function is written: the file of the one API that routes to it, else functions.yaml.
    api_files = _api_files(sorted(apis))
    home: dict[str, str] = {}
    for name in functions:
        users = sorted(routed_by.get(name, ()))
        home[name] = api_files[users[0]] if len(users) == 1 else FUNCTIONS_FILE

    # Which (function, alias) the imported stages route to, and from where (the invoke ARNs they need).
    derived: dict[tuple[str, str], list[_Invoke]] = {}
    generated: set[tuple[str, str]] = set()  # (function, alias) a versions catalogue makes
    for api in apis.values():
        for stage_name, stage in api.stages.items():
            variables = stage.get("variables") or {}
            for route in api.routes:
                if route.variable in variables:
                    invoke = _Invoke(api.api_id, stage_name, route.method, route.path)
                    derived.setdefault((route.function, str(variables[route.variable])), []).append(invoke)
            found = api.versions
            if found is None:
                continue
            for version in found.exposed.get(stage_name, ()):
                for vroute in found.routes:
                    invoke = _Invoke(api.api_id, stage_name, vroute.method, found.invoked(vroute, version))
                    derived.setdefault((vroute.function, version), []).append(invoke)
        if api.versions is not None:
            generated |= api.versions.aliases
            notes.setdefault(api_files[api.name], []).extend(api.versions.notes)

    rendered_functions: dict[str, list[str]] = {}
    for name, fn in functions.items():
        lines = _function_lines(scope, name, fn, derived, imported_ids, versioned, generated, notes.setdefault(home[name], []), left_out)
        lines[1:1] = manage
        if environment:
            lines[1:1] = _environment_lines(name, fn, left_out)
        said = ["  " + comment(text) for api in apis.values() if home[name] == api_files[api.name] for text in api.said(name)]
        rendered_functions.setdefault(home[name], []).extend([*said, *lines])

    files: dict[str, list[str]] = {}
    for api_name, api in apis.items():
        file = api_files[api_name]
        body = ["rest_apis:", f"  {scalar(api_name)}:", *manage, "    stages:"]
        if not api.stages:
            body[-1] = "    stages: {}"
        for stage_name in sorted(api.stages):
            live_stage = api.stages[stage_name]
            entry: dict[str, Any] = {}
            variables = live_stage.get("variables") or {}
            if api.versions is not None:  # the versions block sets these
                variables = {k: v for k, v in variables.items() if k not in VERSION_VARIABLES}
            if variables:
                entry["variables"] = {k: str(variables[k]) for k in sorted(variables)}
            if live_stage.get("description"):
                entry["description"] = str(live_stage["description"])
            deployment = live_stage.get("deploymentId")
            # A versioned API's stages serve the deployment Pointsman makes: never pinned.
            pinned = deployment and api.newest and deployment != api.newest and api.versions is None
            if pinned:
                entry["deployment"] = str(deployment)
            line = f"      {scalar(stage_name)}: {flow(entry)}"
            if pinned:
                line += f"  # pinned: {api.newest} is the API's newest deployment"
            body.append(line)
        if api.versions is not None:
            body += versions_lines(api.versions)
        files[file] = body
    for file, function_lines in rendered_functions.items():
        files.setdefault(file, [])
        files[file] = ["functions:", *function_lines, *([""] if files[file] else []), *files[file]]

    # Domains: mappings to imported APIs; the others are named and left to whoever manages them.
    domain_lines: list[str] = []
    for done, domain in enumerate(sorted(domain_names), 1):
        tell("domains", done, len(domain_names))
        mappings = scope.mappings(domain) or {}
        kept: list[str] = []
        skipped: list[str] = []
        for base_path in sorted(mappings):
            item = mappings[base_path]
            api_id, stage_name = str(item.get("restApiId", "")), str(item.get("stage", ""))
            target = imported_ids.get(api_id)
            if target is not None and stage_name in apis[target].stages:
                kept.append(f"      {scalar(base_path)}: {flow({'api': target, 'stage': stage_name})}")
                continue
            why = "not imported (its versions)" if api_id in versioned else "not in scope"
            skipped.append(f"domain {domain} base path {base_path} -> {scope.api_name(api_id)} stage {stage_name or '(none)'}: the API is {why}")
        if not kept:
            left_out.append(f"domain {domain}: no base path maps to an imported API ({len(mappings)} mappings); not imported")
            continue
        notes.setdefault(DOMAINS_FILE, []).extend(skipped)
        left_out.extend(f"{line} (a plan reports it extra; --prune would delete it)" for line in skipped)
        domain_lines += [f"  {scalar(domain)}:", *manage, "    mappings:", *kept]
    if domain_lines:
        files[DOMAINS_FILE] = ["domains:", *domain_lines]

    out = Imported(left_out=left_out)
    header = comment("Written by `pointsman import` from the live account; edit freely.")
    for file in sorted(files):
        top = [header]
        top += [comment(f"not managed: {note}") for note in notes.get(file, [])]
        if file != DOMAINS_FILE and any(line.startswith("rest_apis:") for line in files[file]):
            top.append(comment("Invoke permissions are derived from the stages and integrations: not written."))
        out.files[file] = "\n".join([*top, *files[file]]) + "\n"
    for file, file_notes in sorted(notes.items()):
        if file_notes and file not in out.files:
            out.left_out.append(f"{file}: not written (nothing in it to manage)")
    return out


def _read_ahead(scope: Scope, functions: Sequence[str], api_ids: Sequence[str], domains: Sequence[str], tell: Callable[[str, int, int], None]) -> None:
    """Make the reads import needs at once, every quota bucket busy (as a plan observes): the
    functions' aliases then their policies, the APIs' stages, resources and deployments, then the
    aliases and policies of the functions their routes name, and the domains' mappings. The
    rendering after it reads them from the scope, in order. ``tell("AWS reads", done, total)``
    as each read ends (the total grows as listed aliases add their policies)."""
    lanes = scope.lanes()
    asked: set[str] = set()
    counts = [0, 0]  # done, total
    lock = threading.Lock()

    def submit(operation: str, job: Callable[[], Any], then: Callable[[Any], None] | None = None) -> None:
        with lock:
            counts[1] += 1

        def counted(value: Any) -> None:
            if then is not None:
                then(value)  # submits what it finds first, so the total never falls behind
            with lock:
                counts[0] += 1
                done, total = counts
            tell("AWS reads", done, total)

        lanes.submit(operation, job, counted)

    def function(name: str) -> None:
        if name not in asked:
            asked.add(name)
            submit("lambda.ListAliases", partial(scope.function, name), partial(found_function, name))

    def found_function(name: str, fn: FunctionLive | None) -> None:
        for alias in fn.aliases if fn is not None else ():
            submit("lambda.GetPolicy", partial(scope.policy_statements, name, alias))

    def found_routes(routes: list[AliasRoute]) -> None:
        for route in routes:
            function(route.function)

    for name in functions:
        function(name)
    for api_id in api_ids:
        submit("apigateway.GetStages", partial(scope.stages, api_id))
        submit("apigateway.GetResources", partial(scope.alias_routes, api_id), found_routes)
        submit("apigateway.GetDeployments", partial(scope.newest_deployment, api_id))
    for domain in domains:
        submit("apigateway.GetBasePathMappings", partial(scope.mappings, domain))
    lanes.wait()


def _api_files(names: Sequence[str]) -> dict[str, str]:
    """A file per API, named after it (made safe), never one of the shared files or another's."""
    taken = {FUNCTIONS_FILE, DOMAINS_FILE}
    out: dict[str, str] = {}
    for name in names:
        stem = _FILE_SAFE_RE.sub("-", name).strip(".-") or "api"
        file, n = f"{stem}.yaml", 2
        while file in taken:
            file, n = f"{stem}-{n}.yaml", n + 1
        taken.add(file)
        out[name] = file
    return out


SSM_PLACEHOLDER = "/pointsman/import/{function}/{name}"


def _environment_lines(name: str, fn: FunctionLive, left_out: list[str]) -> list[str]:
    """$LATEST's environment, no value written: each is a Parameter Store reference to create
    (or to replace with the parameter that holds it). Until it exists, a plan stops at that line
    with "missing parameter", so nothing is applied with a placeholder."""
    variables = fn.latest_environment
    if not variables:
        return ["    environment: {}"]
    lines = ["    environment:  " + comment("values not written: create these SSM parameters, or point each at the one that holds it")]
    for key in sorted(variables):
        lines.append(f"      {scalar(key)}: {flow({'ssm': SSM_PLACEHOLDER.format(function=name, name=key)})}")
    left_out.append(
        f"function {name} environment: {len(variables)} values not written; each is a Parameter Store reference "
        f"to fill in ({SSM_PLACEHOLDER.format(function=name, name='NAME')})"
    )
    return lines


def _function_lines(
    scope: Scope,
    name: str,
    fn: FunctionLive,
    derived: dict[tuple[str, str], list[_Invoke]],
    imported: dict[str, str],
    versioned: dict[str, str],
    generated: set[tuple[str, str]],
    notes: list[str],
    left_out: list[str],
) -> list[str]:
    lines = [f"  {scalar(name)}:"]
    own = [alias for alias in sorted(fn.aliases) if (name, alias) not in generated]
    lines.append("    aliases:" if own else "    aliases: {}")
    for alias in sorted(fn.aliases):
        if alias in own:  # the others are written by their API's versions catalogue
            item = fn.aliases[alias]
            entry: dict[str, Any] = {"version": str(item.get("FunctionVersion"))}
            if item.get("Description"):
                entry["description"] = str(item["Description"])
            weights = (item.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            if weights:
                entry["routing"] = {str(v): float(w) for v, w in sorted(weights.items())}
            lines.append(f"      {scalar(alias)}: {flow(entry)}")
        for statement in scope.policy_statements(name, alias):
            why = _unmanaged_statement(scope, fn, statement, derived.get((name, alias), []), imported, versioned)
            if why is not None:
                line = f"permission {'(no id)' if statement.sid is None else statement.sid} on {name}:{alias}: {why}"
                notes.append(line)
                left_out.append(line)
    return lines


def _unmanaged_statement(
    scope: Scope,
    fn: FunctionLive,
    statement: PolicyStatement,
    routes: list[_Invoke],
    imported: dict[str, str],
    versioned: dict[str, str],
) -> str | None:
    """None when the statement is one Pointsman derives, or one that covers a stage or a route an
    imported stage sends to the alias (the plan counts those); else why not."""
    own = own_api_id(statement)
    if own is not None:
        if own in imported:
            return None
        api = versioned.get(own) or scope.api_name(own)
        return f"Pointsman's statement for REST API {api}, which is not imported (a plan reports it extra)"
    for route in routes:
        stage_arn = f"arn:{fn.partition}:execute-api:{fn.region}:{fn.account}:{route.api_id}/{route.stage}/*/*"
        route_arn = invoke_arn(fn.partition, fn.region, fn.account, route.api_id, route.stage, route.method, route.path)
        if covers(statement, stage_arn) or covers(statement, route_arn):
            return None
    principal = statement.principal
    service = principal.get("Service", principal.get("AWS")) if isinstance(principal, dict) else principal
    return f"lets {service} invoke it, which no imported stage derives"


# ---------------------------------------------------------------------------- writing


def check_out_dir(out: Path) -> None:
    """--out is a directory that exists and can be written, or one that can be made."""
    if out.exists():
        if not out.is_dir():
            raise AdoptError(f"--out {out}: not a directory")
        if not os.access(out, os.W_OK | os.X_OK):
            raise AdoptError(f"--out {out}: not writable")
        return
    parent = next((p for p in out.parents if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise AdoptError(f"--out {out}: cannot be created ({parent} is not writable)")


def write(out: Path, imported: Imported, *, force: bool = False) -> list[Path]:
    """Write every file, or none: an existing one without ``force`` stops it before any write."""
    check_out_dir(out)
    targets = [out / name for name in sorted(imported.files)]
    if not force:
        there = [t for t in targets if t.exists() or t.is_symlink()]
        if there:
            more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
            raise AdoptError(f"{there[0]} exists{more}; pass --force to overwrite")
    for target in targets:
        if target.is_dir():
            raise AdoptError(f"{target} is a directory")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for target in targets:
        temporary = target.with_name(f".{target.name}.import-tmp")
        temporary.write_text(imported.files[target.name], encoding="utf-8")
        os.replace(temporary, target)
        written.append(target)
    return written


def summary(imported: Imported, written: Sequence[Path]) -> str:
    lines = [f"wrote {path}" for path in written]
    if imported.left_out:
        lines.append(f"left out ({len(imported.left_out)}):")
        lines += [f"  {line}" for line in imported.left_out]
    else:
        lines.append("nothing left out")
    return "\n".join(lines)
