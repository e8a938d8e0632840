"""An HTTP proxy that enforces AWS's API quotas in front of an emulator (moto's server).

moto answers every request at once, however many arrive; AWS does not. This proxy sits
between a client (Pointsman, the AWS CLI, boto3) and moto's server on 127.0.0.1 and answers
like AWS past a quota:

- every request is classified to ``service.Operation`` the way botocore sends it (the service
  from the SigV4 credential scope of the Authorization header, the operation from botocore's
  own service model: HTTP method and request URI for the REST protocols, ``X-Amz-Target`` or
  ``Action=`` for the JSON and query ones);
- each Lambda and API Gateway operation takes a token from the buckets of its quota, with
  the numbers of ``controller.aws.ratelimit.DEFAULT_QUOTAS`` (one source for both sides) and the
  same bucket membership (``RateLimiter.buckets_for``: an API Gateway operation with a quota
  of its own also draws from the account-wide API Gateway bucket);
- a request past its bucket is not queued: it is answered at once, as AWS does, with HTTP
  429 and ``x-amzn-ErrorType: TooManyRequestsException`` (the header botocore's rest-json
  parser takes the error code from, so botocore retries it as throttling);
- every other request is forwarded (method, path, query, headers, body) over a persistent
  connection per proxy thread, and upstream's answer returned as it is;
- an optional latency per request stands for AWS's round trip.

Other services (IAM, STS, SQS) pass through unthrottled, and are counted too. Counts are kept
per caller as well: ``pointsman`` (its user agent) and ``other`` (every other client), so a
benchmark can tell Pointsman's requests from a concurrent deployer's.

With ``per_account``, the buckets are per AWS account, as AWS's quotas are: the proxy learns
which account an access key is for from the AssumeRole answers that pass through it (moto gives
each assumed role's credentials its account), and counts forwarded requests per account too.
``faults`` makes one account's Lambda and API Gateway requests fail: ``"deny"`` answers every one
403 AccessDeniedException, ``("throttle", 0.5)`` answers that share of them 429.

    with QuotaProxy("http://127.0.0.1:5000", scale=1.0, latency_ms=20) as proxy:
        ... point AWS_ENDPOINT_URL at proxy.url ...
        counts = proxy.snapshot()
        print(proxy.bound_seconds(counts["forwarded"]))
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from controller.aws.ratelimit import DEFAULT_QUOTAS, Quota, RateLimiter, is_read

# Services whose operations are resolved from botocore's model by method and request URI.
REST_SERVICES = ("lambda", "apigateway")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_KEY_RE = re.compile(r"Credential=([^/,\s]+)/")
_ROLE_ACCOUNT_RE = re.compile(r"RoleArn=arn%3Aaws%3Aiam%3A%3A(\d{12})%3A")
_ISSUED_KEY_RE = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")
DEFAULT_ACCOUNT = "default"
_LABEL_RE = re.compile(r"\{([^}]+)\}")

LAMBDA_THROTTLED = {"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"}
APIGATEWAY_THROTTLED = {"message": "Too Many Requests"}
OTHER = "Other"  # the operation name of a request no model operation matches


# ------------------------------------------------------------------ classification


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]  # query keys (and values) the request URI requires
    specificity: tuple[int, int, int]


def _route(operation: str, method: str, request_uri: str) -> _Route:
    path, _, query_text = request_uri.partition("?")
    literal = len(_LABEL_RE.sub("", path))
    regex = ""
    position = 0
    for label in _LABEL_RE.finditer(path):
        regex += re.escape(path[position : label.start()])
        regex += "(.+)" if label.group(1).endswith("+") else "([^/]+)"
        position = label.end()
    regex += re.escape(path[position:])
    query: list[tuple[str, str | None]] = []
    for part in filter(None, query_text.split("&")):
        key, sep, value = part.partition("=")
        query.append((key, value if sep else None))
    labels = len(_LABEL_RE.findall(path))
    return _Route(operation, method, re.compile(f"^{regex}/?$" if path != "/" else "^/$"), tuple(query), (len(query), literal, -labels))


@cache
def _routes(service: str) -> tuple[_Route, ...]:
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    routes = [_route(name, model.operation_model(name).http["method"], model.operation_model(name).http["requestUri"]) for name in model.operation_names]
    # The most specific first: required query keys, then more literal characters, then fewer labels.
    return tuple(sorted(routes, key=lambda r: r.specificity, reverse=True))


def rest_operation(service: str, method: str, path: str, query: Mapping[str, list[str]] | None = None) -> str:
    """The botocore operation a REST request is: ``("lambda", "GET", "/2015-03-31/functions/f/aliases")``
    -> ``ListAliases``; ``Other`` when no operation of the service's model matches."""
    query = query or {}
    for route in _routes(service):
        if route.method != method or not route.pattern.match(path):
            continue
        if all(key in query and (value is None or value in query[key]) for key, value in route.query):
            return route.operation
    return OTHER


