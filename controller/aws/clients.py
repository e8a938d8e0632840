"""The one way Pointsman talks to AWS: a client factory that counts every call.

Honours the standard AWS environment (AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION,
AWS_ENDPOINT_URL and the per-service AWS_ENDPOINT_URL_<SERVICE>, AWS_MAX_ATTEMPTS,
AWS_RETRY_MODE), so the same command runs against AWS or an emulator. Retries use
botocore's standard mode unless AWS_RETRY_MODE (or the profile) says otherwise.

Every call is bounded: POINTSMAN_AWS_CONNECT_TIMEOUT (default 5 s) and
POINTSMAN_AWS_READ_TIMEOUT (default 15 s) per attempt, AWS_MAX_ATTEMPTS attempts (default
5, at most 10). Once a call has used up its attempts on timeouts, later calls to the same endpoint
fail at once with the same error (for the lifetime of the clients, or ``timeout_hold``
seconds), so a hung endpoint costs one call's worth of waiting, not one per call.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import structlog
from botocore.parsers import ResponseParserError

from controller import __version__
from controller.aws import ratelimit
from controller.aws.ratelimit import READ_PREFIXES, RateLimiter

DEFAULT_MAX_ATTEMPTS = 5
MAX_ATTEMPTS = 10  # AWS_MAX_ATTEMPTS above this is taken as this
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 15.0
USER_AGENT = f"pointsman/{__version__}"
DEFAULT_THROTTLE_DEADLINE = 900.0  # seconds a reconcile keeps retrying throttled calls
ONE_SHOT_THROTTLE_DEADLINE = 300.0  # the same for a one-shot command (plan, apply, reconcile --once): a CI job fails in minutes
WAITING_EVERY = 10.0  # seconds between two "waiting" lines while calls are throttled
RETRY_MODES = ("standard", "adaptive", "legacy")

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger("pointsman.aws")


def is_write(operation: str) -> bool:
    """``lambda.UpdateAlias`` -> True; ``apigateway.GetStages`` -> False.

    A planned wait (``lambda.Wait:FunctionUpdated``, a ``wait:`` call) polls with reads: not a write.
    """
    name = operation.split(".", 1)[-1]
    return not name.startswith(READ_PREFIXES) and not name.lower().startswith("wait:")


def write_calls(calls: Mapping[str, int]) -> dict[str, int]:
    """Only the write operations of a ``{"service.Operation": count}`` mapping."""
    return {op: n for op, n in calls.items() if is_write(op)}


class AwsConfigError(Exception):
    """The AWS environment cannot make a client (bad endpoint URL, region, retry or timeout setting)."""


class UnexpectedResponse(Exception):
    """An AWS endpoint answered, but not with what the API defines (garbage, or the wrong shape)."""

    def __init__(self, operation: str, endpoint: str, detail: str) -> None:
        super().__init__(f"{operation}: unexpected response from {endpoint}: {detail}")
        self.operation = operation
        self.endpoint = endpoint


class CallCounter:
    """Thread-safe count of API calls by ``service.Operation`` (one per request, not per retry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class _Calls(threading.local):
    """The operations (and their endpoints) one thread made inside ``expecting_shapes``."""

    made: list[tuple[str, str]] | None = None


@dataclass
class _Timeout:
    """A call that used up its attempts on timeouts: later calls to its endpoint fail at once."""

    at: float
    error: type[botocore.exceptions.BotoCoreError]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise AwsConfigError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


class AwsClients:
    """Creates and caches boto3 clients; every call made through them is counted."""

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        *,
        region: str | None = None,
        profile: str | None = None,
        max_attempts: int | None = None,
        retry_mode: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        timeout_hold: float | None = None,
        throttle_deadline: float | None = None,
        counter: CallCounter | None = None,
        rate_limiter: RateLimiter | None | bool = True,
        quota_share: float | None = None,
        account: str | None = None,
    ) -> None:
        """``max_attempts`` counts every try (AWS_MAX_ATTEMPTS semantics); ``None`` takes
        AWS_MAX_ATTEMPTS / the profile's max_attempts, else 5. ``retry_mode`` likewise
        (AWS_RETRY_MODE, else standard). Timeouts default to POINTSMAN_AWS_CONNECT_TIMEOUT
        and POINTSMAN_AWS_READ_TIMEOUT. ``timeout_hold``: how long calls to an endpoint
        that timed out fail at once (``None``: as long as these clients live). ``rate_limiter``:
        True paces requests as POINTSMAN_RATE_LIMITS says (AWS's quotas by default), with the
        buckets every client of this process for the same ``account`` (None: not known) and
        Region shares; False or None does not pace, or a RateLimiter to share. ``quota_share``:
        the share of each bucket reads are paced to (None: POINTSMAN_QUOTA_SHARE, else half)."""
        if session is None:
            # AWS_REGION wins over AWS_DEFAULT_REGION, as in the AWS CLI and the other SDKs
            # (botocore alone reads only AWS_DEFAULT_REGION and the profile).
            region = region or os.environ.get("AWS_REGION") or None
            session = boto3.session.Session(profile_name=profile, region_name=region)
        self.session = session
        self.counter = counter or CallCounter()
        self.connect_timeout = connect_timeout or _env_seconds("POINTSMAN_AWS_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)
        self.read_timeout = read_timeout or _env_seconds("POINTSMAN_AWS_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)
        self.max_attempts = max_attempts if max_attempts is not None else self._configured_attempts()
        if self.max_attempts < 1:
            raise AwsConfigError(f"AWS_MAX_ATTEMPTS must be at least 1, not {self.max_attempts}")
        self.retry_mode = retry_mode or self._configured("retry_mode") or "standard"
        if self.retry_mode not in RETRY_MODES:
            raise AwsConfigError(f"AWS_RETRY_MODE must be one of {', '.join(RETRY_MODES)}, not {self.retry_mode!r}")
        self.timeout_hold = timeout_hold
        self.throttle_deadline = throttle_deadline or _env_seconds("POINTSMAN_THROTTLE_DEADLINE", DEFAULT_THROTTLE_DEADLINE)
        self._deadline_at = time.monotonic() + self.throttle_deadline
        self._waiting_said = 0.0  # when the last "waiting" line was said (monotonic)
        self._waiting_lock = threading.Lock()
        self._config = botocore.config.Config(
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=16,
            # CloudTrail records it as the caller's user agent: the events consumer knows its own writes by it.
            user_agent_extra=USER_AGENT,
        )
        if rate_limiter is True:
            try:
                rate_limiter = ratelimit.shared(session.region_name, account, share=quota_share)
            except ratelimit.RateLimitError as exc:
                raise AwsConfigError(str(exc)) from None
        self.rate_limiter: RateLimiter | None = rate_limiter or None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._calls = _Calls()
        self._timeouts: dict[str, _Timeout] = {}

    def start_deadline(self) -> None:
        """A reconcile starts: throttled calls are retried for ``throttle_deadline`` seconds from now."""
        self._deadline_at = time.monotonic() + self.throttle_deadline

    def _throttled_retry(self, response: Any = None, attempts: int = 1, operation: Any = None, **_: Any) -> float | None:
        """needs-retry: a throttled answer is retried (after a short backoff; the rate limiter
        paces the attempt itself) until the deadline, past botocore's attempts and retry quota."""
        if response is None or response[0].status_code < 400:
            return None
        code = (response[1] or {}).get("Error", {}).get("Code")
        if code not in ratelimit.THROTTLING_CODES:
            return None
        left = self._deadline_at - time.monotonic()
        if left <= 0:
            return None  # past the deadline: botocore's own retry decision, then the error
        self._say_waiting(getattr(operation, "name", None) or "a call", code, attempts, left)
        return min(left, 8.0, 0.25 * 2 ** min(attempts - 1, 5)) * random.uniform(0.5, 1.0)

    def _say_waiting(self, operation: str, code: str, attempts: int, left: float) -> None:
        """While AWS throttles, one line at most every WAITING_EVERY seconds: on a terminal's
        stderr for a person running a command, else an info log line."""
        now = time.monotonic()
        with self._waiting_lock:
            if self._waiting_said and now - self._waiting_said < WAITING_EVERY:
                return
            self._waiting_said = now
        text = f"waiting: AWS throttles {operation} ({code}, attempt {attempts}); retrying for {left:.0f} s more before the throttling deadline"
        if sys.stderr.isatty():
            print(text, file=sys.stderr, flush=True)
        else:
            log.info("waiting on throttling", operation=operation, code=code, attempt=attempts, seconds_left=round(left))

    def _configured(self, name: str) -> Any:
        try:
            return self.session._session.get_config_variable(name)
        except ValueError as exc:
            variable = {"max_attempts": "AWS_MAX_ATTEMPTS", "retry_mode": "AWS_RETRY_MODE"}.get(name, name)
            raise AwsConfigError(f"{variable} (or {name} in the AWS config profile) is not valid: {exc}") from None

    def _configured_attempts(self) -> int:
        value = self._configured("max_attempts")
        if value is None:
            return DEFAULT_MAX_ATTEMPTS
        if int(value) > MAX_ATTEMPTS:
            log.warning("AWS_MAX_ATTEMPTS is more than Pointsman uses; a hung endpoint would block too long", asked=int(value), used=MAX_ATTEMPTS)
            return MAX_ATTEMPTS
        return int(value)

    @property
    def region(self) -> str:
        region = self.session.region_name
        if not region:
            raise botocore.exceptions.NoRegionError()
        return region

    @property
    def worst_case_seconds(self) -> float:
        """The longest one call can wait on an endpoint that never answers (backoff aside)."""
        return self.max_attempts * (self.connect_timeout + self.read_timeout)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                if not self.session.region_name:
                    raise botocore.exceptions.NoRegionError()
                try:
                    client = self.session.client(service, config=self._config)
                except (botocore.exceptions.NoRegionError, botocore.exceptions.ProfileNotFound):
                    raise
                except Exception as exc:  # noqa: BLE001 - an endpoint URL, region or setting botocore refuses
                    raise AwsConfigError(
                        f"cannot make the {service} client: {_one_line(str(exc))} (check AWS_ENDPOINT_URL, AWS_REGION and the AWS profile)"
                    ) from None
                _check_endpoint(service, str(client.meta.endpoint_url))
                self._instrument(service, client)
                self._clients[service] = client
            return self._clients[service]

    def _instrument(self, service: str, client: Any) -> None:
        counter = self.counter
        endpoint = str(client.meta.endpoint_url)

        def before(model: Any, **_: Any) -> None:
            self._fail_fast(endpoint)
            operation = f"{service}.{model.name}"
            counter.add(operation)
            if self._calls.made is not None:
                self._calls.made.append((operation, endpoint))

        def after_error(exception: BaseException, event_name: str = "", **_: Any) -> None:
            if isinstance(exception, ResponseParserError):  # no BotoCoreError, and it names no operation
                exception.pointsman_source = (f"{service}.{event_name.rpartition('.')[2]}", endpoint)
            if isinstance(exception, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
                read = isinstance(exception, botocore.exceptions.ReadTimeoutError)
                exception.kwargs.update(
                    timeout=self.read_timeout if read else self.connect_timeout,
                    phase="read" if read else "connect",
                    attempts=self.max_attempts,
                )
                with self._lock:
                    self._timeouts[endpoint] = _Timeout(time.monotonic(), type(exception), dict(exception.kwargs))

        client.meta.events.register("before-call.*.*", before)
        client.meta.events.register("after-call-error.*.*", after_error)
        # First, so its answer (retry after this long) wins over botocore's exhausted attempts.
        client.meta.events.register_first("needs-retry.*.*", self._throttled_retry)
        limiter = self.rate_limiter
        if limiter is not None:
            # Every HTTP attempt (retries included) waits for its quota buckets; each answer
            # adjusts them. First, so an emulator answering in-process is paced too.
            def pace(event_name: str = "", **_: Any) -> None:
                limiter.before(service, event_name.rpartition(".")[2])

            def adapt(response: Any = None, event_name: str = "", **_: Any) -> None:
                if response is None:
                    return  # a connection error: not a quota signal
                code = (response[1] or {}).get("Error", {}).get("Code") if response[0].status_code >= 400 else None
                limiter.after(service, event_name.rpartition(".")[2], str(code or "error") if response[0].status_code >= 400 else None)

            client.meta.events.register_first("before-send.*.*", pace)
            client.meta.events.register_first("needs-retry.*.*", adapt)

    def _fail_fast(self, endpoint: str) -> None:
        with self._lock:
            hung = self._timeouts.get(endpoint)
            if hung is None:
                return
            if self.timeout_hold is not None and time.monotonic() - hung.at > self.timeout_hold:
                del self._timeouts[endpoint]
                return
        raise hung.error(**hung.kwargs)

    @contextmanager
    def expecting_shapes(self) -> Iterator[None]:
        """Turn what a malformed response does to code reading it (KeyError, TypeError, ...)
        into one ``UnexpectedResponse`` naming the operation and the endpoint."""
        outer = self._calls.made
        made: list[tuple[str, str]] = []
        self._calls.made = made
        try:
            yield
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, ResponseParserError) as exc:
            if isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError) and made:
                operation, endpoint = made[0]  # a check on what the reads returned, after they all ran
            else:
                operation, endpoint = made[-1] if made else ("AWS", "the AWS endpoint")
            raise UnexpectedResponse(operation, endpoint, _shape_detail(exc)) from None
        finally:
            if outer is not None:
                outer.extend(made)
            self._calls.made = outer

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @property
    def apigateway(self) -> Any:
        return self.client("apigateway")


def expects_shapes(loader: F) -> F:
    """Decorator for a loader method of an object with ``.clients``: see ``AwsClients.expecting_shapes``."""

    @wraps(loader)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.clients.expecting_shapes():
            return loader(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _shape_detail(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    if isinstance(exc, json.JSONDecodeError):
        return f"a field is not valid JSON ({exc.msg})"
    if isinstance(exc, ResponseParserError):
        return f"cannot parse it ({_one_line(str(exc), 160)})"
    if isinstance(exc, (TypeError, AttributeError, IndexError)):
        return f"wrong shape ({_one_line(str(exc), 160)})"
    return _one_line(str(exc), 200)


def _check_endpoint(service: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when out of range
    except ValueError as exc:
        raise AwsConfigError(f"cannot make the {service} client: endpoint URL {url}: {exc} (check AWS_ENDPOINT_URL)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AwsConfigError(f"cannot make the {service} client: endpoint URL {url} is not an http(s) URL (check AWS_ENDPOINT_URL)")


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe_error(exc: BaseException) -> str:
    """One line for a foreseeable AWS failure."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "")
        code = err.get("Code", "Error")
        message = err.get("Message", "")
        hint = ""
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"):
            hint = " (check credentials and the IAM policy: `pointsman iam-policy` prints what is needed)"
        elif code in ("Throttling", "ThrottlingException", "TooManyRequestsException"):
            hint = " (still throttled at the reconcile's throttling deadline: see --throttle-deadline and --rate-limits)"
        return _one_line(f"{op}: {code}: {message}{hint}".strip())
    if isinstance(exc, (AwsConfigError, UnexpectedResponse)):
        return _one_line(str(exc))
    if isinstance(exc, ResponseParserError):
        operation, endpoint = getattr(exc, "pointsman_source", ("AWS", "the AWS endpoint"))
        return str(UnexpectedResponse(operation, endpoint, _shape_detail(exc)))
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"cannot reach AWS endpoint {exc.kwargs.get('endpoint_url', '')}".strip()
    if isinstance(exc, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        url = exc.kwargs.get("endpoint_url", "")
        timeout = exc.kwargs.get("timeout")
        if timeout is None:
            return f"timed out waiting for AWS endpoint {url}".replace("  ", " ")
        attempts = int(exc.kwargs.get("attempts", 1))
        phase = exc.kwargs.get("phase", "read")
        return (
            f"timed out waiting for AWS endpoint {url} after {timeout:g} s"
            f" ({phase} timeout, {attempts} attempt{'s' if attempts != 1 else ''};"
            f" see POINTSMAN_AWS_{phase.upper()}_TIMEOUT and AWS_MAX_ATTEMPTS)"
        )
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region configured (set AWS_REGION or AWS_DEFAULT_REGION)"
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return str(exc)
    return _one_line(f"{type(exc).__name__}: {exc}")


AWS_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
    AwsConfigError,
    UnexpectedResponse,
    ResponseParserError,  # not a BotoCoreError
)
