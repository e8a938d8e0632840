"""Benchmark: Pointsman at scale behind a proxy that throttles like AWS.

Figures, not pass/fail. moto's server (127.0.0.1) holds an estate of N functions (3 published
versions, aliases prod -> 2, dev -> $LATEST, canary -> 3), N/10 REST APIs (10 resources each
routed to 10 distinct functions through ``${stageVariables.lambdaAlias}``; stages prod, dev,
canary; one deployment) and 20 custom domains of 5 base path mappings each. The estate is
seeded straight into moto, converged once by ``pointsman apply`` without pacing, and then each
scenario runs the real ``pointsman`` command against ``benchmarks/quota_proxy.py``: AWS's
quotas enforced (HTTP 429 past a bucket), AWS's round trip added, and Pointsman pacing itself
as it does against AWS.

Scenarios: a converged plan, an apply of 1% drift, ``pointsman import`` of the whole estate
(reads only; its minimum adds the listings that find what exists), and a plan of the estate's
spec with 10,000 aliases more, spread over its functions and not created yet (a first apply of
a big new service): an alias that does not exist has no policy to read, so its minimum is the
converged plan's. Pointsman runs with ``--quota-share`` (default its own default, 0.5): its
reads paced at that share of each quota.

The shared quota: a converged plan while a concurrent "deployer" (another pipeline of the
account, its own user agent) calls ListAliases, GetPolicy, GetStages and GetResources at half
of each quota bucket the plan reads from, open loop and without retries, from the plan's start
to its end; once with Pointsman at the share, once at the whole quota (``--quota-share 1``) for
comparison. It prints the deployer's requests and the share of them throttled, and Pointsman's
wall time against its budget.

One line of figures per scenario: wall time; the quota-bound time of the calls it made (the
least time the quota share allows for them: reads at the share of each bucket, writes at the
whole quota) and wall/bound; reads made against the minimum for the
scope (ListAliases per function, GetPolicy per alias, one GetRestApis, GetStages and
GetResources per API, GetBasePathMappings per domain); writes; requests throttled by the
proxy; exit code; peak RSS of the pointsman process. Then its reads by operation.

    .venv/bin/python benchmarks/bench_scale.py                      # 100 and 1000 functions
    .venv/bin/python benchmarks/bench_scale.py --functions 100 --scale 10 --latency-ms 5
    .venv/bin/python benchmarks/bench_scale.py --functions 1000 --shared-only --no-events   # the deployer beside a plan
    .venv/bin/python benchmarks/bench_scale.py --functions 1000 --scenario "new aliases plan" --no-events
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
import yaml  # noqa: E402

from benchmarks.quota_proxy import QuotaProxy, rate_limits_env  # noqa: E402
from controller.aws.clients import is_write  # noqa: E402
from controller.aws.ratelimit import DEFAULT_QUOTA_SHARE  # noqa: E402
from controller.demo.estate import alias_uri, handler_zip  # noqa: E402

REGION = "us-east-1"
ACCOUNT_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/bench"
ALIASES = {"prod": "2", "dev": "$LATEST", "canary": "3"}
STAGES = ("prod", "dev", "canary")
FUNCTIONS_PER_API = 10
FUNCTIONS_PER_FILE = 250
NEW_ALIASES = 10_000  # declared by the "new aliases plan" scenario, none of them created


# ------------------------------------------------------------------ the estate


@dataclass(frozen=True)
class Shape:
    functions: int
    apis: int
    domains: int = 20
    mappings_per_domain: int = 5

    @classmethod
    def of(cls, functions: int, domains: int = 20, mappings_per_domain: int = 5) -> Shape:
        return cls(functions, max(1, -(-functions // FUNCTIONS_PER_API)), domains, mappings_per_domain)

    @property
    def aliases(self) -> int:
        return self.functions * len(ALIASES)

    def minimum_reads(self) -> dict[str, int]:
        """The reads a converged plan of this scope cannot do without."""
        return {
            "lambda.ListAliases": self.functions,
            "lambda.GetPolicy": self.aliases,
            "apigateway.GetRestApis": 1,
            "apigateway.GetStages": self.apis,
            "apigateway.GetResources": self.apis,
            "apigateway.GetBasePathMappings": self.domains,
        }


@dataclass
class Estate:
    shape: Shape
    moto_url: str
    spec_dir: Path
    functions: list[str] = field(default_factory=list)
    api_ids: dict[str, str] = field(default_factory=dict)


def function_name(i: int) -> str:
    return f"fn{i:04d}"


def api_name(i: int) -> str:
    return f"api{i:03d}"


def domain_name(i: int) -> str:
    return f"d{i:02d}.bench.example.com"


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment of a client of the emulator: fake credentials, one region, this endpoint."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "POINTSMAN_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def direct_clients(moto_url: str, session: Any = None) -> tuple[Any, Any, Any]:
    """boto3 clients straight to moto (not through the proxy): lambda, apigateway, iam (of
    ``session``'s account, the default one without)."""
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=64)
    session = session or boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
    lam, apigw, iam = (session.client(service, endpoint_url=moto_url, config=config) for service in ("lambda", "apigateway", "iam"))
    return lam, apigw, iam