def caller_of(headers: Mapping[str, str]) -> str:
    """``pointsman`` for a request Pointsman sent (its user agent names it), else ``other``."""
    agent = next((value for name, value in headers.items() if name.lower() == "user-agent"), "")
    return "pointsman" if "pointsman/" in agent else "other"


_APP_RE = re.compile(r"\bapp/(\S+)")


def app_of(headers: Mapping[str, str]) -> str:
    """The app id the client named in its user agent (``AWS_SDK_UA_APP_ID``), "" without one."""
    match = _APP_RE.search(next((value for name, value in headers.items() if name.lower() == "user-agent"), ""))
    return match.group(1) if match else ""


@dataclass(frozen=True)
class Call:
    """One forwarded request: when (this process's monotonic clock), from which app, in which account."""

    at: float
    app: str
    account: str
    operation: str
    status: int
    wall: float = 0.0  # time.time() when it was forwarded


def access_key_of(headers: Mapping[str, str]) -> str:
    """The access key id a SigV4-signed request was signed with ("" when unsigned)."""
    match = _KEY_RE.search(next((value for name, value in headers.items() if name.lower() == "authorization"), ""))
    return match.group(1) if match else ""


def service_of(headers: Mapping[str, str]) -> str:
    """The service a SigV4-signed request is for (its credential scope); ``unsigned`` otherwise."""
    match = _SCOPE_RE.search(next((value for name, value in headers.items() if name.lower() == "authorization"), ""))
    return match.group(1) if match else "unsigned"


