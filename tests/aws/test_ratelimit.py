"""Client-side pacing per AWS quota bucket: token buckets, AIMD on throttling, wired into every call."""

from __future__ import annotations

from typing import Any

import pytest

from controller.aws.clients import AwsClients, AwsConfigError
from controller.aws.ratelimit import DEFAULT_QUOTAS, HEADROOM, Bucket, Quota, RateLimiter, parse_limits


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_bucket_lets_the_burst_through_then_paces_at_its_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"apigateway.GetResources": Quota(2.5, 5)}, clock=clock, sleep=clock.sleep, headroom=1.0, share=1.0)
    for _ in range(10):
        limiter.before("apigateway", "GetResources")
    # 5 at once, then one every 0.4 s: the quota is 5 per 2 seconds.
    assert clock.slept == pytest.approx([0.4] * 5)
    assert clock.now == pytest.approx(2.0)


def test_api_gateway_operations_share_the_account_wide_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(DEFAULT_QUOTAS, clock=clock, sleep=clock.sleep, headroom=1.0)
    names = [b.name for b in limiter.buckets_for("apigateway", "CreateDeployment")]
    assert names == ["apigateway.CreateDeployment", "apigateway"]
    assert [b.name for b in limiter.buckets_for("lambda", "GetPolicy")] == ["lambda.GetPolicy"]  # its own quota only
    assert [b.name for b in limiter.buckets_for("lambda", "UpdateAlias")] == ["lambda"]
    for _ in range(3):
        limiter.before("apigateway", "CreateDeployment")
    assert clock.now == pytest.approx(10.0)  # one per 5 seconds


def test_throttling_halves_the_rate_and_successes_win_it_back() -> None:
    clock = FakeClock()
    bucket = Bucket("lambda", Quota(16, 16), clock)
    bucket.throttled()
    bucket.throttled()
    assert bucket.rate == 4 and bucket.throttles == 2
    for _ in range(100):
        bucket.succeeded()
    assert bucket.rate == 16  # never above the quota
    for _ in range(20):
        bucket.throttled()
    assert bucket.rate == 1  # nor below a sixteenth of it


def test_limits_from_the_environment() -> None:
    quotas = parse_limits("apigateway=5:20, lambda.GetPolicy=10")
    assert quotas is not None
    assert (quotas["apigateway"].rate, quotas["apigateway"].burst) == (5, 20)
    assert (quotas["lambda.GetPolicy"].rate, quotas["lambda.GetPolicy"].burst) == (10, 10)
    assert quotas["lambda"] == DEFAULT_QUOTAS["lambda"]
    assert parse_limits("off") is None


@pytest.mark.parametrize("bad", ["apigateway", "apigateway=0", "apigateway=fast", "=3", "lambda=2:0"])
def test_a_bad_limit_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("POINTSMAN_RATE_LIMITS", bad)
    with pytest.raises(AwsConfigError, match="POINTSMAN_RATE_LIMITS: .* is not NAME=RATE"):
        AwsClients()


def test_every_call_is_paced_and_a_throttled_answer_slows_its_bucket(estate: dict[str, Any], clients: AwsClients) -> None:
    from botocore.awsrequest import AWSResponse

    clock = FakeClock()
    limiter = RateLimiter({"apigateway": Quota(10, 2), "lambda": Quota(15, 15)}, clock=clock, sleep=clock.sleep, share=1.0)
    paced = AwsClients(max_attempts=3, rate_limiter=limiter)

    class _Raw:
        def stream(self, **_: Any):
            yield b'{"message": "Too Many Requests"}'

    answered: list[int] = []

    def throttle_once(request: Any, **_: Any) -> AWSResponse | None:
        if not answered:
            answered.append(429)
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}
            return AWSResponse(request.url, 429, headers, _Raw())
        return None

    paced.apigateway.meta.events.register_first("before-send.api-gateway.GetRestApis", throttle_once)
    for _ in range(4):
        paced.apigateway.get_rest_apis()
    bucket = limiter.buckets["apigateway"]
    # 5 attempts (one throttled and retried): 2 from the burst, the rest paced, and slower than
    # the quota's 0.1 s after the 429 halved the rate, speeding up again with each success.
    assert bucket.throttles == 1
    assert len(clock.slept) == 3
    assert all(wait > 0.1 for wait in clock.slept) and clock.slept == sorted(clock.slept, reverse=True)
    assert paced.counter.snapshot()["apigateway.GetRestApis"] == 4  # the retry is inside one call


def test_pointsman_paces_a_little_under_each_quota() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"lambda": Quota(10, 1)}, clock=clock, sleep=clock.sleep, share=1.0)
    for _ in range(11):
        limiter.before("lambda", "ListAliases")
    # One token at once, then ten at HEADROOM x 10 per second: a little over a second.
    assert clock.now == pytest.approx(10 / (10 * HEADROOM))
    assert 0.9 <= HEADROOM < 1
