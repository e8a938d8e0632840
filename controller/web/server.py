"""HTTP endpoints: /healthz, /readyz, /metrics, /api/status, /api/history, /webhook, / (the
status page), /runs/ID (a run's page) and POST /reconcile (the page's "Reconcile now", which needs
``POINTSMAN_UI_TOKEN``). A spec split into targets numbers each target's runs on its own:
``?target=NAME`` picks the target of /runs/ID and /api/history (and preselects it on /), and a
``target`` field that of POST /approve/RUN and /rollout.

The server is built to face the internet (a webhook endpoint often does):

- One loop accepts connections and reads each request head (request line and headers)
  without a thread; a head must be complete within ``TIMEOUT`` seconds and ``MAX_HEAD``
  bytes. Connections still sending their head are bounded (``MAX_PENDING``; the oldest is
  dropped for a new one), so idle or slow-loris connections cost a socket, never a thread.
- A complete request gets a thread, at most ``MAX_WORKERS`` at once. When all are busy for
  ``QUEUE_WAIT`` seconds the loop answers 503 (``Retry-After``, ``Connection: close``) itself.
- A webhook body needs a valid ``Content-Length`` (411 without one or when chunked, 400 when
  malformed, 413 above ``MAX_BODY``); it is never read past that length, and must arrive
  within ``TIMEOUT`` seconds (else 408). Every socket operation has the same timeout.
- No input makes a 500 or a traceback: a failing handler answers 500 with one log line.

One module (about 700 lines) on purpose: the accept loop, the request handler and the routes
share the limits above and one socket discipline (timeouts, draining, closing), which the tests
tune in one place; split, each half would reach into the other's internals.
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import re
import selectors
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from controller.loop.view import LoopView
from controller.web import pages, webhook

log = structlog.get_logger("pointsman.http")

MAX_BODY = 1 << 20  # bytes of a webhook body
MAX_HEAD = 64 << 10  # bytes of a request line and its headers
TIMEOUT = 10.0  # seconds for a request head, for a body, and for any one socket operation
MAX_WORKERS = 64  # requests handled at once, a thread each
MAX_PENDING = 512  # connections still sending their request head (no thread)
QUEUE_WAIT = 0.5  # seconds a complete request waits for a free worker before a 503
BACKLOG = 128  # listen queue
LINGER_BYTES = MAX_BODY  # after rejecting a body unread: at most this much is drained ...
LINGER_SECONDS = 1.0  # ... for at most this long, so the client sees the answer, not a reset
DELIVERIES_KEPT = 1000  # webhook deliveries remembered to spot a replay

GET_PATHS = ("/", "/healthz", "/readyz", "/metrics", "/api/status", "/api/history", "/favicon.ico")
# Open even with POINTSMAN_UI_READ_TOKEN: the probes of an orchestrator, and the icon. They name nothing.
OPEN_PATHS = ("/healthz", "/readyz", "/favicon.ico")
# The page's icon: a set of points (rails switching), as SVG, which browsers take at /favicon.ico.
FAVICON = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M3 15V1M3 9l10-8M13 15V1" stroke="#2a6" stroke-width="2" fill="none"/></svg>'
RUN_PATH = re.compile(r"/runs/([0-9]{1,12})")
APPROVE_PATH = re.compile(r"/approve/([0-9]{1,12})")  # POST: approve what that run left waiting
MAX_FORM = 4096  # bytes of the "Reconcile now" form
MAX_TARGET = 200  # characters of a target's name in a query or a form
_HEAD_END = re.compile(rb"(?:^|\n)\r?\n")
_CLIENT_GONE = (ConnectionError, TimeoutError)


class _Prefixed(io.RawIOBase):
    """A socket's input, starting with bytes the accept loop already read from it."""

    def __init__(self, prefix: bytes, sock: socket.socket) -> None:
        self._prefix = memoryview(prefix)
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if len(self._prefix):
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    """Request handling shared by every server; ``_handler`` adds the endpoints."""

    server_version = "pointsman"
    timeout = TIMEOUT  # every socket operation, read or write
    protocol_version = "HTTP/1.0"  # one request per connection
    default_request_version = "HTTP/1.0"  # a malformed request line still gets a status line

    def __init__(self, request: Any, client_address: Any, server: Any, head: bytes = b"") -> None:
        self.head = head
        self.head_only = False
        self.linger = False
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        if self.head:
            self.rfile.close()
            self.rfile = io.BufferedReader(_Prefixed(self.head, self.connection))

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.linger:
                _linger(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        log.debug("http", client=self.client_address[0], request=format % args)

    def _send(
        self,
        code: int,
        body: bytes | str | dict[str, Any] | list[Any],
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body, indent=2, default=str).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not self.head_only:
            self.wfile.write(data)

    def _declared_length(self, default: str | None = None) -> int | None:
        """The body's Content-Length (``default`` when there is none), or None once the request
        is refused: chunked, malformed, conflicting or too large."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._reject_unread(411, "send the body with a Content-Length; Transfer-Encoding is not accepted")
            return None
        length = content_length(self.headers.get_all("Content-Length") or ([default] if default is not None else []))
        if isinstance(length, tuple):
            self._reject_unread(*length)
            return None
        return length

    def _reject_unread(self, code: int, message: str) -> None:
        """Answer without reading the request body; the connection closes after."""
        self.close_connection = True
        self.linger = True
        self._send(code, {"error": message})

    def _guarded(self, handle: Callable[[], None]) -> None:
        try:
            handle()
        except _CLIENT_GONE as exc:  # the client went away or stalled: nobody to answer
            self.close_connection = True
            log.debug("http client gone", client=self.client_address[0], error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - one line in the log, a 500 for the client, the server lives on
            self.close_connection = True
            log.error("http handler failed", path=self.path, error=f"{type(exc).__name__}: {exc}")
            try:
                self._send(500, {"error": "internal error"})
            except OSError:
                pass

    def _url(self) -> SplitResult | None:
        try:
            return urlsplit(self.path)
        except ValueError:
            self._send(400, {"error": "bad request target"})
            return None

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if not hasattr(self, f"do_{self.command}"):  # PUT, DELETE, OPTIONS, anything: 405, not 501
            self._guarded(self._not_allowed)
            return False
        return True

    def _not_allowed(self) -> None:
        self.close_connection, self.linger = True, True
        url = self._url()
        if url is None:
            return
        allow = "POST" if url.path == "/webhook" else "GET, HEAD"
        self._send(405, {"error": f"method {self.command[:20]} not allowed"}, headers={"Allow": allow})


def _linger(sock: socket.socket) -> None:
    """Half-close, then drop what the client still sends (bounded), so it reads our answer."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        drained = 0
        while drained < LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(min(65536, LINGER_BYTES - drained))
            if not chunk:
                break
            drained += len(chunk)
    except OSError:
        pass


def history_limit(raw: str, default: int = 20) -> int:
    """``?limit=`` as 1..500; anything but ASCII digits gives the default."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= 9:
        return max(1, min(int(raw), 500))
    return default


def content_length(values: list[str]) -> tuple[int, str] | int:
    """The body length from Content-Length headers, or (status, why) to refuse the request."""
    if not values:
        return 411, "Content-Length required"
    distinct = {v.strip() for v in values}
    if len(distinct) != 1:
        return 400, "conflicting Content-Length headers"
    raw = distinct.pop()
    if not (raw.isascii() and raw.isdigit()):
        return 400, f"Content-Length must be a whole number of bytes, not {raw[:40]!r}"
    if len(raw) > 15 or int(raw) > MAX_BODY:
        return 413, f"payload too large: at most {MAX_BODY} bytes"
    return int(raw)


def target_field(fields: dict[str, list[str]]) -> str | None:
    """The ``target`` of a query or a form (a spec split into targets: /runs/ID?target=NAME,
    /api/history?target=NAME, the target of a rollout control or an approval), or None without
    one; cut to ``MAX_TARGET`` characters (no target has a longer name)."""
    return (fields.get("target") or [""])[0].strip()[:MAX_TARGET] or None


def _page_link(target: str | None) -> str:
    """The status page, with ``target`` selected in its filter."""
    return "/?" + urlencode({"target": target}) if target else "/"


class RecentDeliveries:
    """The last ``keep`` webhook deliveries (sender, delivery id, body digest); thread-safe."""

    def __init__(self, keep: int = DELIVERIES_KEPT) -> None:
        self.keep = keep
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def repeat(self, sender: str, delivery: str, body: bytes) -> bool:
        """Remember this delivery; True if it was already among the remembered ones."""
        key = webhook.delivery_key(sender, delivery, body)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            self._seen[key] = None
            while len(self._seen) > self.keep:
                self._seen.popitem(last=False)
            return False


def _handler(loop: LoopView) -> type[_Handler]:
    settings = loop.settings
    deliveries = RecentDeliveries()
    ui_token = settings.ui_token.get_secret_value() if settings.ui_token and settings.ui_token.get_secret_value() else None
    read_token = settings.ui_read_token.get_secret_value() if settings.ui_read_token and settings.ui_read_token.get_secret_value() else None

    class Handler(_Handler):
        timeout = TIMEOUT  # read now, so that tests can shorten it

        def do_GET(self) -> None:
            self._guarded(self._get)

        def do_HEAD(self) -> None:
            self.head_only = True
            self._guarded(self._get)

        def do_POST(self) -> None:
            self._guarded(self._post)

        def _get(self) -> None:
            url = self._url()
            if url is None:
                return
            if read_token is not None and url.path not in OPEN_PATHS and not self._may_read(read_token):
                log.warning("read rejected: bad or missing read token", client=self.client_address[0], path=url.path)
                self._send(401, {"error": "reading needs POINTSMAN_UI_READ_TOKEN"}, headers={"WWW-Authenticate": 'Basic realm="pointsman", charset="UTF-8"'})
                return
            if url.path == "/healthz":
                self._send(200, "ok\n", "text/plain")
            elif url.path == "/readyz":
                ready, why = loop.ready()
                self._send(200 if ready else 503, why + "\n", "text/plain")
            elif url.path == "/metrics":
                self._send(200, loop.metrics_text(), CONTENT_TYPE_LATEST)
            elif url.path == "/api/status":
                self._send(200, loop.status_document())
            elif url.path == "/api/history":
                query = parse_qs(url.query)
                limit = history_limit((query.get("limit") or ["20"])[0])
                resource = (query.get("resource") or [""])[0] or None
                self._send(200, [r.as_json() for r in loop.recent_runs(limit, resource=resource, target=target_field(query))])
            elif url.path == "/":
                runs = [r.as_json() for r in loop.recent_runs(15)]
                page = pages.status_page(loop.status_document(), runs, can_reconcile=ui_token is not None, target=target_field(parse_qs(url.query)))
                self._send(200, page, "text/html; charset=utf-8")
            elif (match := RUN_PATH.fullmatch(url.path)) is not None:
                target = target_field(parse_qs(url.query))
                run = loop.run_record(int(match.group(1)), target=target)
                if run is None:
                    of = f" of target {target}" if target else ""
                    self._send(404, pages.not_found_page(f"No run #{match.group(1)} in the history{of}."), "text/html; charset=utf-8")
                else:
                    self._send(200, pages.run_page(run.as_json()), "text/html; charset=utf-8")
            elif url.path == "/favicon.ico":
                self._send(200, FAVICON, "image/svg+xml", headers={"Cache-Control": "max-age=86400"})
            elif url.path in ("/reconcile", "/rollout") or APPROVE_PATH.fullmatch(url.path):
                self._send(405, {"error": "POST with the UI token"}, headers={"Allow": "POST"})
            elif url.path == "/webhook":
                self._send(405, {"error": "POST the push notification"}, headers={"Allow": "POST"})
            else:
                self._send(404, {"error": "not found"})

        def _post(self) -> None:
            url = self._url()
            if url is None:
                return
            if url.path == "/reconcile":
                self._reconcile_now()
                return
            if url.path == "/rollout":
                self._rollout_control()
                return
            if (match := APPROVE_PATH.fullmatch(url.path)) is not None:
                self._approve(int(match.group(1)))
                return
            if url.path != "/webhook":
                if url.path in GET_PATHS:
                    self._not_allowed()
                else:
                    self._reject_unread(404, "not found")
                return
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
            if not secret:
                self._reject_unread(404, "webhook disabled: set POINTSMAN_WEBHOOK_SECRET or POINTSMAN_WEBHOOK_SECRET_FILE")
                return
            length = self._declared_length()
            if length is None:
                return
            headers = dict(self.headers.items())
            if not webhook.has_signature(headers):
                log.warning("webhook rejected: no signature header", client=self.client_address[0])
                self._reject_unread(401, "bad or missing signature")
                return
            body = self._read_body(length)
            if body is None:
                return
            sender = webhook.verify(secret, headers, body)
            if sender is None:
                log.warning("webhook rejected: bad or missing signature", client=self.client_address[0])
                self._send(401, {"error": "bad or missing signature"})
                return
            delivery = webhook.delivery_id(sender, headers)
            if delivery and deliveries.repeat(sender, delivery, body):
                log.warning("webhook ignored: a delivery already received", sender=sender, delivery=delivery[:100])
                self._send(200, {"triggered": False, "reason": f"duplicate delivery {delivery[:100]}"})
                return
            branch = webhook.pushed_branch(body)
            if branch is not None and branch != settings.branch:
                self._send(202, {"triggered": False, "reason": f"push to {branch}, following {settings.branch}"})
                return
            log.info("webhook accepted; reconciling now", sender=sender, delivery=(delivery or "")[:100] or None)
            loop.trigger(f"webhook:{sender}")
            self._send(202, {"triggered": True})

        def _authorization(self) -> tuple[str, str]:
            """The ``Authorization`` header as (scheme in lower case, credentials); ("", "") without one."""
            scheme, _, credentials = (self.headers.get("Authorization") or "").strip().partition(" ")
            return scheme.lower(), credentials.strip()

        def _may_read(self, token: str) -> bool:
            """``Authorization: Bearer TOKEN``, or Basic with any user name and TOKEN as the password
            (what a browser sends after the 401's prompt)."""
            scheme, credentials = self._authorization()
            given = ""
            if scheme == "bearer":
                given = credentials
            elif scheme == "basic":
                try:
                    given = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[2]
                except (ValueError, UnicodeDecodeError):
                    given = ""
            return hmac.compare_digest(given.encode(), token.encode())

        def _authorized(self, what: str) -> tuple[bool, dict[str, list[str]]] | None:
            """A POST from the status page or a script: a token (form field ``token`` or
            ``Authorization: Bearer``) equal to POINTSMAN_UI_TOKEN. (is it a form, its fields),
            or None once answered (403 and nothing happens)."""
            if ui_token is None:
                self._reject_unread(403, f"{what} from the page is off: set POINTSMAN_UI_TOKEN (or POINTSMAN_UI_TOKEN_FILE)")
                return None
            length = self._declared_length(default="0")
            if length is None:
                return None
            if length > MAX_FORM:
                self._reject_unread(413, f"body larger than {MAX_FORM} bytes")
                return None
            body = self._read_body(length)
            if body is None:
                return None
            scheme, credentials = self._authorization()
            given = credentials if scheme == "bearer" else ""
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            form = content_type == "application/x-www-form-urlencoded"
            fields = parse_qs(body.decode("utf-8", "replace")) if form else {}
            if content_type == "application/json" and body:
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                fields = {str(k): [str(v)] for k, v in data.items() if v is not None} if isinstance(data, dict) else {}
            if not given and form:
                given = (fields.get("token") or [""])[0]
            if not hmac.compare_digest(given.encode(), ui_token.encode()):
                log.warning(f"{what} request rejected: bad or missing UI token", client=self.client_address[0])
                if form:
                    self._send(403, pages.not_found_page("Wrong UI token: nothing was started."), "text/html; charset=utf-8")
                else:
                    self._send(403, {"error": "bad or missing UI token"})
                return None
            return form, fields

        def _reconcile_now(self) -> None:
            """The status page's button "Reconcile now". A form gets a redirect to ``/``."""
            authorized = self._authorized("reconciling")
            if authorized is None:
                return
            form, _ = authorized
            log.info("reconcile requested from the status page", client=self.client_address[0])
            loop.trigger("ui")
            if form:
                self._send(303, "", "text/plain", headers={"Location": "/"})
            else:
                self._send(202, {"triggered": True})

        def _rollout_control(self) -> None:
            """Abort, promote or retry a rollout without a commit (``alias``, ``action`` fields;
            ``pointsman rollout ACTION ALIAS`` and the page's buttons post them)."""
            authorized = self._authorized("rollout control")
            if authorized is None:
                return
            form, fields = authorized
            alias = (fields.get("alias") or [""])[0]
            action = (fields.get("action") or [""])[0]
            target = target_field(fields)
            refused = loop.rollout_control(alias, action, target=target)
            if refused is not None:
                if form:
                    self._send(400, pages.not_found_page(refused), "text/html; charset=utf-8")
                else:
                    self._send(400, {"error": refused})
                return
            log.info("rollout control requested", alias=alias, action=action, target=target, client=self.client_address[0])
            if form:
                self._send(303, "", "text/plain", headers={"Location": _page_link(target) + "#rollouts"})
            else:
                self._send(202, {"triggered": True, "alias": alias, "action": action} | ({"target": target} if target else {}))

        def _approve(self, run_id: int) -> None:
            """``POST /approve/RUN``: apply what run RUN left waiting for approval (the page's
            Approve button, ``pointsman approve RUN``). 409 when that run is not the one waiting."""
            authorized = self._authorized("approving")
            if authorized is None:
                return
            form, fields = authorized
            target = target_field(fields)
            refused = loop.approve(run_id, target=target)
            if refused is not None:
                if form:
                    self._send(409, pages.not_found_page(f"Nothing was approved: {refused}."), "text/html; charset=utf-8")
                else:
                    self._send(409, {"approved": False, "error": refused})
                return
            log.info("run approved", run=run_id, target=target, client=self.client_address[0])
            if form:
                self._send(303, "", "text/plain", headers={"Location": _page_link(target)})
            else:
                self._send(202, {"approved": True, "run": run_id} | ({"target": target} if target else {}))

        def _read_body(self, length: int) -> bytes | None:
            """Exactly ``length`` bytes within TIMEOUT seconds, else answer 408/400 and None."""
            deadline = time.monotonic() + TIMEOUT
            chunks: list[bytes] = []
            remaining = length
            try:
                while remaining:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    self.connection.settimeout(left)
                    chunk = self.rfile.read1(min(remaining, 65536))
                    if not chunk:  # the client stopped sending (it may still read)
                        self.close_connection = True
                        self._send(400, {"error": f"body shorter than its Content-Length ({length - remaining} of {length} bytes)"})
                        return None
                    chunks.append(chunk)
                    remaining -= len(chunk)
            except TimeoutError:
                self._reject_unread(408, f"body not received within {TIMEOUT:g}s")
                return None
            finally:
                self.connection.settimeout(self.timeout)
            return b"".join(chunks)

    return Handler


class _Pending:
    __slots__ = ("address", "buffer", "deadline", "ready_since", "sock")

    def __init__(self, sock: socket.socket, address: Any, deadline: float) -> None:
        self.sock = sock
        self.address = address
        self.buffer = bytearray()
        self.deadline = deadline
        self.ready_since: float | None = None


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose threads are bounded (see the module docstring)."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[_Handler],
        *,
        max_workers: int | None = None,
        max_pending: int | None = None,
        head_timeout: float | None = None,
        queue_wait: float | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.request_queue_size = BACKLOG
        # Everything server_close() needs is set before binding: a failed bind calls it.
        self.handler = handler
        self.max_workers = max_workers or MAX_WORKERS
        self.slots = threading.BoundedSemaphore(self.max_workers)
        self.max_pending = max_pending or MAX_PENDING
        self.head_timeout = head_timeout or TIMEOUT
        self.queue_wait = QUEUE_WAIT if queue_wait is None else queue_wait
        self.busy_refusals = 0
        self._pending: OrderedDict[socket.socket, _Pending] = OrderedDict()
        self._ready: list[_Pending] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self.running = threading.Event()
        super().__init__(address, handler)
        self.thread_name = f"pointsman-http-request:{self.server_address[1]}"

    # ------------------------------------------------------------------ the loop

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._idle.clear()
        selector = selectors.DefaultSelector()
        self.socket.setblocking(False)
        selector.register(self.socket, selectors.EVENT_READ, "listen")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.running.set()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                timeout = poll_interval
                if self._pending:
                    timeout = min(timeout, max(0.0, min(p.deadline for p in self._pending.values()) - now))
                if self._ready:
                    timeout = min(timeout, 0.05)
                for key, _ in selector.select(timeout):
                    if key.data == "listen":
                        self._accept(selector)
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._read_head(selector, key.data)
                self._dispatch_ready()
                self._expire(selector)
        finally:
            for pending in [*self._pending.values(), *self._ready]:
                _close(pending.sock)
            self._pending.clear()
            self._ready.clear()
            selector.close()
            self._stop.clear()
            self.running.clear()
            self._idle.set()

    def shutdown(self) -> None:
        self._stop.set()
        self._wake()
        self._idle.wait()

    def server_close(self, wait: float = 2.0) -> None:
        """Close the listening socket, then give requests in flight ``wait`` seconds to finish."""
        super().server_close()
        deadline = time.monotonic() + wait
        taken = 0
        while taken < self.max_workers and self.slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            taken += 1
        for _ in range(taken):
            self.slots.release()
        _close(self._wake_r)
        _close(self._wake_w)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            log.debug("http client gone", client=_host(client_address), error=f"{type(exc).__name__}: {exc}")
        else:
            log.error("http connection failed", client=_host(client_address), error=f"{type(exc).__name__}: {exc}")

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(64):
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors and the like: shed the oldest idle one
                log.warning("http accept failed", error=f"{type(exc).__name__}: {exc}")
                self._evict_oldest(selector)
                return
            sock.setblocking(False)
            if len(self._pending) >= self.max_pending:
                self._evict_oldest(selector)
            pending = _Pending(sock, address, time.monotonic() + self.head_timeout)
            self._pending[sock] = pending
            selector.register(sock, selectors.EVENT_READ, pending)

    def _evict_oldest(self, selector: selectors.BaseSelector) -> None:
        if self._pending:
            sock, _ = self._pending.popitem(last=False)
            selector.unregister(sock)
            _close(sock)

    def _forget(self, selector: selectors.BaseSelector, pending: _Pending) -> None:
        self._pending.pop(pending.sock, None)
        try:
            selector.unregister(pending.sock)
        except (KeyError, ValueError):
            pass

    def _read_head(self, selector: selectors.BaseSelector, pending: _Pending) -> None:
        try:
            data = pending.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # closed (or reset) before a whole request: nothing to answer
            self._forget(selector, pending)
            _close(pending.sock)
            return
        before = len(pending.buffer)
        pending.buffer += data
        end = _HEAD_END.search(pending.buffer, max(0, before - 3))
        if end is None or end.end() > MAX_HEAD:
            if len(pending.buffer) > MAX_HEAD:
                self._forget(selector, pending)
                too_long = b"\n" not in pending.buffer[:MAX_HEAD]
                _refuse(
                    pending.sock,
                    HTTPStatus.REQUEST_URI_TOO_LONG if too_long else HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    f"request line and headers may take at most {MAX_HEAD} bytes",
                )
            return
        self._forget(selector, pending)
        if len(self._ready) >= self.max_pending:  # far more complete requests than workers: no queue
            self.busy_refusals += 1
            _refuse(pending.sock, HTTPStatus.SERVICE_UNAVAILABLE, "server busy: too many requests at once; retry shortly", {"Retry-After": "1"})
            return
        pending.ready_since = time.monotonic()
        self._ready.append(pending)

    def _dispatch_ready(self) -> None:
        now = time.monotonic()
        while self._ready:
            pending = self._ready[0]
            if self.slots.acquire(blocking=False):
                self._ready.pop(0)
                self._start(pending)
            elif now - (pending.ready_since or now) >= self.queue_wait:
                self._ready.pop(0)
                self.busy_refusals += 1
                _refuse(pending.sock, HTTPStatus.SERVICE_UNAVAILABLE, "server busy: too many requests at once; retry shortly", {"Retry-After": "1"})
            else:
                return

    def _start(self, pending: _Pending) -> None:
        pending.sock.setblocking(True)
        thread = threading.Thread(target=self._work, args=(pending.sock, pending.address, bytes(pending.buffer)), name=self.thread_name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no more threads
            self.slots.release()
            self.busy_refusals += 1
            _refuse(pending.sock, HTTPStatus.SERVICE_UNAVAILABLE, "server busy; retry shortly", {"Retry-After": "1"})

    def _work(self, sock: socket.socket, address: Any, head: bytes) -> None:
        try:
            self.handler(sock, address, self, head)
        except Exception:  # noqa: BLE001 - logged in one line by handle_error
            self.handle_error(sock, address)
        finally:
            self.shutdown_request(sock)
            self.slots.release()
            self._wake()

    def _expire(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for pending in [p for p in self._pending.values() if p.deadline <= now]:
            self._forget(selector, pending)
            if pending.buffer:
                _refuse(pending.sock, HTTPStatus.REQUEST_TIMEOUT, f"request head not received within {self.head_timeout:g}s")
            else:
                _close(pending.sock)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass


def _host(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _refuse(sock: socket.socket, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer from the accept loop (no thread): a short JSON error, then close."""
    body = json.dumps({"error": message}).encode()
    lines = [
        f"HTTP/1.0 {status.value} {status.phrase}",
        "Server: pointsman",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    try:
        sock.setblocking(False)
        sock.send("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    _close(sock)


def serve(loop: LoopView) -> BoundedHTTPServer:
    """The HTTP server of a running loop, started in a thread of its own (stop it with shutdown)."""
    host, port = loop.settings.listen_address
    server = BoundedHTTPServer((host, port), _handler(loop))
    threading.Thread(target=server.serve_forever, name="pointsman-http", daemon=True).start()
    server.running.wait(5)  # so that a shutdown() right away finds the loop running
    return server
