"""The AWS-quota proxy of the scale benchmark: classification, 429s past a bucket, counts, and
a small estate planned through it by the real ``pointsman`` command."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSResponse
from botocore.parsers import ResponseParserError

from benchmarks.bench_scale import (
    DEPLOYER_CALLS,
    EVENT_MINIMUM,
    Shape,
    aws_env,
    converge,
    declare_new_aliases,
    direct_clients,
    event_heal,
    import_minimum,
    new_aliases_dir,
    run_pointsman,
    seed,
    shared_quota,
)
from benchmarks.quota_proxy import QuotaProxy, bound_seconds, caller_of, classify, rate_limits_env, scaled_quotas
from controller.aws.clients import is_write
from controller.aws.ratelimit import DEFAULT_QUOTAS, THROTTLING_CODES, Quota

REGION = "us-east-1"


# ------------------------------------------------------------------ classification (no server)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _classified(service: str, method: str, **kwargs: Any) -> tuple[str, str]:
    """What the proxy makes of the HTTP request botocore sends for ``service.method(**kwargs)``."""
    seen: list[tuple[str, str]] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        target = request.url.split("://", 1)[1]
        target = target[target.index("/") :] if "/" in target else "/"
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        seen.append(classify(request.method, target, headers, body))
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(b"{}"))

    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=REGION)
    client = session.client(service, endpoint_url="http://127.0.0.1:9", config=botocore.config.Config(retries={"total_max_attempts": 1}))
    client.meta.events.register("before-send.*.*", capture)
    try:
        getattr(client, method)(**kwargs)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, ResponseParserError, KeyError):
        pass  # the fake answer may not parse for every operation; the request was seen
    assert len(seen) == 1, seen
    return seen[0]


F = {"FunctionName": "fn0001"}
API = {"restApiId": "abc123"}
DOMAIN = {"domainName": "api.example.com"}


@pytest.mark.parametrize(
    ("service", "method", "kwargs", "operation"),
    [
        ("lambda", "list_aliases", {**F, "MaxItems": 50}, "ListAliases"),
        ("lambda", "create_alias", {**F, "Name": "prod", "FunctionVersion": "2"}, "CreateAlias"),
        ("lambda", "get_alias", {**F, "Name": "prod"}, "GetAlias"),
        ("lambda", "update_alias", {**F, "Name": "prod", "FunctionVersion": "1"}, "UpdateAlias"),
        ("lambda", "delete_alias", {**F, "Name": "prod"}, "DeleteAlias"),
        ("lambda", "get_policy", {**F, "Qualifier": "prod"}, "GetPolicy"),
        ("lambda", "add_permission", {**F, "StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "apigateway.amazonaws.com"}, "AddPermission"),
        ("lambda", "remove_permission", {**F, "StatementId": "s", "Qualifier": "prod"}, "RemovePermission"),
        ("lambda", "list_versions_by_function", F, "ListVersionsByFunction"),
        ("lambda", "publish_version", F, "PublishVersion"),
        ("lambda", "get_function", F, "GetFunction"),
        ("lambda", "get_function_configuration", F, "GetFunctionConfiguration"),
        ("lambda", "update_function_configuration", {**F, "Timeout": 3}, "UpdateFunctionConfiguration"),
        ("lambda", "list_functions", {}, "ListFunctions"),
        ("lambda", "get_function", {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:fn0001"}, "GetFunction"),
        ("apigateway", "get_rest_apis", {"limit": 500}, "GetRestApis"),
        ("apigateway", "create_rest_api", {"name": "x"}, "CreateRestApi"),
        ("apigateway", "import_rest_api", {"body": b"{}"}, "ImportRestApi"),
        ("apigateway", "get_stages", API, "GetStages"),
        ("apigateway", "update_stage", {**API, "stageName": "prod", "patchOperations": []}, "UpdateStage"),
        ("apigateway", "delete_stage", {**API, "stageName": "prod"}, "DeleteStage"),
        ("apigateway", "get_resources", {**API, "embed": ["methods"], "limit": 500}, "GetResources"),
        ("apigateway", "get_deployments", API, "GetDeployments"),
        ("apigateway", "create_deployment", API, "CreateDeployment"),
        ("apigateway", "get_base_path_mappings", DOMAIN, "GetBasePathMappings"),
        ("apigateway", "create_base_path_mapping", {**DOMAIN, "restApiId": "abc123", "basePath": "v1"}, "CreateBasePathMapping"),
        ("apigateway", "update_base_path_mapping", {**DOMAIN, "basePath": "v1", "patchOperations": []}, "UpdateBasePathMapping"),
        ("apigateway", "delete_base_path_mapping", {**DOMAIN, "basePath": "v1"}, "DeleteBasePathMapping"),
        ("sqs", "list_queues", {}, "ListQueues"),
        ("iam", "get_role", {"RoleName": "r"}, "GetRole"),
        ("sts", "get_caller_identity", {}, "GetCallerIdentity"),
    ],
)
def test_requests_are_classified_as_botocore_sends_them(service: str, method: str, kwargs: dict[str, Any], operation: str) -> None:
    assert _classified(service, method, **kwargs) == (service, operation)


def test_an_unknown_path_or_an_unsigned_request_gets_a_generic_name() -> None:
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=t/20240101/us-east-1/apigateway/aws4_request, SignedHeaders=host, Signature=0"}
    assert classify("GET", "/no/such/path", signed) == ("apigateway", "Other")
    assert classify("POST", "/moto-api/reset", {}) == ("unsigned", "Other")


def test_bound_seconds_is_the_busiest_bucket_past_its_burst() -> None:
    # GetPolicy: (45-15)/15 = 2 s; lambda: (20-15)/15; GetResources: (15-5)/2.5 = 4 s; apigateway: (55-40)/10 = 1.5 s.
    counts = {"lambda.GetPolicy": 45, "lambda.ListAliases": 20, "apigateway.GetResources": 15, "apigateway.GetStages": 40}
    assert bound_seconds(counts) == pytest.approx(4.0)
    # An API Gateway operation with its own bucket also counts in the shared one: (5+95-40)/10 = 6 s.
    assert bound_seconds({"apigateway.GetResources": 5, "apigateway.GetStages": 95}) == pytest.approx(6.0)
    # Lambda's own buckets do not draw from the control-plane bucket (15 + 15 fit both bursts); other services have none.
    assert bound_seconds({"lambda.GetPolicy": 15, "lambda.ListAliases": 15, "sqs.ListQueues": 1000}) == 0.0
    assert bound_seconds({"lambda.GetPolicy": 45}, scaled_quotas(3)) == pytest.approx(30 / 45)


def test_the_budget_of_a_quota_share_paces_reads_at_the_share_and_writes_at_the_whole_quota() -> None:
    # Reads at half of GetPolicy's bucket: (45 - 7.5) / 7.5 = 5 s, not (45 - 15) / 15 = 2 s.
    assert bound_seconds({"lambda.GetPolicy": 45}, share=0.5) == pytest.approx(5.0)
    # Writes at the whole quota: 45 UpdateAlias, (45 - 15) / 15 = 2 s at any share.
    assert bound_seconds({"lambda.UpdateAlias": 45}, share=0.5) == pytest.approx(2.0)
    # Both in one bucket: the reads' share bounds them (20 - 7.5) / 7.5, the whole bucket (50 - 15) / 15.
    assert bound_seconds({"lambda.ListAliases": 20, "lambda.UpdateAlias": 30}, share=0.5) == pytest.approx(35 / 15)
    assert bound_seconds({"lambda.ListAliases": 45, "lambda.UpdateAlias": 5}, share=0.5) == pytest.approx(37.5 / 7.5)


def test_requests_are_counted_per_caller() -> None:
    assert caller_of({"User-Agent": "Boto3/1.35 md/Botocore#1.35 pointsman/0.1.0"}) == "pointsman"
    assert caller_of({"user-agent": "Boto3/1.35 deployer/1"}) == "other"
    assert caller_of({}) == "other"


def test_scaled_quotas_and_the_matching_pointsman_setting() -> None:
    quotas = scaled_quotas(4)
    assert set(quotas) == set(DEFAULT_QUOTAS)
    assert quotas["apigateway"].rate == 40 and quotas["apigateway"].burst == 40
    assert quotas["apigateway.CreateDeployment"].rate == pytest.approx(0.8)
    from controller.aws.ratelimit import parse_limits

    parsed = parse_limits(rate_limits_env(quotas))
    assert parsed is not None
    assert {k: (round(q.rate, 4), q.burst) for k, q in parsed.items()} == {k: (round(q.rate, 4), q.burst) for k, q in quotas.items()}


# ------------------------------------------------------------------ against moto's server


def _reset_moto(endpoint: str) -> None:
    # ThreadedMotoServer serves the process-wide moto backends: start and end each test clean.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@pytest.fixture
def moto_url(moto_server: str) -> Iterator[str]:
    _reset_moto(moto_server)
    yield moto_server
    _reset_moto(moto_server)


def _client(service: str, url: str, attempts: int = 1) -> Any:
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=REGION)
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return session.client(service, endpoint_url=url, config=config)


@pytest.mark.server
def test_past_a_bucket_the_proxy_answers_429_too_many_requests_and_forwards_otherwise(moto_url: str) -> None:
    _client("apigateway", moto_url).create_rest_api(name="seen-through-the-proxy")
    tiny = {"lambda": Quota(0.01, 2), "apigateway": Quota(0.01, 2), "apigateway.GetResources": Quota(0.01, 1)}
    with QuotaProxy(moto_url, quotas=tiny) as proxy:
        assert proxy.url.startswith("http://127.0.0.1:")
        lam, apigw = _client("lambda", proxy.url), _client("apigateway", proxy.url)
        assert lam.list_functions()["Functions"] == []
        assert lam.list_functions()["Functions"] == []
        with pytest.raises(botocore.exceptions.ClientError) as lambda_429:
            lam.list_functions()
        error = lambda_429.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert error["Error"]["Code"] == "TooManyRequestsException"  # from x-amzn-ErrorType
        assert error["Error"]["Message"] == "Rate exceeded"
        assert error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert error["Error"]["Code"] in THROTTLING_CODES

        api = apigw.get_rest_apis()["items"]
        assert [a["name"] for a in api] == ["seen-through-the-proxy"]  # forwarded: moto's answer
        # GetResources draws from its own bucket and the shared one: the shared one is then empty.
        apigw.get_resources(restApiId=api[0]["id"])
        with pytest.raises(botocore.exceptions.ClientError) as apigw_429:
            apigw.get_stages(restApiId=api[0]["id"])
        assert apigw_429.value.response["Error"] == {"Code": "TooManyRequestsException", "Message": "Too Many Requests"}

        # Other services pass unthrottled, and are counted.
        for _ in range(5):
            _client("sts", proxy.url).get_caller_identity()

        counts = proxy.snapshot()
        assert counts["requests"] == {
            "apigateway.GetResources": 1,
            "apigateway.GetRestApis": 1,
            "apigateway.GetStages": 1,
            "lambda.ListFunctions": 3,
            "sts.GetCallerIdentity": 5,
        }
        assert counts["throttled"] == {"apigateway.GetStages": 1, "lambda.ListFunctions": 1}
        assert counts["forwarded"]["lambda.ListFunctions"] == 2 and "apigateway.GetStages" not in counts["forwarded"]
        proxy.reset()
        assert proxy.snapshot()["requests"] == {}
        assert lam.list_functions()["Functions"] == []  # reset refills the buckets


@pytest.mark.server
def test_botocore_retries_the_429_as_throttling(moto_url: str) -> None:
    with QuotaProxy(moto_url, quotas={"lambda": Quota(0.01, 1)}) as proxy:
        lam = _client("lambda", proxy.url, attempts=2)
        lam.list_functions()
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            lam.list_functions()
        assert raised.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 1  # retried once, then given up
        assert proxy.snapshot()["throttled"] == {"lambda.ListFunctions": 2}


@pytest.mark.server
def test_added_latency_and_the_scale_factor(moto_url: str) -> None:
    with QuotaProxy(moto_url, scale=0.001, latency_ms=150) as proxy:
        assert proxy.quotas["lambda"].rate == pytest.approx(0.015)
        lam = _client("lambda", proxy.url)
        started = time.monotonic()
        for _ in range(15):  # the burst
            lam.list_functions()
        assert time.monotonic() - started >= 15 * 0.15
        with pytest.raises(botocore.exceptions.ClientError):
            lam.list_functions()
        assert proxy.snapshot()["throttled"] == {"lambda.ListFunctions": 1}


@pytest.mark.server
def test_a_small_converged_estate_planned_through_the_proxy_makes_no_write(moto_url: str, tmp_path: Path) -> None:
    shape = Shape(functions=20, apis=2, domains=1, mappings_per_domain=2)
    estate = seed(moto_url, shape, tmp_path / "spec")
    first = converge(estate)
    assert first.exit_code == 0 and not first.error_lines, first.stderr
    lam, apigw, _ = direct_clients(moto_url)
    assert len(lam.list_aliases(FunctionName="fn0019")["Aliases"]) == 3
    assert {s["stageName"] for s in apigw.get_stages(restApiId=estate.api_ids["api001"])["item"]} == {"prod", "dev", "canary"}
    policy = json.loads(lam.get_policy(FunctionName="fn0003", Qualifier="canary")["Policy"])
    assert any(s["Resource"].endswith(":function:fn0003:canary") for s in policy["Statement"])  # the first apply added it

    with QuotaProxy(moto_url, scale=10, latency_ms=2) as proxy:
        env = {**aws_env(proxy.url), "POINTSMAN_RATE_LIMITS": rate_limits_env(proxy.quotas)}
        planned = run_pointsman(["plan", "--spec", str(estate.spec_dir)], env, timeout=60)
        counts = proxy.snapshot()
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    assert planned.error_lines == []
    writes = {op: n for op, n in counts["forwarded"].items() if is_write(op)}
    assert writes == {}
    for operation, least in shape.minimum_reads().items():
        assert counts["forwarded"].get(operation, 0) >= least, (operation, counts["forwarded"])
    assert counts["errors"] == {}, counts["errors"]  # every alias has its invoke permission: no 404 either
    assert planned.peak_rss_kib > 10_000


def test_importing_a_small_estate_through_the_proxy_reads_only_and_the_spec_is_in_sync(moto_url: str, tmp_path: Path) -> None:
    """The benchmark's import scenario in small: through the quota proxy, no write, at least the
    minimum reads, and the imported spec plans in sync."""
    shape = Shape(functions=20, apis=2, domains=1, mappings_per_domain=2)
    estate = seed(moto_url, shape, tmp_path / "spec")
    assert converge(estate).exit_code == 0
    out = tmp_path / "imported"
    with QuotaProxy(moto_url, scale=10, latency_ms=2) as proxy:
        env = {**aws_env(proxy.url), "POINTSMAN_RATE_LIMITS": rate_limits_env(proxy.quotas)}
        imported = run_pointsman(["import", "--out", str(out)], env, timeout=120)
        counts = proxy.snapshot()
        assert imported.exit_code == 0, imported.stdout + imported.stderr
        assert {op: n for op, n in counts["forwarded"].items() if is_write(op)} == {}
        for operation, least in import_minimum(shape).items():
            assert counts["forwarded"].get(operation, 0) >= least, (operation, counts["forwarded"])
        planned = run_pointsman(["plan", "--spec", str(out)], env, timeout=120)
    assert planned.exit_code == 0, planned.stdout + planned.stderr


@pytest.mark.server
def test_new_aliases_planned_through_the_proxy_cost_no_get_policy(moto_url: str, tmp_path: Path) -> None:
    """The benchmark's "new aliases plan" in small: 200 aliases declared and not created cost no
    read; the aliases that exist, one GetPolicy each, as a converged plan."""
    shape = Shape(functions=20, apis=2, domains=1, mappings_per_domain=2)
    estate = seed(moto_url, shape, tmp_path / "spec")
    assert converge(estate).exit_code == 0
    declare_new_aliases(estate, count=200)
    with QuotaProxy(moto_url, scale=10, latency_ms=2) as proxy:
        env = {**aws_env(proxy.url), "POINTSMAN_RATE_LIMITS": rate_limits_env(proxy.quotas)}
        planned = run_pointsman(["plan", "--spec", str(new_aliases_dir(estate))], env, timeout=60)
        counts = proxy.snapshot()
    assert planned.exit_code == 2 and planned.error_lines == [], planned.stdout + planned.stderr  # drift: 200 aliases to create
    assert "new0009" in planned.stdout
    assert counts["forwarded"]["lambda.GetPolicy"] == shape.aliases
    assert counts["forwarded"]["lambda.ListAliases"] == shape.functions
    assert counts["errors"] == {}, counts["errors"]  # not one 404
    assert {op: n for op, n in counts["forwarded"].items() if is_write(op)} == {}


def test_peak_rss_is_pointsmans_own_not_the_benchmarks(moto_url: str) -> None:
    # Linux carries a parent's peak into a forked child: measured naively, `pointsman --version`
    # would report at least this test process's RSS (moto's server is in it).
    import resource

    own = run_pointsman(["--version"], aws_env(moto_url), timeout=60)
    assert own.exit_code == 0, own.stderr
    assert 5_000 < own.peak_rss_kib < resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.server
def test_the_event_driven_heal_through_the_proxy_reads_only_the_touched_function(moto_url: str, tmp_path: Path) -> None:
    shape = Shape(functions=10, apis=1, domains=1, mappings_per_domain=1)
    estate = seed(moto_url, shape, tmp_path / "spec")
    assert converge(estate).exit_code == 0
    with QuotaProxy(moto_url, scale=10, latency_ms=2) as proxy:
        figures = event_heal(estate, proxy, scale=10, events=1)
    assert figures.full_run_status == "in_sync", figures.errors
    (event,) = figures.events
    assert event.reported_s is not None and event.healed_s is not None, figures.lines()
    assert event.reported_s <= event.healed_s
    lam = direct_clients(moto_url)[0]
    assert all(lam.get_alias(FunctionName=f, Name="prod")["FunctionVersion"] == "2" for f in estate.functions)
    forwarded = {op: n for op, n in event.counts["forwarded"].items() if op.startswith(("lambda.", "apigateway."))}
    # The heal's own reads, one write, and the healed function's aliases read again for the routing view.
    assert forwarded == {**{op: 1 for op in EVENT_MINIMUM}, "lambda.ListAliases": 2, "lambda.UpdateAlias": 1}
    assert figures.exit_code == 0 and figures.peak_rss_kib > 10_000
    assert "event heal" in figures.lines()[0]


@pytest.mark.server
def test_a_plan_beside_a_concurrent_deployer_through_the_proxy(moto_url: str, tmp_path: Path) -> None:
    """The benchmark's shared quota in small: the deployer's requests and Pointsman's are counted
    apart, the plan is in sync and writes nothing (figures, not timings, are the benchmark's)."""
    shape = Shape(functions=10, apis=1, domains=1, mappings_per_domain=1)
    estate = seed(moto_url, shape, tmp_path / "spec")
    assert converge(estate).exit_code == 0
    with QuotaProxy(moto_url, scale=10, latency_ms=2) as proxy:
        shared = shared_quota(estate, proxy, scale=10, share=0.5)
        theirs = proxy.snapshot("other")["requests"]
    figures = shared.figures
    assert figures.run.exit_code == 0, figures.run.stdout + figures.run.stderr
    assert figures.share == 0.5 and figures.writes == {}
    for operation, least in shape.minimum_reads().items():
        assert figures.counts["forwarded"].get(operation, 0) >= least, (operation, figures.counts["forwarded"])
    assert shared.deployer_requests == sum(theirs.values()) > 0
    assert set(theirs) <= {f"{service}.{operation}" for service, operation, _, _ in DEPLOYER_CALLS}
    assert figures.bound_s > 0
    assert shared.lines()[0].startswith("shared quota     functions=   10 share=0.5 deployer: ")


def test_targets_slice_each_account_has_its_quota_and_a_failing_target_fails_alone() -> None:
    """A fast slice of `make bench-scale --targets`: 3 emulated accounts x 4 functions behind the
    proxy with per-account quotas (x10), one plan of all three; then t00 denied and t01 answered
    429 half the time: t00 fails with AccessDenied, t02 is planned in sync all the same."""
    from benchmarks.bench_scale import bench_targets, target_account

    figures = bench_targets(3, 4, scale=10, latency_ms=2, share=0.5, throttle_deadline=20)
    assert figures.clean.exit_code == 0, figures.clean.stderr[-2000:]
    assert sorted(figures.bounds) == [target_account(i) for i in range(3)]  # every account's calls counted apart
    assert sorted(figures.clean_seconds) == ["t00", "t01", "t02"]
    assert figures.faulty is not None and figures.faulty.exit_code == 1
    assert figures.faulty_states["t00"] == "failed" and figures.faulty_states["t02"] == "in sync"
    assert "AccessDenied" in figures.faulty.stderr
    assert any("targets" in line for line in figures.lines())