def _parallel(jobs: Iterable[Callable[[], Any]], workers: int = 16) -> list[Any]:
    with ThreadPoolExecutor(workers) as pool:
        return [future.result() for future in [pool.submit(job) for job in jobs]]


def seed(moto_url: str, shape: Shape, spec_dir: Path, session: Any = None) -> Estate:
    """Create the estate in moto (directly, in parallel; in ``session``'s account) and write the spec that matches it."""
    lam, apigw, iam = direct_clients(moto_url, session)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        role = iam.create_role(RoleName="pointsman-bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="pointsman-bench")["Role"]["Arn"]

    def make_function(i: int) -> str:
        name = function_name(i)
        arn = lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler", Code={"ZipFile": handler_zip(name, 1)}, Publish=False
        )["FunctionArn"]
        for revision in (1, 2, 3):
            if revision > 1:
                lam.update_function_code(FunctionName=name, ZipFile=handler_zip(name, revision))
            lam.publish_version(FunctionName=name, Description=f"revision {revision}")
        for alias, version in ALIASES.items():
            lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        return str(arn)

    arns = _parallel([lambda i=i: make_function(i) for i in range(shape.functions)])

    def make_api(k: int) -> tuple[str, str]:
        api = apigw.create_rest_api(name=api_name(k), endpointConfiguration={"types": ["REGIONAL"]})["id"]
        root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
        for i in range(k * FUNCTIONS_PER_API, min(shape.functions, (k + 1) * FUNCTIONS_PER_API)):
            resource = apigw.create_resource(restApiId=api, parentId=root, pathPart=function_name(i))["id"]
            where = {"restApiId": api, "resourceId": resource, "httpMethod": "GET"}
            apigw.put_method(**where, authorizationType="NONE")
            apigw.put_integration(**where, type="AWS_PROXY", integrationHttpMethod="POST", uri=alias_uri(REGION, arns[i]))
        deployment = apigw.create_deployment(restApiId=api, description="initial deployment")["id"]
        for stage in STAGES:
            apigw.create_stage(restApiId=api, stageName=stage, deploymentId=deployment, variables={"lambdaAlias": stage})
        return api_name(k), api

    api_ids = dict(_parallel([lambda k=k: make_api(k) for k in range(shape.apis)], workers=8))

    def make_domain(d: int) -> None:
        apigw.create_domain_name(domainName=domain_name(d), regionalCertificateArn=ACCOUNT_CERT, endpointConfiguration={"types": ["REGIONAL"]})
        for m in range(shape.mappings_per_domain):
            api = api_ids[api_name((d * shape.mappings_per_domain + m) % shape.apis)]
            apigw.create_base_path_mapping(domainName=domain_name(d), basePath=f"m{m}", restApiId=api, stage="prod")

    _parallel([lambda d=d: make_domain(d) for d in range(shape.domains)], workers=8)
    write_spec(shape, spec_dir)
    return Estate(shape, moto_url, spec_dir, [function_name(i) for i in range(shape.functions)], api_ids)


def write_spec(shape: Shape, spec_dir: Path) -> None:
    """The spec of the estate as seeded: one file per FUNCTIONS_PER_FILE functions, one of APIs, one of domains."""
    spec_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, shape.functions, FUNCTIONS_PER_FILE):
        functions = {
            function_name(i): {"aliases": {alias: {"version": version} for alias, version in ALIASES.items()}}
            for i in range(start, min(shape.functions, start + FUNCTIONS_PER_FILE))
        }
        (spec_dir / f"functions-{start // FUNCTIONS_PER_FILE:02d}.yaml").write_text(yaml.safe_dump({"functions": functions}, sort_keys=False))
    apis = {api_name(k): {"stages": {stage: {"variables": {"lambdaAlias": stage}} for stage in STAGES}} for k in range(shape.apis)}
    (spec_dir / "apis.yaml").write_text(yaml.safe_dump({"rest_apis": apis}, sort_keys=False))
    domains = {
        domain_name(d): {
            "mappings": {
                f"m{m}": {"api": api_name((d * shape.mappings_per_domain + m) % shape.apis), "stage": "prod"} for m in range(shape.mappings_per_domain)
            }
        }
        for d in range(shape.domains)
    }
    (spec_dir / "domains.yaml").write_text(yaml.safe_dump({"domains": domains}, sort_keys=False))


def new_aliases_dir(estate: Estate) -> Path:
    return estate.spec_dir.parent / f"{estate.spec_dir.name}-new-aliases"


def declare_new_aliases(estate: Estate, count: int = NEW_ALIASES) -> None:
    """Beside the spec: the same spec with ``count`` aliases more (new0000, new0001... on each
    function in turn), on $LATEST so that no published version needs reading. None exists."""
    target = new_aliases_dir(estate)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(estate.spec_dir, target)
    functions = estate.functions
    for start in range(0, len(functions), FUNCTIONS_PER_FILE):
        path = target / f"functions-{start // FUNCTIONS_PER_FILE:02d}.yaml"
        document = yaml.safe_load(path.read_text())
        for i, name in enumerate(functions[start : start + FUNCTIONS_PER_FILE], start):
            aliases = document["functions"][name]["aliases"]
            for k in range(i, count, len(functions)):
                aliases[f"new{k // len(functions):04d}"] = {"version": "$LATEST"}
        path.write_text(yaml.safe_dump(document, sort_keys=False))


