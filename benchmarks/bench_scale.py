"""Benchmark: Pointsman at scale behind a proxy that throttles like AWS.

Figures, not pass/fail. moto's server (127.0.0.1) holds an estate of N functions (3 published
versions, aliases prod -> 2, dev -> $LATEST, canary -> 3), N/10 REST APIs (10 resources each
routed to 10 distinct functions through ``${stageVariables.lambdaAlias}``; stages prod, dev,
canary; one deployment) and 20 custom domains of 5 base path mappings each. The estate is
seeded straight into moto, converged once by ``pointsman apply`` without pacing, and then each
scenario runs the real ``pointsman`` command against ``benchmarks/quota_proxy.py``: AWS's
quotas enforced (HTTP 429 past a bucket), AWS's round trip added, and Pointsman pacing itself
as it does against AWS.

One line of figures per scenario: wall time; the quota-bound time of the calls it made (the
least time AWS's quotas allow for them) and wall/bound; reads made against the minimum for the
scope (ListAliases per function, GetPolicy per alias, one GetRestApis, GetStages and
GetResources per API, GetBasePathMappings per domain); writes; requests throttled by the
proxy; exit code; peak RSS of the pointsman process. Then its reads by operation.

    .venv/bin/python benchmarks/bench_scale.py                      # 100 and 1000 functions
    .venv/bin/python benchmarks/bench_scale.py --functions 100 --scale 10 --latency-ms 5
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
import yaml  # noqa: E402

from benchmarks.quota_proxy import QuotaProxy, rate_limits_env  # noqa: E402
from controller.aws import is_write  # noqa: E402
from controller.estate import alias_uri, handler_zip  # noqa: E402

REGION = "us-east-1"
ACCOUNT_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/bench"
ALIASES = {"prod": "2", "dev": "$LATEST", "canary": "3"}
STAGES = ("prod", "dev", "canary")
FUNCTIONS_PER_API = 10
FUNCTIONS_PER_FILE = 250


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
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POINTSMAN_"))
    }
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


def direct_clients(moto_url: str) -> tuple[Any, Any, Any]:
    """boto3 clients straight to moto (not through the proxy): lambda, apigateway, iam."""
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=64)
    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
    lam, apigw, iam = (session.client(service, endpoint_url=moto_url, config=config) for service in ("lambda", "apigateway", "iam"))
    return lam, apigw, iam


def _parallel(jobs: Iterable[Callable[[], Any]], workers: int = 16) -> list[Any]:
    with ThreadPoolExecutor(workers) as pool:
        return [future.result() for future in [pool.submit(job) for job in jobs]]


def seed(moto_url: str, shape: Shape, spec_dir: Path) -> Estate:
    """Create the estate in moto (directly, in parallel) and write the spec that matches it."""
    lam, apigw, iam = direct_clients(moto_url)
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
                f"m{m}": {"api": api_name((d * shape.mappings_per_domain + m) % shape.apis), "stage": "prod"}
                for m in range(shape.mappings_per_domain)
            }
        }
        for d in range(shape.domains)
    }
    (spec_dir / "domains.yaml").write_text(yaml.safe_dump({"domains": domains}, sort_keys=False))


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


def run_pointsman(argv: list[str], env: Mapping[str, str], timeout: float = 3600.0) -> Run:
    """``pointsman ARGV`` as a subprocess: exit code, wall time, its peak RSS (os.wait4), output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen([*pointsman_command(), *argv], env=dict(env), stdout=out, stderr=err, cwd=ROOT, text=True)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(process.returncode, wall, int(usage.ru_maxrss), out.read(), err.read())


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
]


@dataclass
class Figures:
    scenario: str
    shape: Shape
    run: Run
    counts: dict[str, dict[str, int]]
    bound_s: float

    @property
    def reads(self) -> dict[str, int]:
        return {op: n for op, n in self.counts["forwarded"].items() if op.startswith(("lambda.", "apigateway.")) and not is_write(op)}

    @property
    def writes(self) -> dict[str, int]:
        return {op: n for op, n in self.counts["forwarded"].items() if op.startswith(("lambda.", "apigateway.")) and is_write(op)}

    @property
    def throttled(self) -> int:
        return sum(self.counts["throttled"].values())

    def line(self) -> str:
        minimum = sum(self.shape.minimum_reads().values())
        reads = sum(self.reads.values())
        bound = self.bound_s
        ratio = f"{self.run.wall_s / bound:5.2f}" if bound > 0 else "  n/a"
        return (
            f"{self.scenario:16} functions={self.shape.functions:5} wall={self.run.wall_s:7.1f}s bound={bound:7.1f}s wall/bound={ratio}"
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


def measure(scenario: Scenario, estate: Estate, proxy: QuotaProxy, scale: float) -> Figures:
    if scenario.prepare is not None:
        scenario.prepare(estate)
    env = aws_env(proxy.url)
    if scale != 1:  # pace to the proxy's scaled quotas; at 1 Pointsman's defaults are AWS's
        env["POINTSMAN_RATE_LIMITS"] = rate_limits_env(proxy.quotas)
    proxy.reset()  # full buckets, as after a quiet spell
    run = run_pointsman([*scenario.argv, "--spec", str(estate.spec_dir)], env)
    counts = proxy.snapshot()
    return Figures(scenario.name, estate.shape, run, counts, proxy.bound_seconds(counts["forwarded"]))


# ------------------------------------------------------------------ moto


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 in this process (so ``fix_moto_gaps`` applies)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        from controller.emulator import fix_moto_gaps

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


def bench(functions: int, scale: float, latency_ms: float, scenarios: list[Scenario]) -> list[Figures]:
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
                    result = measure(scenario, estate, proxy, scale)
                    figures.append(result)
                    print(result.line(), flush=True)
                    for line in result.details():
                        print(line, flush=True)
            moto.reset()
    finally:
        shutil.rmtree(spec_dir, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, action="append", help="estate size in functions (repeatable; default 100 and 1000)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every quota's rate (default 1: AWS's)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added round trip per request (default 20)")
    args = parser.parse_args(argv)
    sizes = args.functions or [100, 1000]
    if any(n < 1 for n in sizes) or not args.scale > 0 or args.latency_ms < 0:
        parser.error("--functions must be at least 1, --scale positive, --latency-ms not negative")
    print(f"quotas x{args.scale:g}, latency {args.latency_ms:g} ms per request, pacing on (Pointsman's defaults" + (")" if args.scale == 1 else ", scaled)"), flush=True)
    for n in sizes:
        bench(n, args.scale, args.latency_ms, SCENARIOS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
