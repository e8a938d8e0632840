"""Client-side pacing per AWS quota bucket: stay under a quota instead of bouncing off it.

Every HTTP attempt to AWS first takes a token from the buckets of its operation: token
buckets shared by every thread, by reads and by writes. An operation with a published quota
of its own (GetPolicy, GetResources, CreateDeployment...) has its own bucket; API Gateway
operations also share the account-wide management bucket. On throttling anyway (other tools
share the account's quota), the bucket's rate halves; each success gives a twentieth of the
quota back, up to the quota (AIMD).

Defaults are AWS's published per-account, per-Region quotas (``DEFAULT_QUOTAS`` names the
source of each); ``POINTSMAN_RATE_LIMITS`` overrides them (``apigateway=5:20,lambda.GetPolicy=10``
as rate per second, optionally ``:burst``) or turns pacing off (``off``). Pointsman paces at
``HEADROOM`` of each rate: AWS's buckets then keep a few spare tokens, and a request delayed on
the way (so that two arrive closer together than they were sent) is not throttled.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "ThrottledException", "SlowDown"})


@dataclass(frozen=True)
class Quota:
    rate: float  # requests per second
    burst: float  # bucket capacity
    source: str = ""


# AWS quotas per account and Region: API Gateway "Amazon API Gateway quotas" (quotas for creating,
# deploying and managing an API, which cannot be increased); Lambda "Lambda quotas" (API requests).
DEFAULT_QUOTAS: dict[str, Quota] = {
    "lambda": Quota(15, 15, "Lambda: control plane API requests, 15 per second"),
    "lambda.GetPolicy": Quota(15, 15, "Lambda: GetPolicy, 15 per second"),
    "lambda.GetFunction": Quota(100, 100, "Lambda: GetFunction, 100 per second"),
    "apigateway": Quota(10, 40, "API Gateway: total management operations, 10 per second, burst 40"),
    "apigateway.GetResources": Quota(2.5, 5, "API Gateway: GetResources, 5 per 2 seconds"),
    "apigateway.CreateDeployment": Quota(0.2, 1, "API Gateway: CreateDeployment, 1 per 5 seconds"),
    "apigateway.CreateRestApi": Quota(1 / 3, 1, "API Gateway: CreateRestApi (regional), 1 per 3 seconds"),
    "apigateway.CreateResource": Quota(5, 5, "API Gateway: CreateResource, 5 per second"),
    "apigateway.DeleteResource": Quota(5, 5, "API Gateway: DeleteResource, 5 per second"),
    # Systems Manager endpoints and quotas: Parameter Store's default throughput is 40 per second,
    # shared by GetParameter, GetParameters and GetParametersByPath (applications read the same
    # parameters at run time: Pointsman takes a quarter of it).
    "ssm.GetParameters": Quota(10, 10, "Systems Manager: Parameter Store default throughput, 40 per second (a quarter)"),
}
# Services whose per-operation buckets also draw from the service-wide one.
_SHARED_TOTAL = frozenset({"apigateway"})
# The share of each quota Pointsman paces itself to.
HEADROOM = 0.97


class RateLimitError(ValueError):
    """A malformed POINTSMAN_RATE_LIMITS."""


class Bucket:
    """A token bucket whose rate adapts: halved on throttling, raised slowly on success."""

    def __init__(self, name: str, quota: Quota, clock: Callable[[], float] = time.monotonic, headroom: float = 1.0) -> None:
        self.name = name
        self.ceiling = quota.rate * headroom
        self.floor = self.ceiling / 16
        self.rate = self.ceiling
        self.capacity = max(1.0, quota.burst)
        self.tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds callers were asked to wait, in all
        self.throttles = 0

    def reserve(self) -> float:
        """Take a token; return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
            self._last = now
            self.tokens -= 1
            wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
            self.waited += wait
            return wait

    def throttled(self) -> None:
        with self._lock:
            self.throttles += 1
            self.rate = max(self.floor, self.rate / 2)

    def succeeded(self) -> None:
        with self._lock:
            self.rate = min(self.ceiling, self.rate + self.ceiling / 20)


class RateLimiter:
    """The buckets of one process, keyed by quota family."""

    def __init__(
        self,
        quotas: Mapping[str, Quota] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        headroom: float = HEADROOM,
    ) -> None:
        self.buckets = {name: Bucket(name, quota, clock, headroom) for name, quota in (quotas or DEFAULT_QUOTAS).items()}
        self._sleep = sleep

    def buckets_for(self, service: str, operation: str) -> list[Bucket]:
        own = self.buckets.get(f"{service}.{operation}")
        total = self.buckets.get(service)
        if own is None:
            return [total] if total is not None else []
        return [own, total] if service in _SHARED_TOTAL and total is not None else [own]

    def before(self, service: str, operation: str) -> None:
        wait = max((bucket.reserve() for bucket in self.buckets_for(service, operation)), default=0.0)
        if wait > 0:
            self._sleep(wait)

    def after(self, service: str, operation: str, error_code: str | None) -> None:
        for bucket in self.buckets_for(service, operation):
            if error_code in THROTTLING_CODES:
                bucket.throttled()
            elif error_code is None:
                bucket.succeeded()


def parse_limits(text: str, base: Mapping[str, Quota] = DEFAULT_QUOTAS) -> dict[str, Quota] | None:
    """``"apigateway=5:20,lambda.GetPolicy=10"`` over the defaults; ``"off"``: None (no pacing)."""
    text = text.strip()
    if text.lower() in ("off", "none", "0"):
        return None
    quotas = dict(base)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        rate_text, _, burst_text = value.partition(":")
        try:
            rate = float(rate_text)
            burst = float(burst_text) if burst_text else max(1.0, rate)
        except ValueError:
            rate = burst = -1.0
        if not sep or not name.strip() or not rate > 0 or not burst >= 1:
            raise RateLimitError(f"POINTSMAN_RATE_LIMITS: {item!r} is not NAME=RATE[:BURST] with RATE > 0 per second and BURST >= 1 (or 'off')")
        quotas[name.strip()] = Quota(rate, burst, "POINTSMAN_RATE_LIMITS")
    return quotas


def from_environment(environ: Mapping[str, str] | None = None) -> RateLimiter | None:
    """The limiter the environment asks for: the AWS quotas unless POINTSMAN_RATE_LIMITS says otherwise."""
    text = (environ if environ is not None else os.environ).get("POINTSMAN_RATE_LIMITS", "")
    quotas = parse_limits(text) if text else dict(DEFAULT_QUOTAS)
    return RateLimiter(quotas) if quotas is not None else None