# ------------------------------------------------------------------ running pointsman


def pointsman_command() -> list[str]:
    script = Path(sys.executable).parent / "pointsman"
    return [str(script)] if script.exists() else [sys.executable, "-m", "controller.cli"]


@dataclass
class Run:
    exit_code: int
    wall_s: float
    peak_rss_kib: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


# Linux carries a parent's peak RSS into a forked child (and across exec), so a child of this
# process (moto's server and the seeded estate, ~170 MiB) would report at least that much. A
# small launcher forks pointsman from itself and reports pointsman's own peak (os.wait4).
_LAUNCHER = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda signum, frame: os.kill(pid, signum))
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def start_pointsman(argv: list[str], env: Mapping[str, str], rss_file: str, **popen: Any) -> subprocess.Popen[str]:
    """``pointsman ARGV`` under the launcher, which writes its peak RSS (KiB) to ``rss_file`` at exit."""
    command = [sys.executable, "-c", _LAUNCHER, rss_file, *pointsman_command(), *argv]
    return subprocess.Popen(command, env=dict(env), cwd=ROOT, text=True, **popen)


def read_rss(rss_file: str) -> int:
    peak = Path(rss_file).read_text().strip()
    return int(peak) if peak.isdigit() else 0


def run_pointsman(argv: list[str], env: Mapping[str, str], timeout: float = 3600.0) -> Run:
    """``pointsman ARGV`` as a subprocess: exit code, wall time, its own peak RSS, output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        process = start_pointsman(argv, env, rss.name, stdout=out, stderr=err)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Run(process.returncode, wall, read_rss(rss.name), out.read(), err.read())


def converge(estate: Estate) -> Run:
    """The first apply, straight to moto and unpaced (moto has no quotas): the estate starts in sync."""
    env = {**aws_env(estate.moto_url), "POINTSMAN_RATE_LIMITS": "off"}
    return run_pointsman(["apply", "--spec", str(estate.spec_dir)], env)


# ------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Scenario:
    """One measured run: ``prepare`` changes the estate behind Pointsman's back (straight to
    moto, not counted), then ``pointsman ARGV --spec SPEC`` runs through the proxy."""

    name: str
    argv: tuple[str, ...]
    prepare: Callable[[Estate], None] | None = None
    with_spec: bool = True  # False: the argv is whole (``{out}``, ``{new_aliases}``: directories beside the spec)


def change_one_percent_of_prod_aliases(estate: Estate) -> None:
    """prod -> version 1 on 1 % of the functions (at least one), as a console user would."""
    lam, _, _ = direct_clients(estate.moto_url)
    count = max(1, len(estate.functions) // 100)
    step = max(1, len(estate.functions) // count)
    for name in estate.functions[::step][:count]:
        lam.update_alias(FunctionName=name, Name="prod", FunctionVersion="1")


SCENARIOS: list[Scenario] = [
    Scenario("converged plan", ("plan",)),
    Scenario("1% drift apply", ("apply",), change_one_percent_of_prod_aliases),
    Scenario("import", ("import", "--out", "{out}", "--force"), with_spec=False),
    Scenario("new aliases plan", ("plan", "--spec", "{new_aliases}"), declare_new_aliases, with_spec=False),
]


def import_minimum(shape: Shape) -> dict[str, int]:
    """The reads ``pointsman import`` of the whole estate cannot do without: a plan's, and the
    listings that find what exists (ListFunctions pages of 50, GetDomainNames) and the newest
    deployment of each API (a stage's deployment is pinned only when it is not the newest)."""
    return {
        **shape.minimum_reads(),
        "lambda.ListFunctions": max(1, -(-shape.functions // 50)),
        "apigateway.GetDomainNames": 1,
        "apigateway.GetDeployments": shape.apis,
    }


def quota_calls(forwarded: Mapping[str, int], writes: bool | None = None) -> dict[str, int]:
    """The Lambda and API Gateway calls among ``forwarded`` (the ones with quotas): all, or only
    the writes (``writes=True``) or only the reads (``writes=False``)."""
    return {op: n for op, n in forwarded.items() if op.startswith(("lambda.", "apigateway.")) and (writes is None or is_write(op) == writes)}


@dataclass
class Figures:
    scenario: str
    shape: Shape
    run: Run
    counts: dict[str, dict[str, int]]
    bound_s: float
    share: float = DEFAULT_QUOTA_SHARE

    @property
    def reads(self) -> dict[str, int]:
        return quota_calls(self.counts["forwarded"], writes=False)

    @property
    def writes(self) -> dict[str, int]:
        return quota_calls(self.counts["forwarded"], writes=True)

    @property
    def throttled(self) -> int:
        return sum(self.counts["throttled"].values())

    def line(self) -> str:
        minimum = sum((import_minimum(self.shape) if self.scenario == "import" else self.shape.minimum_reads()).values())
        reads = sum(self.reads.values())
        bound = self.bound_s
        ratio = f"{self.run.wall_s / bound:5.2f}" if bound > 0 else "  n/a"
        return (
            f"{self.scenario:16} functions={self.shape.functions:5} share={self.share:g} wall={self.run.wall_s:7.1f}s bound={bound:7.1f}s wall/bound={ratio}"
            f" reads={reads:5}/{minimum:<5} ({reads / minimum:4.2f}x) writes={sum(self.writes.values()):4}"
            f" throttled={self.throttled:4} exit={self.run.exit_code} rss={self.run.peak_rss_kib / 1024:6.1f}MiB"
        )

    def details(self) -> list[str]:
        out = ["    reads: " + ", ".join(f"{op}={n}" for op, n in sorted(self.reads.items()))]
        if self.writes:
            out.append("    writes: " + ", ".join(f"{op}={n}" for op, n in sorted(self.writes.items())))
        if self.counts["throttled"]:
            out.append("    throttled: " + ", ".join(f"{op}={n}" for op, n in self.counts["throttled"].items()))
        out += [f"    {line}" for line in self.run.error_lines[:3]]
        return out


def paced_env(proxy: QuotaProxy, scale: float, share: float) -> dict[str, str]:
    """Pointsman's environment behind the proxy: paced to its quotas, reads at ``share`` of each."""
    env = aws_env(proxy.url)
    env["POINTSMAN_QUOTA_SHARE"] = f"{share:g}"
    if scale != 1:  # pace to the proxy's scaled quotas; at 1 Pointsman's defaults are AWS's
        env["POINTSMAN_RATE_LIMITS"] = rate_limits_env(proxy.quotas)
    return env


def measure(scenario: Scenario, estate: Estate, proxy: QuotaProxy, scale: float, share: float = DEFAULT_QUOTA_SHARE) -> Figures:
    if scenario.prepare is not None:
        scenario.prepare(estate)
    env = paced_env(proxy, scale, share)
    proxy.reset()  # full buckets, as after a quiet spell
    if scenario.with_spec:
        argv = [*scenario.argv, "--spec", str(estate.spec_dir)]
    else:
        beside = {"{out}": estate.spec_dir.parent / f"{estate.spec_dir.name}-imported", "{new_aliases}": new_aliases_dir(estate)}
        argv = list(scenario.argv)
        for placeholder, path in beside.items():
            argv = [a.replace(placeholder, str(path)) for a in argv]
    run = run_pointsman(argv, env)
    counts = proxy.snapshot("pointsman")
    return Figures(scenario.name, estate.shape, run, counts, proxy.bound_seconds(counts["forwarded"], share), share)


# ------------------------------------------------------------------ a shared quota: a concurrent deployer


# What the deployer calls, and at what share of which quota bucket: half of every bucket a plan
# reads from (GetResources also draws from the account-wide API Gateway bucket: GetStages takes
# the rest of that half).
DEPLOYER_CALLS: tuple[tuple[str, str, str, float], ...] = (
    ("lambda", "ListAliases", "lambda", 0.5),
    ("lambda", "GetPolicy", "lambda.GetPolicy", 0.5),
    ("apigateway", "GetResources", "apigateway.GetResources", 0.5),
    ("apigateway", "GetStages", "apigateway", 0.375),
)


class Deployer:
    """Another deploy pipeline of the account: one thread per call, each at its share of its
    bucket (``DEPLOYER_CALLS``), open loop (the next call at its time, however the last one
    went) and without retries, so each request is counted once, throttled or not."""

    def __init__(self, estate: Estate, proxy: QuotaProxy) -> None:
        config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=8, user_agent_extra="deployer/1")
        session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
        self._clients = {service: session.client(service, endpoint_url=proxy.url, config=config) for service in ("lambda", "apigateway")}
        self._estate = estate
        self._quotas = proxy.quotas
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.requests = 0
        self.throttled = 0
        self.errors = 0
        self.seconds = 0.0
        self._started = 0.0

    def rate(self, bucket: str, share: float) -> float:
        return self._quotas[bucket].rate * share

    def _call(self, service: str, operation: str, i: int) -> None:
        function = self._estate.functions[i % len(self._estate.functions)]
        apis = list(self._estate.api_ids.values())
        client = self._clients[service]
        if operation == "ListAliases":
            client.list_aliases(FunctionName=function)
        elif operation == "GetPolicy":
            client.get_policy(FunctionName=function, Qualifier="prod")
        elif operation == "GetResources":
            client.get_resources(restApiId=apis[i % len(apis)], limit=500)
        else:
            client.get_stages(restApiId=apis[i % len(apis)])

    def _stream(self, service: str, operation: str, bucket: str, share: float, started: float) -> None:
        interval = 1.0 / self.rate(bucket, share)
        i = 0
        while not self._stop.is_set():
            delay = started + i * interval - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            throttled = error = False
            try:
                self._call(service, operation, i)
            except botocore.exceptions.ClientError as exc:
                throttled = exc.response.get("Error", {}).get("Code") == "TooManyRequestsException"
                error = not throttled
            except botocore.exceptions.BotoCoreError:
                error = True
            with self._lock:
                self.requests += 1
                self.throttled += throttled
                self.errors += error
            i += 1

    def __enter__(self) -> Deployer:
        started = self._started = time.perf_counter()
        for service, operation, bucket, share in DEPLOYER_CALLS:
            thread = threading.Thread(target=self._stream, args=(service, operation, bucket, share, started), name=f"deployer-{operation}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self.seconds = time.perf_counter() - self._started

    @property
    def throttled_pct(self) -> float:
        return 100.0 * self.throttled / self.requests if self.requests else 0.0


@dataclass
class SharedFigures:
    figures: Figures
    deployer_requests: int
    deployer_throttled: int
    deployer_errors: int
    deployer_rate: float  # requests per second it sent

    def lines(self) -> list[str]:
        f = self.figures
        pct = 100.0 * self.deployer_throttled / self.deployer_requests if self.deployer_requests else 0.0
        budget = f"{f.run.wall_s / f.bound_s:5.2f}" if f.bound_s > 0 else "  n/a"
        return [
            f"shared quota     functions={f.shape.functions:5} share={f.share:g}"
            f" deployer: {self.deployer_requests} requests ({self.deployer_rate:.1f}/s), throttled={self.deployer_throttled} ({pct:.2f} %),"
            f" other errors={self.deployer_errors};"
            f" pointsman: wall={f.run.wall_s:.1f}s budget={f.bound_s:.1f}s wall/budget={budget} throttled={f.throttled} exit={f.run.exit_code}",
            *f.details(),
        ]


def shared_quota(estate: Estate, proxy: QuotaProxy, scale: float, share: float) -> SharedFigures:
    """A converged plan at ``share`` while the deployer calls at half of each quota it reads from."""
    env = paced_env(proxy, scale, share)
    proxy.reset()
    with Deployer(estate, proxy) as deployer:
        run = run_pointsman(["plan", "--spec", str(estate.spec_dir)], env)
    counts = proxy.snapshot("pointsman")
    figures = Figures("shared quota", estate.shape, run, counts, proxy.bound_seconds(counts["forwarded"], share), share)
    theirs = proxy.snapshot("other")
    assert sum(theirs["requests"].values()) == deployer.requests, (theirs["requests"], deployer.requests)  # the proxy saw each one
    return SharedFigures(figures, deployer.requests, deployer.throttled, deployer.errors, deployer.requests / deployer.seconds if deployer.seconds else 0.0)


# ------------------------------------------------------------------ the event-driven heal


def cloudtrail_update_alias(function: str, alias: str, version: str) -> str:
    """The EventBridge "AWS API Call via CloudTrail" event of a console UpdateAlias, as an SQS
    target receives it (the record's fields as the CloudTrail user guide documents them)."""
    arn = "arn:aws:iam::123456789012:user/console-user"
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDABENCH", "arn": arn, "accountId": "123456789012", "userName": "console-user"},
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "eventSource": "lambda.amazonaws.com",
        "eventName": "UpdateAlias20150331",
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.5",
        "userAgent": "console.amazonaws.com",
        "requestParameters": {"functionName": function, "name": alias, "functionVersion": version},
        "responseElements": None,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    }
    return json.dumps(
        {
            "version": "0",
            "id": "bench",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.lambda",
            "account": "123456789012",
            "time": detail["eventTime"],
            "region": REGION,
            "resources": [],
            "detail": detail,
        }
    )


@dataclass
class EventRun:
    """One event: its reads and writes, the controller's CPU, and its times after being queued."""

    function: str
    counts: dict[str, dict[str, int]]
    cpu_s: float | None
    reported_s: float | None
    healed_s: float | None

    @property
    def reads(self) -> dict[str, int]:
        return quota_calls(self.counts["forwarded"], writes=False)

    @property
    def writes(self) -> dict[str, int]:
        return quota_calls(self.counts["forwarded"], writes=True)


@dataclass
class EventFigures:
    shape: Shape
    full_run_s: float
    full_run_status: str
    events: list[EventRun]
    exit_code: int
    peak_rss_kib: int
    errors: list[str]

    def lines(self) -> list[str]:
        def median(values: list[float | None]) -> float | None:
            known = sorted(v for v in values if v is not None)
            return known[len(known) // 2] if known and len(known) == len(values) else None

        shown = lambda v, unit="s": f"{v:6.3f}{unit}" if v is not None else "  never"  # noqa: E731
        reads = [sum(e.reads.values()) for e in self.events]
        writes = [sum(e.writes.values()) for e in self.events]
        out = [
            f"event heal       functions={self.shape.functions:5} first full run={self.full_run_s:6.1f}s ({self.full_run_status})"
            f" events={len(self.events)} per event (median): drift logged={shown(median([e.reported_s for e in self.events]))}"
            f" healed={shown(median([e.healed_s for e in self.events]))} after queued,"
            f" CPU={shown(median([e.cpu_s for e in self.events]))} (controller process),"
            f" reads={'/'.join(map(str, reads))} (minimum {len(EVENT_MINIMUM)}) writes={'/'.join(map(str, writes))}"
            f" throttled={sum(sum(e.counts['throttled'].values()) for e in self.events)}"
            f" exit={self.exit_code} rss={self.peak_rss_kib / 1024:6.1f}MiB (whole run)",
        ]
        for e in self.events:
            out.append(
                f"    {e.function}: drift logged={shown(e.reported_s)} healed={shown(e.healed_s)} CPU={shown(e.cpu_s)}"
                f" reads: " + ", ".join(f"{op}={n}" for op, n in sorted(e.reads.items()))
            )
        return out + [f"    {line}" for line in self.errors[:3]]


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a process so far (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child_pid(pid: int) -> int:
    """The pointsman process the launcher forked (the launcher's only child)."""
    for _ in range(100):
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.05)
    return pid


# What a heal of one alias cannot do without: its aliases, its policy, its versions, one UpdateAlias.
EVENT_MINIMUM = ("lambda.ListAliases", "lambda.GetPolicy", "lambda.ListVersionsByFunction")


def _http_json(url: str, timeout: float = 5.0) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _one_event(target: str, lam: Any, sqs: Any, queue: str, proxy: QuotaProxy, lines: list[tuple[float, str]], pid: int, process: Any) -> EventRun:
    """A console change of ``target``:prod and its event on the queue: the reads the event's run
    made, the controller's CPU from the event queued to its run finished, and the times from
    the event queued to the drift in the log and to the alias back on its version."""
    lam.update_alias(FunctionName=target, Name="prod", FunctionVersion="1")  # the console change
    time.sleep(0.2)
    proxy.reset()
    cpu_before = _cpu_seconds(pid)
    sqs.send_message(QueueUrl=queue, MessageBody=cloudtrail_update_alias(target, "prod", "1"))
    queued = time.perf_counter()
    reported = healed = finished = None

    def seen(text: str, *also: str) -> float | None:
        return next((at - queued for at, line in list(lines) if at >= queued and text in line and all(a in line for a in also)), None)

    while time.perf_counter() - queued < 60 and process.poll() is None:
        reported = reported if reported is not None else seen("drift found", target)
        if healed is None and lam.get_alias(FunctionName=target, Name="prod")["FunctionVersion"] == ALIASES["prod"]:
            healed = time.perf_counter() - queued
        finished = seen("reconcile finished")
        if healed is not None and finished is not None:
            break
        time.sleep(0.01)
    cpu_after = _cpu_seconds(pid)
    reported = reported if reported is not None else seen("drift found", target)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    time.sleep(0.3)
    return EventRun(target, proxy.snapshot(), cpu, reported, healed)


def event_heal(estate: Estate, proxy: QuotaProxy, scale: float, share: float = DEFAULT_QUOTA_SHARE, events: int = 5) -> EventFigures:
    """``pointsman run --events-queue`` in apply mode through the proxy: its first full run, then
    ``events`` times a console change of one prod alias and its CloudTrail event on the queue.
    Each event: the reads its run made, the controller process's CPU time from the event queued
    to its run finished (time.process_time's measure, read from /proc), and the times from the
    event queued to the drift in the log and to the alias back on its version."""
    import threading

    lam = direct_clients(estate.moto_url)[0]
    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
    sqs = session.client("sqs", endpoint_url=estate.moto_url)
    queue = sqs.create_queue(QueueName=f"pointsman-events-{estate.shape.functions}")["QueueUrl"]
    work = Path(tempfile.mkdtemp(prefix="pointsman-scale-run-"))
    repo = work / "repo"
    shutil.copytree(estate.spec_dir, repo / "desired_state")
    git_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "the estate"]):
        subprocess.run(["git", *argv], cwd=repo, env=git_env, check=True)
    port = free_port()
    env = {**paced_env(proxy, scale, share), "AWS_ENDPOINT_URL_SQS": estate.moto_url}  # the queue is not behind the quotas
    argv = [
        "--log-level",
        "info",
        "run",
        "--repo",
        str(repo),
        "--mode",
        "apply",
        "--interval",
        "3600",
        "--jitter",
        "0",
        "--poll-interval",
        "0",
        "--listen",
        f"127.0.0.1:{port}",
        "--state-dir",
        str(work / "state"),
        "--events-queue",
        queue,
        "--events-wait",
        "1",
    ]
    lines: list[tuple[float, str]] = []
    rss = work / "rss"
    rss.write_text("")
    proxy.reset()
    process = start_pointsman(argv, env, str(rss), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reader = threading.Thread(target=lambda: [lines.append((time.perf_counter(), line)) for line in process.stderr or ()], daemon=True)
    reader.start()
    full_run_s, full_status = 0.0, "never finished"
    done: list[EventRun] = []
    pid = _child_pid(process.pid)
    try:
        started = time.perf_counter()
        runs: list[dict[str, Any]] = []
        while time.perf_counter() - started < 3600 and process.poll() is None:
            try:
                runs = [r for r in _http_json(f"http://127.0.0.1:{port}/api/history?limit=5") if r.get("finished")]
            except OSError:
                runs = []
            if runs:
                break
            time.sleep(0.5)
        if runs:
            full_run_s, full_status = runs[0]["duration_s"], runs[0]["status"]
            time.sleep(1.5)  # the consumer's long poll is running
            for k in range(events):
                target = estate.functions[(len(estate.functions) // 2 + k * 7) % len(estate.functions)]
                done.append(_one_event(target, lam, sqs, queue, proxy, lines, pid, process))
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)
        sqs.delete_queue(QueueUrl=queue)
    errors = [line.strip() for _, line in lines if '"level": "error"' in line or line.startswith("error:")]
    figures = EventFigures(estate.shape, full_run_s, full_status, done, process.returncode, read_rss(str(rss)), errors)
    shutil.rmtree(work, ignore_errors=True)
    return figures


# ------------------------------------------------------------------ moto


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 in this process (so ``fix_moto_gaps`` applies)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        from controller.demo.emulator import fix_moto_gaps

        fix_moto_gaps()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def reset(self) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


# ------------------------------------------------------------------ several targets: an account each


def target_account(i: int) -> str:
    return f"{210000000000 + i:012d}"


def assumed(moto_url: str, account: str) -> Any:
    """A session in ``account`` (moto gives an assumed role's credentials the role's account)."""
    sts = boto3.client("sts", endpoint_url=moto_url, aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/pointsman", RoleSessionName="bench-seed")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


@dataclass
class TargetsFigures:
    targets: int
    shape: Shape
    clean: Run
    clean_seconds: dict[str, float]
    bounds: dict[str, float]
    faulty: Run | None = None
    faulty_seconds: dict[str, float] = field(default_factory=dict)
    faulty_states: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        slowest = max(self.bounds.values(), default=0.0)
        total = sum(self.bounds.values())
        out = [
            f"targets          {self.targets} accounts x {self.shape.functions} functions, --parallelism {self.targets}, one process:"
            f" wall {self.clean.wall_s:.1f}s, slowest target's quota bound {slowest:.1f}s (x{self.clean.wall_s / slowest:.2f}),"
            f" sum of the bounds {total:.1f}s, exit={self.clean.exit_code}, peak RSS {self.clean.peak_rss_kib / 1024:.0f} MiB"
            if slowest
            else f"targets          {self.targets} accounts: no quota-bound calls counted (exit={self.clean.exit_code})"
        ]
        out.append("    per target (clean): " + ", ".join(f"{name} {self.clean_seconds[name]:.1f}s" for name in sorted(self.clean_seconds)))
        if self.faulty_seconds:
            out.append("    per target (faults): " + ", ".join(f"{name} {self.faulty_seconds[name]:.1f}s" for name in sorted(self.faulty_seconds)))
        if self.faulty is not None:
            others = [n for n in self.clean_seconds if n not in ("t00", "t01") and n in self.faulty_seconds and self.faulty_states.get(n) == "in sync"]
            ratios = sorted(self.faulty_seconds[name] / self.clean_seconds[name] for name in others if self.clean_seconds[name])
            worst = ratios[-1] if ratios else float("nan")
            out.append(
                f"    faults: t00 AccessDenied ({self.faulty_states.get('t00')}), t01 50% 429s ({self.faulty_states.get('t01')}):"
                f" the {len(ratios)} others' times against the clean run: worst x{worst:.2f},"
                f" median x{ratios[len(ratios) // 2] if ratios else float('nan'):.2f}; wall {self.faulty.wall_s:.1f}s exit={self.faulty.exit_code}"
            )
        for line in self.clean.error_lines[:3]:
            out.append(f"    {line}")
        return out


def _per_target(run: Run) -> tuple[dict[str, float], dict[str, str]]:
    try:
        document = json.loads(run.stdout)
    except ValueError:
        return {}, {}
    return {t["name"]: float(t["seconds"]) for t in document["targets"]}, {t["name"]: t["state"] for t in document["targets"]}


def bench_targets(
    count: int, functions: int, scale: float, latency_ms: float, share: float, faults: bool = True, throttle_deadline: float | None = None
) -> TargetsFigures:
    """``count`` targets, an emulated account each holding ``functions`` functions: a converged
    plan of them all at once (``--parallelism count``) behind a proxy whose quotas are per account,
    against the slowest target's quota bound; then the same with one target denied and another
    answered 429 half the time, each other target's time against its clean one."""
    shape = Shape.of(functions, domains=2)
    root = Path(tempfile.mkdtemp(prefix=f"pointsman-targets-{count}x{functions}-"))
    try:
        with MotoServer() as moto:
            started = time.perf_counter()
            for i in range(count):
                account = target_account(i)
                directory = root / f"t{i:02d}"
                seed(moto.url, shape, directory, session=assumed(moto.url, account))
                (directory / "target.yaml").write_text(f'account_id: "{account}"\nregion: {REGION}\nrole_arn: arn:aws:iam::{account}:role/pointsman\n')
            seeded = time.perf_counter() - started
            first = run_pointsman(["apply", "--spec", str(root), "--parallelism", str(count)], {**aws_env(moto.url), "POINTSMAN_RATE_LIMITS": "off"})
            print(
                f"targets estate   {count} accounts x {functions} functions: seeded in {seeded:.1f}s, first apply {first.wall_s:.1f}s exit={first.exit_code}",
                flush=True,
            )
            argv = ["plan", "--spec", str(root), "--parallelism", str(count), "--format", "json"]
            with QuotaProxy(moto.url, scale=scale, latency_ms=latency_ms, per_account=True) as proxy:
                clean = run_pointsman(argv, paced_env(proxy, scale, share))
                bounds = {
                    account: proxy.bound_seconds(quota_calls(counts), share) for account, counts in proxy.account_counts().items() if account != "default"
                }
            seconds, _ = _per_target(clean)
            figures = TargetsFigures(count, shape, clean, seconds, bounds)
            if faults and count > 2:
                plan = {target_account(0): "deny", target_account(1): ("throttle", 0.5)}
                with QuotaProxy(moto.url, scale=scale, latency_ms=latency_ms, per_account=True, faults=plan) as proxy:
                    env = paced_env(proxy, scale, share)
                    if throttle_deadline is not None:  # how long the throttled target holds out (default: the one-shot 5 minutes)
                        env["POINTSMAN_THROTTLE_DEADLINE"] = f"{throttle_deadline:g}"
                    faulty = run_pointsman(argv, env)
                figures.faulty = faulty
                figures.faulty_seconds, figures.faulty_states = _per_target(faulty)
            moto.reset()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


def bench(
    functions: int,
    scale: float,
    latency_ms: float,
    scenarios: list[Scenario],
    events: bool = True,
    share: float = DEFAULT_QUOTA_SHARE,
    shared: bool = True,
    compare: bool = True,
) -> list[Figures]:
    shape = Shape.of(functions)
    spec_dir = Path(tempfile.mkdtemp(prefix=f"pointsman-scale-{functions}-"))
    figures: list[Figures] = []
    try:
        with MotoServer() as moto:
            started = time.perf_counter()
            estate = seed(moto.url, shape, spec_dir)
            seeded = time.perf_counter() - started
            first = converge(estate)
            print(
                f"estate           functions={shape.functions:5} aliases={shape.aliases} apis={shape.apis} domains={shape.domains}"
                f" mappings={shape.domains * shape.mappings_per_domain}: seeded in {seeded:.1f}s,"
                f" first apply (unpaced, no proxy) {first.wall_s:.1f}s exit={first.exit_code}",
                flush=True,
            )
            for line in first.error_lines[:3]:
                print(f"    {line}", flush=True)
            with QuotaProxy(moto.url, scale=scale, latency_ms=latency_ms) as proxy:
                for scenario in scenarios:
                    result = measure(scenario, estate, proxy, scale, share)
                    figures.append(result)
                    print(result.line(), flush=True)
                    for line in result.details():
                        print(line, flush=True)
                if shared:
                    for pointsman_share in dict.fromkeys((share, 1.0) if compare else (share,)):  # the share, then the whole quota
                        for line in shared_quota(estate, proxy, scale, pointsman_share).lines():
                            print(line, flush=True)
                if events:
                    for line in event_heal(estate, proxy, scale, share).lines():
                        print(line, flush=True)
            moto.reset()
    finally:
        for made in (spec_dir, *(spec_dir.parent / f"{spec_dir.name}-{suffix}" for suffix in ("imported", "new-aliases"))):
            shutil.rmtree(made, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, action="append", help="estate size in functions (repeatable; default 100 and 1000)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every quota's rate (default 1: AWS's)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added round trip per request (default 20)")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS], help="run only this scenario (repeatable; default all)")
    parser.add_argument("--no-events", action="store_true", help="skip the event-driven heal (a `pointsman run` with its first full scan)")
    parser.add_argument("--events-only", action="store_true", help="only the event-driven heal")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared quota (a plan beside a concurrent deployer)")
    parser.add_argument("--shared-only", action="store_true", help="only the shared quota (and the event heal unless --no-events)")
    parser.add_argument("--no-compare", action="store_true", help="the shared quota at --quota-share only, not also at the whole quota")
    parser.add_argument("--quota-share", type=float, default=DEFAULT_QUOTA_SHARE, help="Pointsman's --quota-share (default its own, 0.5)")
    parser.add_argument("--targets", type=int, default=0, metavar="N", help="also N targets (an emulated account each) of --functions each, in one process")
    parser.add_argument("--targets-only", action="store_true", help="only the targets figures (with --targets N)")
    args = parser.parse_args(argv)
    sizes = args.functions or [100, 1000]
    if any(n < 1 for n in sizes) or not args.scale > 0 or args.latency_ms < 0 or not 0 < args.quota_share <= 1:
        parser.error("--functions must be at least 1, --scale positive, --latency-ms not negative, --quota-share above 0 and at most 1")
    print(
        f"quotas x{args.scale:g}, latency {args.latency_ms:g} ms per request, pacing on (Pointsman's defaults"
        + (")" if args.scale == 1 else ", scaled)")
        + f", reads at {args.quota_share:g} of each quota",
        flush=True,
    )
    if args.targets:
        for n in sizes:
            for line in bench_targets(args.targets, n, args.scale, args.latency_ms, args.quota_share).lines():
                print(line, flush=True)
        if args.targets_only:
            return 0
    scenarios = [] if args.events_only or args.shared_only else SCENARIOS
    for n in sizes:
        chosen = [s for s in scenarios if not args.scenario or s.name in args.scenario]
        bench(
            n,
            args.scale,
            args.latency_ms,
            chosen,
            events=not args.no_events,
            share=args.quota_share,
            shared=not (args.no_shared or args.events_only),
            compare=not args.no_compare,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
