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

A fair share: the account's other deploy pipelines draw from the same quotas. Reads (Get*,
List*, Describe*: a plan's scan) are paced at ``POINTSMAN_QUOTA_SHARE`` of each bucket
(``--quota-share``, default half); writes (the calls an apply or a rollout makes) at the full
quota. A read takes a token from the bucket and from its share of it, a write from the bucket
only: reads never use more than the share, reads and writes together never more than the quota.

Buckets are per account and Region, as AWS's quotas are: every client of one process for the
same account and Region shares one limiter (``shared``), another account or Region has its own.
"""

from __future__ import annotations

import math
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
# The share of each bucket reads are paced to (POINTSMAN_QUOTA_SHARE, --quota-share).
DEFAULT_QUOTA_SHARE = 0.5
# Operations that only read: paced at the share. Every other operation writes.
READ_PREFIXES = ("Get", "List", "Describe")


def is_read(operation: str) -> bool:
    """``GetPolicy``, ``ListAliases`` -> True; ``UpdateAlias``, ``CreateDeployment`` -> False."""
    return operation.startswith(READ_PREFIXES)


class RateLimitError(ValueError):
    """A malformed POINTSMAN_RATE_LIMITS or POINTSMAN_QUOTA_SHARE."""


class Bucket:
    """A token bucket whose rate adapts: halved on throttling, raised slowly on success.

    Reads also draw on ``share`` of it: a second bucket of ``share`` times the rate and the
    burst (at least one token), refilled and adapted with the first."""

    def __init__(self, name: str, quota: Quota, clock: Callable[[], float] = time.monotonic, headroom: float = 1.0, share: float = 1.0) -> None:
        self.name = name
        self.ceiling = quota.rate * headroom
        self.floor = self.ceiling / 16
        self.rate = self.ceiling
        self.capacity = max(1.0, quota.burst)
        self.tokens = self.capacity
        self.share = share
        self.read_capacity = max(1.0, quota.burst * share)
        self.read_tokens = self.read_capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds callers were asked to wait, in all
        self.throttles = 0

    @property
    def read_rate(self) -> float:
        """Requests per second reads are paced to: the share of the bucket's rate."""
        return self.rate * self.share

    def reserve(self, read: bool = False) -> float:
        """Take a token (a read: also one of its share); return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._last
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.read_tokens = min(self.read_capacity, self.read_tokens + elapsed * self.read_rate)
            self._last = now
            self.tokens -= 1
            wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
            if read:
                self.read_tokens -= 1
                if self.read_tokens < 0:
                    wait = max(wait, -self.read_tokens / self.read_rate)
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
    """The buckets of one account and Region, keyed by quota family; reads paced at ``share`` of each."""

    def __init__(
        self,
        quotas: Mapping[str, Quota] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        headroom: float = HEADROOM,
        share: float = DEFAULT_QUOTA_SHARE,
    ) -> None:
        if not 0 < share <= 1:
            raise RateLimitError(f"the quota share must be above 0 and at most 1, not {share!r}")
        self.share = share
        self.buckets = {name: Bucket(name, quota, clock, headroom, share) for name, quota in (quotas or DEFAULT_QUOTAS).items()}
        self._sleep = sleep

    def buckets_for(self, service: str, operation: str) -> list[Bucket]:
        own = self.buckets.get(f"{service}.{operation}")
        total = self.buckets.get(service)
        if own is None:
            return [total] if total is not None else []
        return [own, total] if service in _SHARED_TOTAL and total is not None else [own]

    def before(self, service: str, operation: str) -> None:
        """Wait for the operation's tokens: a read's at the share of each bucket, a write's at the full quota."""
        read = is_read(operation)
        wait = max((bucket.reserve(read) for bucket in self.buckets_for(service, operation)), default=0.0)
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


def quota_share(environ: Mapping[str, str] | None = None) -> float:
    """POINTSMAN_QUOTA_SHARE (above 0, at most 1), else ``DEFAULT_QUOTA_SHARE``."""
    raw = (environ if environ is not None else os.environ).get("POINTSMAN_QUOTA_SHARE", "").strip()
    if not raw:
        return DEFAULT_QUOTA_SHARE
    try:
        share = float(raw)
    except ValueError:
        share = math.nan
    if not 0 < share <= 1:  # NaN fails it too
        raise RateLimitError(f"POINTSMAN_QUOTA_SHARE must be a number above 0 and at most 1, not {raw!r}")
    return share


def from_environment(environ: Mapping[str, str] | None = None, share: float | None = None) -> RateLimiter | None:
    """A new limiter as the environment asks: the AWS quotas unless POINTSMAN_RATE_LIMITS says
    otherwise, reads at ``share`` (None: POINTSMAN_QUOTA_SHARE) of each."""
    env = environ if environ is not None else os.environ
    text = env.get("POINTSMAN_RATE_LIMITS", "")
    quotas = parse_limits(text) if text else dict(DEFAULT_QUOTAS)
    share = quota_share(env) if share is None else share
    return RateLimiter(quotas, share=share) if quotas is not None else None


_shared: dict[tuple[str, str, str, float], RateLimiter | None] = {}
_shared_lock = threading.Lock()


def shared(region: str | None, account: str | None = None, environ: Mapping[str, str] | None = None, share: float | None = None) -> RateLimiter | None:
    """The limiter of one account and Region, as the environment configures it: every client of
    this process for the same account and Region (and settings) shares its buckets, as AWS's
    quotas are per account and Region; another account or Region has buckets of its own. An
    account not known (None) is one account per Region."""
    env = environ if environ is not None else os.environ
    share = quota_share(env) if share is None else share
    key = (account or "", region or "", env.get("POINTSMAN_RATE_LIMITS", "").strip(), share)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = from_environment(env, share)
        return _shared[key]


def forget_shared() -> None:
    """Drop every shared limiter: the next clients start with full buckets."""
    with _shared_lock:
        _shared.clear()
