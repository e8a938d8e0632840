"""HTTP attacks on a real controller HTTP server on 127.0.0.1 (not collected by pytest).

``run_http_attacks()`` builds a Controller on a local git repository (git CLI) and moto in
process, reconciles once, serves HTTP with ``controller.web.server.serve`` (webhook secret set) and
runs the attacks below with raw sockets. It returns::

    cases                    attacks run
    server_errors            5xx answers, except 503 "server busy" (a full server, intended) and
                             505 (a request line claiming HTTP/2 or later); also any /healthz
                             that is not 200 while a slow-loris is going on
    tracebacks               tracebacks in the captured stderr, plus log lines of an unexpected
                             exception ("http handler failed", "http connection failed", errors)
    hangs                    requests without an answer (or a close) within 15 s, and idle or
                             slow connections the server did not close within TIMEOUT + 5 s
    unauthenticated_triggers reconciles triggered beyond the accepted, validly signed webhooks
    resets                   connection resets (or refusals) in the 500-connection test

Pass ``details=[]`` to get one record per case (name, statuses, expected, ok).
Run it alone with ``python -m tests.fuzz_http``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fuzz-webhook-secret"
HANG = 15.0
MiB = 1 << 20


# =========================================================================== a raw client


@dataclass
class Reply:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # "timeout", "reset", "refused", ...
    seconds: float = 0.0
    sent: int = 0  # body bytes the client managed to send

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def _parse(data: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, {}, data
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def exchange(
    port: int,
    data: bytes,
    *,
    stream: int = 0,
    trickle: tuple[bytes, float] | None = None,
    timeout: float = HANG,
    half_close: bool = False,
) -> Reply:
    """Send ``data`` and read the answer to EOF.

    ``stream``: then send that many more body bytes from another thread while reading (a huge
    upload); ``trickle``: then send these bytes one at a time, that many seconds apart.
    ``half_close``: shut down our sending side after ``data``.
    """
    reply = Reply()
    started = time.monotonic()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as exc:
        reply.error = _kind(exc)
        return reply
    stop = threading.Event()

    def send_more() -> None:
        try:
            if trickle is not None:
                for byte in trickle[0]:
                    if stop.wait(trickle[1]):
                        return
                    sock.sendall(bytes([byte]))
                    reply.sent += 1
            chunk = b"x" * 65536
            while reply.sent < stream and not stop.is_set():
                sock.sendall(chunk)
                reply.sent += len(chunk)
        except OSError:
            pass  # the server closed on us: expected once it answered

    sender = None
    try:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        if stream or trickle:
            sender = threading.Thread(target=send_more, daemon=True)
            sender.start()
        received = b""
        sock.settimeout(timeout)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        reply.status, reply.headers, reply.body = _parse(received)
    except OSError as exc:
        reply.error = _kind(exc)
        if "received" in locals() and received:
            reply.status, reply.headers, reply.body = _parse(received)
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            sock.close()
        if sender is not None:
            sender.join(5)
        reply.seconds = time.monotonic() - started
    return reply


def _kind(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    return type(exc).__name__


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(body: bytes, headers: dict[str, str] | None = None, *, sign: bool = True, length: bool = True) -> bytes:
    h = {"Content-Type": "application/json"}
    if length:
        h["Content-Length"] = str(len(body))
    if sign:
        h["X-Hub-Signature-256"] = signature(body)
    h.update(headers or {})
    return request("POST", "/webhook", h, body)


def busy(reply: Reply) -> bool:
    return reply.status == 503 and b"server busy" in reply.body


# =========================================================================== the server


@contextlib.contextmanager
def _aws_env() -> Iterator[None]:
    wanted = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {name: os.environ.get(name) for name in [*wanted, "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
    os.environ.update(wanted)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Capture(io.TextIOBase):
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            self.parts.append(text)
        return len(text)

    def text(self) -> str:
        with self.lock:
            return "".join(self.parts)


@dataclass
class Target:
    port: int
    triggers: list[str]
    server: Any


@contextlib.contextmanager
def controller_server(base: Path) -> Iterator[Target]:
    """A Controller on a local git repository and moto in process, one reconcile done, HTTP served."""
    from moto import mock_aws

    from controller.aws.clients import AwsClients
    from controller.demo.emulator import fix_moto_gaps
    from controller.demo.estate import seed
    from controller.loop.runner import Controller, Runner
    from controller.loop.settings import RunSettings
    from controller.web.server import serve
    from tests.e2e_support import git

    repo = base / "repo"
    repo.mkdir(parents=True)
    git("init", "--initial-branch=main", cwd=repo)
    shutil.copytree(ROOT / "desired_state", repo / "desired_state")
    git("add", "-A", cwd=repo)
    git("commit", "-m", "Example estate", cwd=repo)
    settings = RunSettings(repo=str(repo), state_dir=base / "state", listen="127.0.0.1:0", webhook_secret=SECRET, poll_interval=0)
    fix_moto_gaps()
    with _aws_env(), mock_aws():
        clients = AwsClients(max_attempts=2)
        seed(clients)
        controller = Controller(settings, clients)
        controller.reconcile("fuzz-setup")
        triggers: list[str] = []

        class CountingRunner(Runner):
            def trigger(self, reason: str) -> None:
                triggers.append(reason)

        runner = CountingRunner(settings, controller)
        server = serve(runner)
        try:
            yield Target(server.server_address[1], triggers, server)
        finally:
            server.shutdown()
            server.server_close()
            controller.history.close()


# =========================================================================== the attacks


@dataclass
class Tally:
    port: int
    cases: int = 0
    server_errors: int = 0
    hangs: int = 0
    resets: int = 0
    authenticated_triggers: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, replies: list[Reply], expected: Callable[[list[Reply]], bool], *, signed_triggers: bool = False) -> None:
        with self.lock:
            self.cases += 1
            for reply in replies:
                if reply.status is not None and reply.status >= 500 and not busy(reply) and reply.status != 505:
                    self.server_errors += 1
                if reply.error == "timeout" or reply.seconds >= HANG:
                    self.hangs += 1
                if signed_triggers and reply.status == 202 and reply.body and json.loads(reply.body).get("triggered"):
                    self.authenticated_triggers += 1
            ok = expected(replies)
            self.details.append(
                {
                    "name": name,
                    "ok": ok,
                    "statuses": [r.status for r in replies],
                    "errors": [r.error for r in replies],
                    "seconds": [round(r.seconds, 2) for r in replies],
                }
            )


def _statuses(*codes: int | None) -> Callable[[list[Reply]], bool]:
    return lambda replies: [r.status for r in replies] == list(codes)


def _fast_attacks(t: Tally) -> None:
    port = t.port
    huge = 100 * MiB

    def one(name: str, data: bytes, code: int | None, *, signed: bool = False, **kw: Any) -> Reply:
        reply = exchange(port, data, **kw)
        t.record(name, [reply], _statuses(code), signed_triggers=signed)
        return reply

    # -- body framing: answered at once, the 100 MB never read
    def framing(name: str, headers: dict[str, str], code: int) -> None:
        reply = exchange(port, request("POST", "/webhook", {"X-Hub-Signature-256": "sha256=00", **headers}), stream=huge)
        t.record(name, [reply], lambda r: r[0].status == code and r[0].seconds < 5 and r[0].sent < 32 * MiB)

    framing("content-length -1, 100 MB body", {"Content-Length": "-1"}, 400)
    framing("no content-length, 100 MB body", {}, 411)
    framing("chunked, 100 MB body", {"Transfer-Encoding": "chunked"}, 411)
    framing("chunked and content-length", {"Transfer-Encoding": "chunked", "Content-Length": "5"}, 411)
    framing("content-length 100 MB", {"Content-Length": str(huge)}, 413)
    framing("content-length of 5000 digits", {"Content-Length": "9" * 5000}, 413)
    for value in ("abc", "+5", "0x10", "1e3", " 5 5", "\u0661\u0662".encode().decode("latin-1")):
        framing(f"content-length {value!r}", {"Content-Length": value}, 400)
    raw = b"POST /webhook HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\nX-Hub-Signature-256: sha256=00\r\n\r\nhello"
    one("two different content-lengths", raw, 400)
    whole = b'{"ref": "refs/heads/main"}'.ljust(100)
    one("body shorter than content-length", webhook(whole)[:-98], 400, half_close=True)  # 2 of 100 bytes, then EOF
    body = b'{"ref": "refs/heads/main", "pad": "' + b"x" * (MiB - 37) + b'"}'
    assert len(body) == MiB
    one("signed body of exactly 1 MiB", webhook(body, {"X-GitHub-Delivery": "exact-1mib"}), 202, signed=True)
    one("body of 1 MiB + 1", webhook(body + b" "), 413)

    # -- query strings and request targets
    for query in (
        "limit=%C2%B2",
        "limit=%D9%A3",
        "limit=" + "9" * 5000,
        "limit=-5",
        "limit=%ZZ&%%&%ff=%fe",
        "limit=1&limit=x",
        "limit=\u00b2".encode().decode("latin-1"),
    ):
        one(f"/api/history?{query[:30]}", request("GET", f"/api/history?{query}"), 200)
    one("bad percent-encoding in the path", request("GET", "/%ff%00%zz"), 404)
    one("absolute-form target with a bad IPv6 host", request("GET", "http://[x/api/status"), 400)
    one("absolute-form target", request("GET", "http://example.invalid/healthz"), 200)
    one("URL of 70 KB", request("GET", "/" + "a" * 70_000), 414)
    one("header of 70 KB", request("GET", "/healthz", {"X-Long": "b" * 70_000}), 431)
    one("200 headers", request("GET", "/healthz", {f"X-H{i}": "v" for i in range(200)}), 431)
    one("header without a colon", b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 200)
    one("NUL and high bytes in a header", b"GET /healthz HTTP/1.1\r\nX-A: \x00\xff\xfe\r\n\r\n", 200)
    one("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400)
    one("request line without a version", b"POST /webhook\r\n\r\n", 400)
    one("HTTP/2.0 request line", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)
    one("blank request", b"\r\n\r\n", None)

    # -- methods
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"):
        one(f"{method} /webhook", request(method, "/webhook", {"Content-Length": "0"}), 405)
    one("HEAD /", request("HEAD", "/"), 200)
    one("GET /webhook", request("GET", "/webhook"), 405)
    one("POST /api/status", request("POST", "/api/status", {"Content-Length": "2"}, b"{}"), 405)

    # -- signatures (none of these may trigger)
    deep = b"[" * 100_000 + b"]" * 100_000
    one("deep JSON, unsigned", webhook(deep, sign=False), 401)
    one("deep JSON, wrong signature", webhook(deep, {"X-Hub-Signature-256": signature(deep, "wrong")}), 401)
    one("missing signature", webhook(b'{"ref": "refs/heads/main"}', sign=False), 401)
    one("signature of another body", webhook(b"{}", {"X-Hub-Signature-256": signature(b"{ }")}), 401)
    one("sha1= signature", webhook(b"{}", {"X-Hub-Signature-256": "sha1=" + signature(b"{}")[7:]}), 401)
    one("non-ASCII signature", webhook(b"{}", {"X-Hub-Signature-256": "sha256=\u00e9\u00e9"}), 401)
    raw = b"POST /webhook HTTP/1.1\r\nContent-Length: 2\r\nX-Pointsman-Signature-256: sha256=\xc3\xa9\xe2\x82\xac\r\n\r\n{}"
    one("UTF-8 bytes in a signature header", raw, 401)
    one("wrong GitLab token", webhook(b"{}", {"X-Gitlab-Token": SECRET + "x"}, sign=False), 401)
    one("empty GitLab token", webhook(b"{}", {"X-Gitlab-Token": ""}, sign=False), 401)
    one("GitHub header wrong, GitLab token right", webhook(b"{}", {"X-Hub-Signature-256": "sha256=00", "X-Gitlab-Token": SECRET}), 401)

    # -- validly signed, odd bodies: never a 500
    one("deep JSON, signed", webhook(deep), 202, signed=True)
    one("non-UTF-8 body, signed", webhook(b"\xff\xfe\x00{"), 202, signed=True)
    one("JSON list, signed", webhook(b"[1, 2, 3]"), 202, signed=True)
    one("JSON number, signed", webhook(b"1" + b"0" * 5000), 202, signed=True)
    one("push to another branch, signed", webhook(b'{"ref": "refs/heads/feature"}'), 202, signed=True)

    # -- replays
    for sender, headers in (
        ("GitHub", {"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}),
        ("GitLab", {"X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e", "X-Gitlab-Token": SECRET}),
        ("generic", {"X-Pointsman-Delivery": "delivery-42", "X-Pointsman-Signature-256": signature(b'{"ref": "refs/heads/main"}')}),
    ):
        body = b'{"ref": "refs/heads/main"}'
        data = webhook(body, headers, sign=sender == "GitHub")
        replies = [exchange(port, data), exchange(port, data), exchange(port, data)]
        t.record(
            f"{sender} delivery replayed",
            replies,
            lambda r: [x.status for x in r] == [202, 200, 200] and all(b"duplicate delivery" in x.body for x in r[1:]),
            signed_triggers=True,
        )

    # -- clients that go away
    def reset_during(data: bytes) -> Reply:
        started = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        sock.sendall(data)
        time.sleep(0.05)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST
        return Reply(status=None, seconds=time.monotonic() - started)

    for name, data in (
        ("reset in the middle of the head", b"GET /api/status HTTP/1.1\r\nHost: x\r\n"),
        ("reset before reading the answer", request("GET", "/metrics")),
        ("reset in the middle of a body", webhook(b"{}", {"Content-Length": "1000"})),
    ):
        t.record(name, [reset_during(data)], lambda r: True)

    # The server is still fine.
    one("/healthz after it all", request("GET", "/healthz"), 200)


def _concurrency(t: Tally, connections: int = 500) -> None:
    replies: list[Reply] = []
    lock = threading.Lock()
    barrier = threading.Barrier(connections)

    def client() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(30)
        reply = exchange(t.port, request("GET", "/healthz"))
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG * 2)
    with t.lock:
        t.resets += sum(1 for r in replies if r.error in ("reset", "refused"))
    t.record(f"{connections} connections at once", replies, lambda r: len(r) == connections and all(x.status == 200 or busy(x) for x in r))


def _slow_attacks(t: Tally, timeout: float) -> None:
    """Slow-loris, a trickled body, an idle connection: the server closes them all in time."""
    port = t.port
    limit = timeout + 5
    threads: list[threading.Thread] = []

    def in_thread(fn: Callable[[], None]) -> None:
        thread = threading.Thread(target=fn, daemon=True)
        thread.start()
        threads.append(thread)

    def slow_body() -> None:
        reply = exchange(port, webhook(b"x" * 100, {"Content-Length": "100"})[:-100], trickle=(b"x" * 100, 0.5))
        t.record("body trickled a byte every 0.5 s", [reply], lambda r: r[0].status == 408 and r[0].seconds < limit)

    def idle() -> None:
        reply = exchange(port, b"")
        t.record("connection that sends nothing", [reply], lambda r: r[0].status is None and r[0].error is None and r[0].seconds < limit)

    def slow_head() -> None:
        reply = exchange(port, b"GET /healthz HTTP/1.1\r\n", trickle=(b"X-Slow: " + b"z" * 200, 0.2))
        t.record("head trickled a byte every 0.2 s", [reply], lambda r: r[0].status == 408 and r[0].seconds < limit)

    in_thread(slow_body)
    in_thread(idle)
    in_thread(slow_head)

    # 200 connections that send half a request head and stop, while /healthz must answer 200.
    loris: list[socket.socket] = []
    for i in range(200):
        sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        sock.sendall(f"GET /healthz?{i} HTTP/1.1\r\nHost: x\r\nX-Loris: ".encode())
        loris.append(sock)
    started = time.monotonic()
    checks = [exchange(port, request("GET", "/healthz"), timeout=5) for _ in range(5)]
    with t.lock:
        t.server_errors += sum(1 for c in checks if c.status != 200 and c.error is None)
    t.record("/healthz during a 200-connection slow-loris", checks, lambda r: all(x.status == 200 and x.seconds < 1 for x in r))
    closed = 0
    for sock in loris:
        sock.settimeout(max(0.1, started + limit - time.monotonic()))
        try:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            closed += 1
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
        sock.close()
    with t.lock:
        t.hangs += len(loris) - closed
    t.record("200 slow-loris connections closed by the server", [Reply(status=None)], lambda r: closed == len(loris))
    for thread in threads:
        thread.join(limit + HANG)


def run_http_attacks(details: list[dict[str, Any]] | None = None) -> dict[str, int]:
    import structlog
    import structlog.testing

    from controller.web import server as http

    capture = _Capture()
    saved_stderr = sys.stderr
    with tempfile.TemporaryDirectory(prefix="pointsman-fuzz-") as tmp, structlog.testing.capture_logs() as logs:
        sys.stderr = capture
        try:
            with controller_server(Path(tmp)) as target:
                tally = Tally(target.port)
                _concurrency(tally)
                slow = threading.Thread(target=_slow_attacks, args=(tally, http.TIMEOUT), daemon=True)
                slow.start()
                _fast_attacks(tally)
                slow.join(http.TIMEOUT + 60)
                triggers = len(target.triggers)
        finally:
            sys.stderr = saved_stderr
    unexpected = [e for e in logs if e.get("log_level") in ("error", "critical", "exception") or e.get("exc_info")]
    tracebacks = capture.text().count("Traceback (most recent call last)") + len(unexpected)
    if details is not None:
        details.extend(tally.details)
        details.extend({"name": "log", "ok": False, "event": e} for e in unexpected)
    return {
        "cases": tally.cases,
        "server_errors": tally.server_errors,
        "tracebacks": tracebacks,
        "hangs": tally.hangs,
        "unauthenticated_triggers": max(0, triggers - tally.authenticated_triggers),
        "resets": tally.resets,
    }


if __name__ == "__main__":
    found: list[dict[str, Any]] = []
    started = time.monotonic()
    result = run_http_attacks(found)
    for case in found:
        if not case["ok"]:
            print("NOT AS EXPECTED:", case)
    print(json.dumps(result), f"{time.monotonic() - started:.1f}s")