def classify(method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> tuple[str, str]:
    """``(service, Operation)`` of a request as botocore sends it (header names in any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    service = service_of(lowered)
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    if service in REST_SERVICES:
        return service, rest_operation(service, method, parts.path, query)
    amz_target = lowered.get("x-amz-target")
    if amz_target:  # the JSON protocols: AmazonSQS.ListQueues
        return service, amz_target.rpartition(".")[2]
    action = query.get("Action")
    if not action and body and "x-www-form-urlencoded" in (lowered.get("content-type") or ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return service, action[0] if action else OTHER


# ------------------------------------------------------------------ quotas


class _Bucket:
    """A token bucket that answers yes or no: no waiting, no queue."""

    def __init__(self, quota: Quota) -> None:
        self.rate = quota.rate
        self.capacity = max(1.0, quota.burst)
        self.tokens = self.capacity
        self.last = time.monotonic()

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now


def scaled_quotas(scale: float = 1.0, quotas: Mapping[str, Quota] = DEFAULT_QUOTAS) -> dict[str, Quota]:
    """Every rate multiplied by ``scale``; bursts stay as they are (at least 1)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, not {scale!r}")
    return {name: Quota(q.rate * scale, max(1.0, q.burst), q.source) for name, q in quotas.items()}


def rate_limits_env(quotas: Mapping[str, Quota]) -> str:
    """The POINTSMAN_RATE_LIMITS value that paces a client to exactly these quotas."""
    return ",".join(f"{name}={q.rate:.6g}:{max(1.0, q.burst):.6g}" for name, q in quotas.items())


def bucket_names(service: str, operation: str, quotas: Mapping[str, Quota] = DEFAULT_QUOTAS) -> list[str]:
    """The quota buckets one request of ``service.Operation`` draws from (as Pointsman's limiter sees them)."""
    return [bucket.name for bucket in _resolver(tuple(sorted(quotas)))(service, operation)]


@lru_cache(maxsize=32)
def _resolver(names: tuple[str, ...]) -> Any:
    return RateLimiter({name: Quota(1, 1) for name in names}).buckets_for


def bound_seconds(counts: Mapping[str, int], quotas: Mapping[str, Quota] = DEFAULT_QUOTAS, share: float = 1.0) -> float:
    """The least time these calls (``{"service.Operation": n}``) can take under the quotas: for
    each bucket, the calls past its burst at its rate; the busiest bucket bounds them all.
    ``share``: the budget of Pointsman's quota share, reads at that share of each bucket (its
    rate and its burst), writes at the whole quota (``--quota-share``)."""
    per_bucket: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    for operation, n in counts.items():
        service, _, name = operation.partition(".")
        for bucket in bucket_names(service, name, quotas):
            per_bucket[bucket] += n
            if is_read(name):
                reads[bucket] += n

    def least(bucket: str) -> float:
        quota = quotas[bucket]
        whole = max(0.0, per_bucket[bucket] - max(1.0, quota.burst)) / quota.rate
        shared = max(0.0, reads[bucket] - max(1.0, quota.burst * share)) / (quota.rate * share)
        return max(whole, shared)

    return max((least(bucket) for bucket in per_bucket), default=0.0)


# ------------------------------------------------------------------ the proxy


class QuotaProxy:
    """The proxy: ``start()``/``stop()`` or a context manager; ``url`` once started."""

    def __init__(
        self,
        upstream: str,
        *,
        scale: float = 1.0,
        quotas: Mapping[str, Quota] | None = None,
        latency_ms: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = 120.0,
        per_account: bool = False,
        faults: Mapping[str, Any] | None = None,
        journal: bool = False,
    ) -> None:
        """``quotas``: the buckets (default ``DEFAULT_QUOTAS``), each rate times ``scale``;
        ``per_account``: a set of buckets per account; ``faults``: account -> "deny" or ("throttle", share);
        ``journal``: keep every forwarded request as a :class:`Call` (``calls()``)."""
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = upstream
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._upstream_timeout = upstream_timeout
        self.quotas = scaled_quotas(scale, quotas if quotas is not None else DEFAULT_QUOTAS)
        self.latency = max(0.0, latency_ms) / 1000.0
        self.per_account = per_account
        self.faults = dict(faults or {})
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._bucket_lock = threading.Lock()
        self._accounts: dict[str, str] = {}  # access key id -> account, from AssumeRole answers
        self._by_account: Counter[tuple[str, str]] = Counter()  # (account, operation) forwarded
        self._fault_seen: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        # By (caller, operation): see ``caller_of``.
        self._requests: Counter[tuple[str, str]] = Counter()
        self._throttled: Counter[tuple[str, str]] = Counter()
        self._errors: Counter[tuple[str, str]] = Counter()  # upstream answers >= 400
        self._local = threading.local()
        self._journal: list[Call] | None = [] if journal else None
        self._bind = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> QuotaProxy:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"proxy": self})
        server = _Server(self._bind, handler, bind_and_activate=False)
        server.daemon_threads = True
        server.request_queue_size = 256  # many parallel clients connect at once
        server.allow_reuse_address = True
        server.server_bind()
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="quota-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> QuotaProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- counters

    def snapshot(self, caller: str | None = None) -> dict[str, dict[str, int]]:
        """``requests`` received, ``throttled`` (answered 429 here), ``forwarded`` (the rest) and
        ``errors`` (upstream answers of 400 or more), each by ``service.Operation``: of every
        caller, or of one (``pointsman``, ``other``)."""

        def of(counts: Counter[tuple[str, str]]) -> Counter[str]:
            out: Counter[str] = Counter()
            for (who, operation), n in counts.items():
                if caller is None or who == caller:
                    out[operation] += n
            return out

        with self._count_lock:
            requests, throttled, errors = of(self._requests), of(self._throttled), of(self._errors)
        forwarded = requests - throttled
        return {
            "requests": dict(sorted(requests.items())),
            "throttled": dict(sorted(throttled.items())),
            "forwarded": dict(sorted(forwarded.items())),
            "errors": dict(sorted(errors.items())),
        }

    def reset(self) -> None:
        """Zero the counters and refill every bucket (as after a quiet minute)."""
        with self._count_lock:
            self._requests.clear()
            self._throttled.clear()
            self._errors.clear()
            self._by_account.clear()
        with self._bucket_lock:
            self._buckets = {}

    def account_counts(self) -> dict[str, dict[str, int]]:
        """Forwarded requests by account (``default`` for keys no AssumeRole issued), then by operation."""
        with self._count_lock:
            out: dict[str, dict[str, int]] = {}
            for (account, operation), n in sorted(self._by_account.items()):
                out.setdefault(account, {})[operation] = n
            return out

    def calls(self) -> list[Call]:
        """The journal: every request forwarded so far, in order (empty without ``journal``)."""
        with self._count_lock:
            return list(self._journal or [])

    def note(self, call: Call) -> None:
        if self._journal is not None:
            with self._count_lock:
                self._journal.append(call)

    def account_of(self, access_key: str) -> str:
        return self._accounts.get(access_key, DEFAULT_ACCOUNT)

    def learn(self, operation: str, body: bytes, answer: bytes) -> None:
        """Remember which account an AssumeRole's credentials are for."""
        if operation != "sts.AssumeRole":
            return
        role = _ROLE_ACCOUNT_RE.search(body.decode("utf-8", "replace"))
        issued = _ISSUED_KEY_RE.search(answer)
        if role and issued:
            with self._count_lock:
                self._accounts[issued.group(1).decode()] = role.group(1)

    def fault(self, account: str, service: str) -> str | None:
        """ "deny" or "throttle" when this request of ``account`` must fail so, else None."""
        how = self.faults.get(account)
        if how is None or service not in REST_SERVICES:
            return None
        if how == "deny":
            return "deny"
        kind, share = how
        with self._count_lock:
            self._fault_seen[account] += 1
            n = self._fault_seen[account]
        return kind if int(n * share) != int((n - 1) * share) else None  # evenly: every 1/share-th request

    def bound_seconds(self, counts: Mapping[str, int], share: float = 1.0) -> float:
        """``bound_seconds`` under this proxy's (scaled) quotas, reads at ``share`` of each."""
        return bound_seconds(counts, self.quotas, share)

    # -------------------------------------------------------------- per request

    def admit(self, service: str, operation: str, account: str = DEFAULT_ACCOUNT) -> bool:
        """Take a token from each of the operation's buckets (the account's, with ``per_account``),
        or from none: False past a quota."""
        names = bucket_names(service, operation, self.quotas)
        if not names:
            return True
        now = time.monotonic()
        owner = account if self.per_account else DEFAULT_ACCOUNT
        with self._bucket_lock:
            buckets = []
            for name in names:
                bucket = self._buckets.get((owner, name))
                if bucket is None:  # full, as at the start
                    bucket = self._buckets[(owner, name)] = _Bucket(self.quotas[name])
                    bucket.last = now
                buckets.append(bucket)
            for bucket in buckets:
                bucket.refill(now)
            if any(bucket.tokens < 1 for bucket in buckets):
                return False
            for bucket in buckets:
                bucket.tokens -= 1
            return True

    def _count(self, operation: str, *, throttled: bool = False, error: bool = False, caller: str = "other", account: str = DEFAULT_ACCOUNT) -> None:
        key = (caller, operation)
        with self._count_lock:
            self._requests[key] += 1
            if throttled:
                self._throttled[key] += 1
            else:
                self._by_account[(account, operation)] += 1
            if error:
                self._errors[key] += 1

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=self._upstream_timeout)
            self._local.conn = conn
        return conn

    def forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request upstream on this thread's connection; (status, reason, headers, body)."""
        for attempt in (1, 2):
            conn = self._connection(fresh=attempt == 2)
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders(body if body else None)
                response = conn.getresponse()
                data = response.read()
                return response.status, response.reason, response.getheaders(), data
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def error_response(status: int, error_type: str, message: Mapping[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS error answer: JSON ``message``, the error code in ``x-amzn-ErrorType`` (where
    botocore's rest-json parser reads it)."""
    body = json.dumps(dict(message), separators=(",", ":")).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", error_type),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return status, headers, body


def denied_response(service: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """What AWS answers a caller without the permission: 403 AccessDeniedException."""
    return error_response(403, "AccessDeniedException", {"Type": "User", "message": "User is not authorized to perform this action"})


def throttled_response(service: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """What AWS answers past a quota: 429 TooManyRequestsException (Lambda's body, or API Gateway's)."""
    return error_response(429, "TooManyRequestsException", LAMBDA_THROTTLED if service == "lambda" else APIGATEWAY_THROTTLED)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-request (a killed process) is not an error of the proxy's."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    proxy: QuotaProxy
    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        proxy = self.proxy
        body = self._body()
        service, name = classify(self.command, self.path, dict(self.headers.items()), body)
        operation = f"{service}.{name}"
        caller = caller_of(dict(self.headers.items()))
        account = proxy.account_of(access_key_of(dict(self.headers.items())))
        fault = proxy.fault(account, service)
        admitted = fault is None and proxy.admit(service, name, account)
        if proxy.latency:
            time.sleep(proxy.latency)
        if fault == "deny":
            proxy._count(operation, error=True, caller=caller, account=account)
            status, out_headers, data = denied_response(service)
            reason = "Forbidden"
        elif not admitted:
            proxy._count(operation, throttled=True, caller=caller, account=account)
            status, out_headers, data = throttled_response(service)
            reason = "Too Many Requests"
        else:
            forwarded = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            if body or self.command in ("POST", "PUT", "PATCH"):
                forwarded.append(("Content-Length", str(len(body))))
            try:
                status, reason, upstream_headers, data = proxy.forward(self.command, self.path, forwarded, body)
            except Exception as exc:  # noqa: BLE001 - upstream unreachable: a 502, as a gateway would answer
                proxy._count(operation, error=True, caller=caller)
                data = f"quota proxy: upstream {proxy.upstream} failed: {type(exc).__name__}: {exc}".encode()
                self._send(502, "Bad Gateway", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))], data)
                return
            proxy._count(operation, error=status >= 400, caller=caller, account=account)
            proxy.note(Call(time.monotonic(), app_of(dict(self.headers.items())), account, operation, status, time.time()))
            proxy.learn(operation, body, data)
            keep_length = self.command == "HEAD"  # no body: upstream's length stands
            out_headers = [(k, v) for k, v in upstream_headers if k.lower() not in HOP_BY_HOP and (keep_length or k.lower() != "content-length")]
            if not keep_length:
                out_headers.append(("Content-Length", str(len(data))))
        self._send(status, reason, out_headers, data)

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle
