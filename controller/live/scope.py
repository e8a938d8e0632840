"""Live observation of the managed scope, read once per reconcile and cached.

Only what the spec manages is read: the declared functions (and those that integrations
of managed stages route to), the declared REST APIs, the declared domains. Every read is
paginated, goes through the counting client factory, and is made at most once per run.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from controller.aws.clients import AwsClients, error_code, expects_shapes
from controller.sensitive import Sensitive, seal

T = TypeVar("T")
SSM_BATCH = 10  # names per GetParameters call, the most it takes

# ...functions/arn:aws:lambda:REGION:ACCOUNT:function:NAME:${stageVariables.X}/invocations
_ALIAS_URI_RE = re.compile(r"function:([A-Za-z0-9_-]+):\$\{stageVariables\.([A-Za-z0-9_]+)\}")
# ...function:NAME:{alias}/invocations: the alias chosen per request (API versions).
_VERSION_URI_RE = re.compile(r"function:([A-Za-z0-9_-]+):\{alias\}/invocations")
VERSION_SELECTED = "{alias}"  # AliasRoute.variable of an integration whose alias a version template chooses
_FUNCTION_ARN_RE = re.compile(r"^arn:(?P<partition>[^:]+):lambda:(?P<region>[^:]+):(?P<account>\d+):function:")


@dataclass(frozen=True)
class FunctionVersions:
    """What ListVersionsByFunction says of a function: read only when a plan needs it."""

    arn: str  # unqualified
    latest_sha: str
    versions: dict[str, str]  # published version -> CodeSha256
    # Environment.Variables of $LATEST, and of each published version: values never held as text.
    latest_environment: dict[str, Sensitive] = field(default_factory=dict)
    version_environments: dict[str, dict[str, Sensitive]] = field(default_factory=dict)


# What the plan, import and explain read of a ListAliases item (AliasArn and Name are what
# the function's ARN and the mapping's key are made of); a run keeps only these. The first two
# repeat across aliases and functions: one string each.
ALIAS_FIELDS = ("FunctionVersion", "Description", "RoutingConfig", "RevisionId")
_ALIAS_FIELDS_INTERNED = frozenset(("FunctionVersion", "Description"))
# The condition operators that may carry an AWS:SourceArn, in the order they are looked at.
SOURCE_ARN_OPERATORS = ("ArnLike", "ArnEquals", "StringLike", "StringEquals")


@dataclass(frozen=True, slots=True)
class PolicyStatement:
    """One statement of an alias's resource policy: only what the permissions compare, parsed once.

    A run keeps one per alias policy statement (30,000 at 10,000 functions), so it holds no more
    than ``covers``, ``own_api_id`` and the reports read: its id, effect, principal and action as
    the policy gives them (shared between statements that say the same), and the SourceArn of its
    condition (the first of ``SOURCE_ARN_OPERATORS`` that names one; None when none does)."""

    sid: str | None
    effect: str
    principal: Any  # "*", {"Service": ...} or {"AWS": ...}, as in the policy
    action: Any  # a string or a list of them, as in the policy
    source_arn: str | None

    @classmethod
    def parse(cls, statement: Mapping[str, Any], shared: dict[str, Any] | None = None) -> PolicyStatement:
        """From a statement of a policy document (``json.loads(GetPolicy's Policy)["Statement"]``);
        ``shared`` (by canonical JSON) makes equal principals and actions one object."""
        condition = statement.get("Condition") or {}
        source_arn = next((value for op in SOURCE_ARN_OPERATORS if (value := (condition.get(op) or {}).get("AWS:SourceArn"))), None)
        sid = statement.get("Sid")
        return cls(
            sid=_interned(sid),
            effect=_interned(statement.get("Effect", "Allow")),
            principal=_shared(statement.get("Principal"), shared),
            action=_shared(statement.get("Action"), shared),
            source_arn=_interned(source_arn),
        )


def _interned(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def _shared(value: Any, shared: dict[str, Any] | None) -> Any:
    if shared is None or isinstance(value, str | None):
        return _interned(value)
    key = json.dumps(value, sort_keys=True)
    return shared.setdefault(key, value)


class FunctionLive:
    """A live function: its aliases (ListAliases), and its published versions on demand.

    Reading the versions (ListVersionsByFunction, paged, from Lambda's 15 requests/s) is
    the costly part of a function and most plans do not need it: an alias that already
    serves its declared version proves that version exists. The versions are read the
    first time ``versions``, ``latest_sha`` or an environment is asked for.
    """

    def __init__(self, name: str, aliases: dict[str, dict[str, Any]], details: Callable[[], FunctionVersions]) -> None:
        self.name = name
        self._details = details
        arn = next((str(a["AliasArn"]).rsplit(":", 1)[0] for a in aliases.values() if a.get("AliasArn")), "")
        if arn and not _FUNCTION_ARN_RE.match(arn):
            raise ValueError(f"unexpected alias ARN {arn!r} for {name}")
        self._arn = arn
        # Only the fields an alias is compared on (ALIAS_FIELDS), with their repeated strings shared.
        self.aliases: dict[str, dict[str, Any]] = {
            sys.intern(alias): {key: _interned(item[key]) if key in _ALIAS_FIELDS_INTERNED else item[key] for key in ALIAS_FIELDS if key in item}
            for alias, item in aliases.items()
        }

    @property
    def arn(self) -> str:
        """The unqualified function ARN (from an alias ARN, else from the versions)."""
        return self._arn or self._details().arn

    def _arn_part(self, part: str) -> str:
        match = _FUNCTION_ARN_RE.match(self.arn)
        assert match is not None  # checked where the ARN was read
        return match[part]

    @property
    def partition(self) -> str:
        return self._arn_part("partition")

    @property
    def region(self) -> str:
        return self._arn_part("region")

    @property
    def account(self) -> str:
        return self._arn_part("account")

    @property
    def latest_sha(self) -> str:
        return self._details().latest_sha

    @property
    def versions(self) -> dict[str, str]:
        return self._details().versions

    @property
    def latest_environment(self) -> dict[str, Sensitive]:
        return self._details().latest_environment

    @property
    def version_environments(self) -> dict[str, dict[str, Sensitive]]:
        return self._details().version_environments

    def alias_arn(self, alias: str) -> str:
        return f"{self.arn}:{alias}"

    def serving(self, alias: str) -> set[str]:
        """The versions live ``alias`` serves now (primary and weighted): they exist, since
        Lambda keeps a version an alias uses, with no need to read the versions."""
        item = self.aliases.get(alias)
        if item is None:
            return set()
        weights = (item.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return {str(item.get("FunctionVersion"))} | {str(v) for v in weights}

    def published_with_sha(self, sha: str) -> str | None:
        matches = [v for v, s in self.versions.items() if s == sha]
        return max(matches, key=int) if matches else None

    def published_with(self, sha: str, environment: Mapping[str, Sensitive] | None) -> str | None:
        """The newest published version with this code and, unless ``environment`` is None
        (not managed), exactly these environment variables."""
        if environment is None:
            return self.published_with_sha(sha)
        matches = [v for v, s in self.versions.items() if s == sha and self.version_environments.get(v, {}) == environment]
        return max(matches, key=int) if matches else None


@dataclass(frozen=True)
class AliasRoute:
    """An integration whose URI selects a function alias through a stage variable."""

    function: str
    variable: str
    method: str
    path: str


class Lanes:
    """Reads grouped by the quota bucket they draw from, each lane with its own workers.

    A lane's workers wait for their bucket's tokens (see ``controller.aws.ratelimit``), so a
    slow bucket (GetPolicy at 15/s) never holds up the reads of another (GetResources,
    ListAliases): every bucket is kept busy from the start, and a scan takes as long as its
    busiest bucket, not the sum of them. A job may submit follow-up jobs (the policies of
    the aliases a ListAliases found). The first error stops the work not yet started and
    is raised by ``wait``.
    """

    def __init__(self, concurrency: int, lane_of: Callable[[str], str] = lambda operation: operation) -> None:
        self._concurrency = max(1, concurrency)
        self._lane_of = lane_of
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pending = 0
        self._done = threading.Condition()
        self._error: BaseException | None = None

    def submit(self, operation: str, job: Callable[[], T], then: Callable[[T], Any] | None = None) -> None:
        """Run ``job`` (whose first call is ``service.Operation``) in that operation's lane,
        then ``then(result)`` (which may submit more)."""
        lane = self._lane_of(operation)
        with self._done:
            if self._error is not None:
                return
            self._pending += 1
            pool = self._pools.get(lane)
            if pool is None:
                pool = self._pools[lane] = ThreadPoolExecutor(self._concurrency, thread_name_prefix=f"read-{lane}")
        pool.submit(self._run, job, then)

    def _run(self, job: Callable[[], T], then: Callable[[T], Any] | None) -> None:
        try:
            if self._error is None:
                value = job()
                if then is not None and self._error is None:
                    then(value)
        except BaseException as exc:  # noqa: BLE001 - handed to wait(), which raises it
            with self._done:
                if self._error is None:
                    self._error = exc
        finally:
            with self._done:
                self._pending -= 1
                if self._pending == 0:
                    self._done.notify_all()

    def wait(self) -> None:
        """Until every job (and what they submitted) is done; the first error is raised."""
        with self._done:
            while self._pending:
                self._done.wait()
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True)
        if self._error is not None:
            raise self._error


@dataclass
class Scope:
    clients: AwsClients
    concurrency: int = 8
    _cache: dict[tuple[str, ...], Any] = field(default_factory=dict)
    _locks: dict[tuple[str, ...], threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _ever: set[tuple[str, ...]] = field(default_factory=set)  # every key read, forgotten since or not
    _rest_api_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> GetRestApis item
    _function_arns: dict[str, str] = field(default_factory=dict)  # name -> ARN, from ListFunctions
    _domain_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> GetDomainNames item
    _parameter_batches: dict[str, tuple[str, ...]] = field(default_factory=dict)  # SSM name -> the key of the batch that read it
    _policy_values: dict[str, Any] = field(default_factory=dict)  # equal policy principals and actions, one object each

    # ------------------------------------------------------------------ plumbing

    def _memo(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        with self._guard:
            if key in self._cache:
                return self._cache[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._cache:
                    return self._cache[key]
            value = load()
            with self._guard:
                self._cache[key] = value
                self._ever.add(key)
                # The value answers from now on: the lock only kept concurrent first reads to one.
                if self._locks.get(key) is lock:
                    del self._locks[key]
            return value

    def lanes(self) -> Lanes:
        """A set of read lanes, one per quota bucket of these clients' rate limiter."""
        limiter = self.clients.rate_limiter

        def lane_of(operation: str) -> str:
            service, _, name = operation.partition(".")
            buckets = limiter.buckets_for(service, name) if limiter is not None else []
            return buckets[0].name if buckets else operation

        return Lanes(self.concurrency, lane_of)

    def was_read(self, key: tuple[str, ...]) -> bool:
        """Was this read made in this scope (whether remembered still or forgotten since)?"""
        with self._guard:
            return tuple(key) in self._ever

    def forget_writes(self, calls: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """After an apply: forget the reads the written resources were seen through, from
        each ``(service, params)`` call (FunctionName, restApiId, domainName)."""
        keys: list[tuple[str, ...]] = []
        for service, params in calls:
            function = params.get("FunctionName")
            if service == "lambda" and isinstance(function, str):
                qualifier = params.get("Qualifier") or params.get("Name")
                keys += [("function", function), ("versions", function)]
                if isinstance(qualifier, str):
                    keys.append(("policy", function, qualifier))
            api_id = params.get("restApiId")
            if isinstance(api_id, str):
                keys += [("stages", api_id), ("resources", api_id), ("routes", api_id), ("deployments", api_id)]
            domain = params.get("domainName")
            if isinstance(domain, str):
                keys.append(("mappings", domain))
            if service == "apigateway" and params.get("cloneFrom") is not None:
                keys.append(("rest_apis",))
        self.invalidate(keys)

    def invalidate(self, keys: Iterable[tuple[str, ...]]) -> None:
        """Forget these reads (``("function", F)``, ``("policy", F, A)``, ``("stages", API_ID)``...):
        the next use reads them again; everything else stays as read."""
        with self._guard:
            for key in keys:
                self._cache.pop(tuple(key), None)

    # ------------------------------------------------------------------ lambda

    def function(self, name: str) -> FunctionLive | None:
        """The function's aliases (one ListAliases), or None when it does not exist."""
        return self._memo(("function", name), lambda: self._load_function(name))

    @expects_shapes
    def _load_function(self, name: str) -> FunctionLive | None:
        aliases: dict[str, dict[str, Any]] = {}
        try:
            for page in self.clients.lambda_.get_paginator("list_aliases").paginate(FunctionName=name, PaginationConfig={"PageSize": 10000}):
                for item in page.get("Aliases", []):
                    aliases[item["Name"]] = item
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return FunctionLive(name, aliases, lambda: self.function_versions(name))

    def function_names(self) -> list[str]:
        """Every function in the region (ListFunctions), sorted: for ``pointsman import``."""
        return self._memo(("function_names",), self._load_function_names)

    @expects_shapes
    def _load_function_names(self) -> list[str]:
        names: list[str] = []
        arns: dict[str, str] = {}
        for page in self.clients.lambda_.get_paginator("list_functions").paginate():
            for item in page.get("Functions", []):
                names.append(str(item["FunctionName"]))
                arns[str(item["FunctionName"])] = str(item.get("FunctionArn") or "")
        with self._guard:
            self._function_arns = arns
        return sorted(set(names))

    def function_tags(self, name: str) -> dict[str, str]:
        """A function's tags (ListTags on the ARN ListFunctions gave): for ``import --tag``."""
        self.function_names()
        arn = self._function_arns.get(name)
        if not arn:
            return {}
        return self._memo(
            ("function_tags", name), lambda: {str(k): str(v) for k, v in (self.clients.lambda_.list_tags(Resource=arn).get("Tags") or {}).items()}
        )

    def function_versions(self, name: str) -> FunctionVersions:
        """Published versions, $LATEST's code and every environment: ListVersionsByFunction."""
        return self._memo(("versions", name), lambda: self._load_versions(name))

    @expects_shapes
    def _load_versions(self, name: str) -> FunctionVersions:
        versions: dict[str, str] = {}
        environments: dict[str, dict[str, Sensitive]] = {}  # $LATEST and each published version
        latest_sha = ""
        arn = ""
        pages = self.clients.lambda_.get_paginator("list_versions_by_function").paginate(FunctionName=name, PaginationConfig={"PageSize": 10000})
        for page in pages:
            for item in page.get("Versions", []):
                environments[item["Version"]] = seal((item.get("Environment") or {}).get("Variables") or {})
                if item["Version"] == "$LATEST":
                    latest_sha = item.get("CodeSha256", "")
                    arn = item["FunctionArn"]
                else:
                    versions[item["Version"]] = item.get("CodeSha256", "")
        arn = re.sub(r":\$LATEST$", "", arn)
        if not _FUNCTION_ARN_RE.match(arn):
            raise ValueError(f"unexpected function ARN {arn!r} for {name}")
        return FunctionVersions(
            arn=arn,
            latest_sha=latest_sha,
            versions=versions,
            latest_environment=environments.pop("$LATEST", {}),
            version_environments=environments,
        )

    # ------------------------------------------------------------------ ssm

    def parameters(self, names: Iterable[str]) -> dict[str, Sensitive | None]:
        """Values of SSM parameters (SecureString decrypted), None for one that does not exist.

        GetParameters takes up to ``SSM_BATCH`` names a call; each batch is read once (the
        sorted names cut the same way every time, so ``observe`` and the plan share them).
        A value never leaves as text: it is a ``Sensitive``, which prints as its digest."""
        out: dict[str, Sensitive | None] = {}
        wanted: list[str] = []
        with self._guard:  # a name some earlier batch read (a focused run asks for fewer names)
            for name in sorted(set(names)):
                batch = self._parameter_batches.get(name)
                if batch is not None and batch in self._cache:
                    out[name] = self._cache[batch][name]
                else:
                    wanted.append(name)
        for start in range(0, len(wanted), SSM_BATCH):
            batch = tuple(wanted[start : start + SSM_BATCH])
            out.update(self._memo(("parameters", *batch), partial(self._load_parameters, batch)))
        return out

    @expects_shapes
    def _load_parameters(self, names: tuple[str, ...]) -> dict[str, Sensitive | None]:
        answer = self.clients.client("ssm").get_parameters(Names=list(names), WithDecryption=True)
        found: dict[str, Sensitive | None] = dict.fromkeys(names)
        for item in answer.get("Parameters", []):
            # Asked by name, answered by name (an ARN would be answered by its ARN).
            name = item["Name"] if item["Name"] in found else item.get("ARN", item["Name"])
            found[name] = Sensitive(str(item["Value"]))
        with self._guard:
            for name in names:
                self._parameter_batches[name] = ("parameters", *names)
        return {name: found.get(name) for name in names}

    def policy_statements(self, function: str, alias: str) -> tuple[PolicyStatement, ...]:
        """Statements of the alias's resource policy (matched on Resource, which the alias ARN names).

        Only an alias that exists has a policy: the function's aliases (its ListAliases, read once)
        are asked first, and an alias they do not list, or one of a function that does not exist,
        answers [] without a GetPolicy. Once a write forgets the function's aliases (an alias created
        in this run), they are listed again, and the new alias's policy is read from AWS."""
        fn = self.function(function)
        if fn is None or alias not in fn.aliases:
            return ()
        return self._memo(("policy", function, alias), lambda: self._load_policy(function, alias))

    @expects_shapes
    def _load_policy(self, function: str, alias: str) -> tuple[PolicyStatement, ...]:
        # An alias without a policy, or deleted since its function's aliases were listed, is a 404.
        try:
            response = self.clients.lambda_.get_policy(FunctionName=function, Qualifier=alias)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return ()
            raise
        statements = json.loads(response.get("Policy") or "{}").get("Statement", [])
        target = f":function:{function}:{alias}"
        # One statement per id, as in AWS (an emulator may keep a re-added id twice).
        by_sid = {
            str(s.get("Sid", i)): s
            for i, s in enumerate(statements)
            if isinstance(s.get("Resource"), str) and s["Resource"].endswith(target) and _FUNCTION_ARN_RE.match(s["Resource"])
        }
        return tuple(PolicyStatement.parse(s, self._policy_values) for s in by_sid.values())

    # ------------------------------------------------------------------ API Gateway

    def rest_api_ids(self) -> dict[str, list[str]]:
        """Every REST API in the region: name -> ids (more than one id makes the name ambiguous)."""
        return self._memo(("rest_apis",), self._load_rest_apis)

    @expects_shapes
    def _load_rest_apis(self) -> dict[str, list[str]]:
        by_name: dict[str, list[str]] = {}
        items: dict[str, dict[str, Any]] = {}
        for page in self.clients.apigateway.get_paginator("get_rest_apis").paginate(PaginationConfig={"PageSize": 500}):
            for item in page.get("items", []):
                by_name.setdefault(item["name"], []).append(item["id"])
                items[item["id"]] = item
        with self._guard:
            self._rest_api_items = items
        return by_name

    def rest_api(self, api_id: str) -> dict[str, Any] | None:
        """The GetRestApis item of an API (``disableExecuteApiEndpoint``, ``endpointConfiguration``...)."""
        self.rest_api_ids()
        with self._guard:
            return self._rest_api_items.get(api_id)

    def unique_api_ids(self, names: Iterable[str]) -> dict[str, str]:
        """name -> id of each named REST API that exists exactly once (others are plan problems)."""
        wanted = set(names)
        return {name: ids[0] for name, ids in self.rest_api_ids().items() if name in wanted and len(ids) == 1}

    def api_name(self, api_id: str) -> str:
        for name, ids in self.rest_api_ids().items():
            if api_id in ids:
                return name
        return api_id

    def stages(self, api_id: str) -> dict[str, dict[str, Any]]:
        return self._memo(("stages", api_id), lambda: self._load_stages(api_id))

    @expects_shapes
    def _load_stages(self, api_id: str) -> dict[str, dict[str, Any]]:
        response = self.clients.apigateway.get_stages(restApiId=api_id)
        return {item["stageName"]: item for item in response.get("item", [])}

    def resources(self, api_id: str) -> dict[str, dict[str, Any]]:
        """The API's resources by path, each with its methods and their integrations."""
        return self._memo(("resources", api_id), lambda: self._load_resources(api_id))

    @expects_shapes
    def _load_resources(self, api_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        paginator = self.clients.apigateway.get_paginator("get_resources")
        for page in paginator.paginate(restApiId=api_id, embed=["methods"], PaginationConfig={"PageSize": 500}):
            for resource in page.get("items", []):
                out[resource.get("path", "")] = resource
        return out

    def alias_routes(self, api_id: str) -> list[AliasRoute]:
        """Integrations that select a function alias: by stage variable, or per request (versions)."""
        return self._memo(("routes", api_id), lambda: self._routes(api_id))

    def _routes(self, api_id: str) -> list[AliasRoute]:
        routes: list[AliasRoute] = []
        for path, resource in self.resources(api_id).items():
            for method, body in (resource.get("resourceMethods") or {}).items():
                uri = ((body or {}).get("methodIntegration") or {}).get("uri") or ""
                for fn, variable in _ALIAS_URI_RE.findall(uri):
                    routes.append(AliasRoute(fn, variable, method, path))
                for fn in _VERSION_URI_RE.findall(uri):
                    routes.append(AliasRoute(fn, VERSION_SELECTED, method, path))
        return routes

    def deployments(self, api_id: str) -> list[dict[str, Any]]:
        """The API's deployments, newest first."""
        return self._memo(("deployments", api_id), lambda: self._load_deployments(api_id))

    @expects_shapes
    def _load_deployments(self, api_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.clients.apigateway.get_paginator("get_deployments").paginate(restApiId=api_id, PaginationConfig={"PageSize": 500}):
            items.extend(page.get("items", []))
        items.sort(key=lambda item: str(item.get("createdDate") or ""), reverse=True)
        return items

    def newest_deployment(self, api_id: str) -> str | None:
        items = self.deployments(api_id)
        return str(items[0]["id"]) if items else None

    def domain_names(self) -> list[str]:
        """Every custom domain name in the region (GetDomainNames), sorted: for ``pointsman import``."""
        return self._memo(("domain_names",), self._load_domain_names)

    @expects_shapes
    def _load_domain_names(self) -> list[str]:
        names: list[str] = []
        items: dict[str, dict[str, Any]] = {}
        for page in self.clients.apigateway.get_paginator("get_domain_names").paginate(PaginationConfig={"PageSize": 500}):
            for item in page.get("items", []):
                names.append(str(item["domainName"]))
                items[str(item["domainName"])] = item
        with self._guard:
            self._domain_items = items
        return sorted(set(names))

    def domain_tags(self, name: str) -> dict[str, str]:
        """A custom domain's tags, as GetDomainNames gave them."""
        self.domain_names()
        return {str(k): str(v) for k, v in ((self._domain_items.get(name) or {}).get("tags") or {}).items()}

    def rest_api_tags(self, api_id: str) -> dict[str, str]:
        """A REST API's tags, as GetRestApis gave them."""
        return {str(k): str(v) for k, v in ((self.rest_api(api_id) or {}).get("tags") or {}).items()}

    def mappings(self, domain: str) -> dict[str, dict[str, Any]] | None:
        """Base path mappings of a custom domain, or None when the domain does not exist."""
        return self._memo(("mappings", domain), lambda: self._load_mappings(domain))

    @expects_shapes
    def _load_mappings(self, domain: str) -> dict[str, dict[str, Any]] | None:
        out: dict[str, dict[str, Any]] = {}
        try:
            for page in self.clients.apigateway.get_paginator("get_base_path_mappings").paginate(domainName=domain):
                for item in page.get("items", []):
                    out[item.get("basePath") or "(none)"] = item
        except Exception as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise
        return out
