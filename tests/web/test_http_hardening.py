"""The controller's HTTP surface and git input against hostile input: body framing and limits,
timeouts, bounded threads and connections, no 500s, webhook replays, symlinks in commits, and
the attack harness (tests/fuzz_http.py)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from controller.app import build_runner
from controller.aws.clients import AwsClients, write_calls
from controller.loop.gitsource import GitSource, UnsafeSpecTree
from controller.loop.runner import Controller, Runner
from controller.loop.settings import RunSettings
from controller.web import server as http
from controller.web import webhook
from tests.e2e_support import git, make_repo
from tests.fuzz_http import SECRET, Reply, busy, exchange, request, run_http_attacks, signature

MiB = 1 << 20
Logs = list[MutableMapping[str, Any]]
MAIN = b'{"ref": "refs/heads/main"}'


@dataclass
class Served:
    port: int
    server: http.BoundedHTTPServer
    triggers: list[str]
    controller: Controller

    def send(self, data: bytes, **kw: Any) -> Reply:
        kw.setdefault("timeout", 8)
        return exchange(self.port, data, **kw)

    def webhook(self, body: bytes, headers: dict[str, str] | None = None, sign: bool = True) -> Reply:
        h = {"Content-Length": str(len(body))}
        if sign:
            h["X-Hub-Signature-256"] = signature(body)
        h.update(headers or {})
        return self.send(request("POST", "/webhook", h, body))


@pytest.fixture
def serve_http(tmp_path: Path, clients: AwsClients, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Served]]:
    """Start the real HTTP server for a Controller (moto in process); keyword args shrink http's constants."""
    started: list[Served] = []

    def start(**constants: Any) -> Served:
        for name, value in constants.items():
            assert hasattr(http, name), name
            monkeypatch.setattr(http, name, value)
        settings = RunSettings(
            repo=str(tmp_path / "no-repo"),
            state_dir=tmp_path / f"state-{len(started)}",
            listen="127.0.0.1:0",
            webhook_secret=SECRET,
            poll_interval=0,
        )
        controller = Controller(settings, clients)
        triggers: list[str] = []

        class CountingRunner(Runner):
            def trigger(self, reason: str) -> None:
                triggers.append(reason)

        server = http.serve(CountingRunner(settings, controller))
        served = Served(server.server_address[1], server, triggers, controller)
        started.append(served)
        return served

    yield start
    for served in started:
        served.server.shutdown()
        served.server.server_close()
        served.controller.history.close()


@pytest.fixture
def served(serve_http: Callable[..., Served]) -> Served:
    return serve_http()


@pytest.fixture
def logs() -> Iterator[Logs]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def errors_in(logs: Logs) -> Logs:
    return [e for e in logs if e.get("log_level") in ("error", "critical") or e.get("exc_info")]


# =========================================================================== 1. body framing, limits, timeouts


@pytest.mark.parametrize(
    "headers, code",
    [
        ({"Content-Length": "-1"}, 400),
        ({}, 411),
        ({"Transfer-Encoding": "chunked"}, 411),
        ({"Transfer-Encoding": "chunked", "Content-Length": "10"}, 411),
        ({"Content-Length": str(100 * MiB)}, 413),
        ({"Content-Length": str(MiB + 1)}, 413),
        ({"Content-Length": "9" * 5000}, 413),
        ({"Content-Length": "abc"}, 400),
        ({"Content-Length": "+5"}, 400),
        ({"Content-Length": "0x10"}, 400),
        ({"Content-Length": "\u0661\u0662".encode().decode("latin-1")}, 400),  # Arabic-Indic digits, as UTF-8
        ({"Content-Length": str(MiB)}, 401),  # at the limit: read (1 MiB, no more), then a wrong signature
    ],
    ids=["negative", "missing", "chunked", "chunked+length", "100MB", "1MiB+1", "5000-digits", "abc", "plus", "hex", "unicode-digits", "at-limit"],
)
def test_webhook_body_framing_is_checked_before_reading(served: Served, headers: dict[str, str], code: int, logs: Logs) -> None:
    # The client streams 100 MB behind the head and reads the answer meanwhile.
    reply = served.send(request("POST", "/webhook", {"X-Hub-Signature-256": "sha256=00", **headers}), stream=100 * MiB)
    assert reply.status == code, reply
    assert reply.seconds < 5
    assert reply.sent < 32 * MiB  # the server stopped reading long before the end of the upload
    assert reply.headers["connection"] == "close"
    assert "error" in reply.json
    assert served.triggers == []
    assert not errors_in(logs)


def test_two_different_content_lengths(served: Served) -> None:
    raw = b"POST /webhook HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 7\r\nX-Gitlab-Token: " + SECRET.encode() + b"\r\n\r\n{}"
    reply = served.send(raw)
    assert reply.status == 400 and "conflicting" in reply.json["error"]
    assert served.triggers == []


def test_body_shorter_than_its_length(served: Served) -> None:
    body = MAIN.ljust(100)
    head = request("POST", "/webhook", {"Content-Length": "100", "X-Hub-Signature-256": signature(body)})
    reply = served.send(head + body[:10], half_close=True)
    assert reply.status == 400 and "10 of 100 bytes" in reply.json["error"]
    assert served.triggers == []


def test_no_signature_header_is_401_before_the_body(served: Served) -> None:
    reply = served.send(request("POST", "/webhook", {"Content-Length": str(MiB)}), stream=100 * MiB)
    assert reply.status == 401 and reply.seconds < 5 and reply.sent < 32 * MiB


def test_a_body_of_exactly_max_body_is_accepted(served: Served) -> None:
    body = b'{"ref": "refs/heads/main", "pad": "' + b"x" * (MiB - 37) + b'"}'
    assert len(body) == http.MAX_BODY
    reply = served.webhook(body)
    assert reply.status == 202 and reply.json == {"triggered": True}
    assert served.triggers == ["webhook:github"]


def test_timeout_is_a_module_constant(served: Served) -> None:
    assert http.TIMEOUT == 10
    assert served.server.handler.timeout == http.TIMEOUT
    assert served.server.head_timeout == http.TIMEOUT


def test_slow_body_times_out(serve_http: Callable[..., Served]) -> None:
    served = serve_http(TIMEOUT=1.0)
    body = MAIN.ljust(100)
    head = request("POST", "/webhook", {"Content-Length": "100", "X-Hub-Signature-256": signature(body)})
    # One byte every 0.2 s: every single read is quick, the whole body is not.
    reply = served.send(head, trickle=(body, 0.2))
    assert reply.status == 408, reply
    assert 0.9 < reply.seconds < 3
    assert served.triggers == []


def test_idle_and_slow_heads_are_closed(serve_http: Callable[..., Served]) -> None:
    served = serve_http(TIMEOUT=1.0)
    results: dict[str, Reply] = {}

    def run(name: str, data: bytes, **kw: Any) -> None:
        results[name] = served.send(data, **kw)

    threads = [
        threading.Thread(target=run, args=("idle", b"")),
        threading.Thread(target=run, args=("half head", b"GET /healthz HTTP/1.1\r\nHost: x\r\n")),
        threading.Thread(target=run, args=("trickled head", b"GET /healthz HTTP/1.1\r\n"), kwargs={"trickle": (b"X-Slow: " + b"z" * 100, 0.1)}),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results["idle"].status is None and results["idle"].error is None  # closed, nothing to answer
    assert results["half head"].status == 408
    assert results["trickled head"].status == 408
    assert all(r.seconds < 3 for r in results.values()), results


# =========================================================================== 2. connections and threads


def test_backlog() -> None:
    assert http.BACKLOG == 128 and http.BoundedHTTPServer.request_queue_size == 128


def test_500_concurrent_connections(served: Served) -> None:
    replies: list[Reply] = []
    barrier = threading.Barrier(500)

    def client() -> None:
        barrier.wait(20)
        replies.append(served.send(request("GET", "/healthz"), timeout=15))

    threads = [threading.Thread(target=client) for _ in range(500)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(replies) == 500
    assert not [r.error for r in replies if r.error], "resets or timeouts"
    assert all(r.status == 200 or busy(r) for r in replies)


def test_idle_connections_take_no_thread_and_healthz_answers(served: Served) -> None:
    before = threading.active_count()
    loris = []
    for i in range(200):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        sock.sendall(f"GET /healthz?{i} HTTP/1.1\r\nHost: x\r\nX-Loris: ".encode())
        loris.append(sock)
    try:
        time.sleep(0.2)
        assert threading.active_count() - before < 5
        for _ in range(3):
            reply = served.send(request("GET", "/healthz"))
            assert reply.status == 200 and reply.seconds < 1
    finally:
        for sock in loris:
            sock.close()


def test_workers_are_bounded_and_a_full_server_answers_503(serve_http: Callable[..., Served]) -> None:
    served = serve_http(MAX_WORKERS=3, QUEUE_WAIT=0.2)
    holders = []
    for _ in range(3):  # a complete head, then the body never comes: each holds a worker
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        sock.sendall(request("POST", "/webhook", {"Content-Length": "100", "X-Hub-Signature-256": "sha256=00"}))
        holders.append(sock)
    try:
        deadline = time.monotonic() + 5
        while sum(t.name == served.server.thread_name for t in threading.enumerate()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        reply = served.send(request("GET", "/healthz"))
        assert reply.status == 503 and busy(reply), reply
        assert reply.headers["connection"] == "close" and reply.headers["retry-after"] == "1"
        assert reply.seconds < 2
        assert sum(t.name == served.server.thread_name for t in threading.enumerate()) == 3
        holders.pop().close()  # the handler sees the end of the body; its slot is released
        deadline = time.monotonic() + 5
        while (reply := served.send(request("GET", "/healthz"))).status != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reply.status == 200
    finally:
        for sock in holders:
            sock.close()


def test_pending_connections_are_bounded(serve_http: Callable[..., Served]) -> None:
    served = serve_http(MAX_PENDING=10)
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=2) for _ in range(30)]
    try:
        time.sleep(0.3)
        closed = 0
        for sock in idle[:20]:  # the oldest make room for the newest
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
        assert closed == 20
        assert served.send(request("GET", "/healthz")).status == 200
    finally:
        for sock in idle:
            sock.close()


def test_ipv6_listen_address(tmp_path: Path, clients: AwsClients) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    settings = RunSettings(repo="x", state_dir=tmp_path / "s", listen="[::1]:0", webhook_secret=SECRET)
    controller = Controller(settings, clients)
    server = http.serve(build_runner(settings, controller))
    try:
        with socket.create_connection(("::1", server.server_address[1]), timeout=5) as sock:
            sock.sendall(request("GET", "/healthz"))
            assert sock.recv(100).startswith(b"HTTP/1.0 200")
    finally:
        server.shutdown()
        server.server_close()
        controller.history.close()


# =========================================================================== 3 and 6. odd input: never a 500


@pytest.mark.parametrize(
    "query", ["limit=%C2%B2", "limit=\u00b2", "limit=%D9%A3", "limit=" + "9" * 5000, "limit=-5", "limit=%ZZ&%%&%ff=%fe", "limit=1&limit=x", "limit="]
)
def test_history_limit_never_500(served: Served, query: str) -> None:
    reply = served.send(request("GET", f"/api/history?{query}".encode().decode("latin-1")))
    assert reply.status == 200 and isinstance(reply.json, list)


def test_history_limit_parsing() -> None:
    assert http.history_limit("5") == 5
    assert http.history_limit(" 7 ") == 7
    assert http.history_limit("0") == 1
    assert http.history_limit("100000") == 500
    for raw in ("\u00b2", "\u0663", "-5", "1.5", "", "9" * 5000, "\uff11"):
        assert http.history_limit(raw) == 20, raw


def test_deep_json_signed_webhook(served: Served, logs: Logs) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert webhook.pushed_branch(deep) is None
    assert webhook.pushed_branch(b'{"a":' * 100_000 + b"1" + b"}" * 100_000) is None
    reply = served.webhook(deep)
    assert reply.status == 202 and reply.json == {"triggered": True}  # a signed ping without a branch
    assert served.webhook(deep, sign=False).status == 401
    assert served.triggers == ["webhook:github"]
    assert not errors_in(logs)


@pytest.mark.parametrize("body", [b"\xff\xfe\x00{", b"[1, 2, 3]", b"42", b"1" + b"0" * 5000, b'"refs/heads/main"', b"null"])
def test_odd_signed_bodies_are_accepted_not_500(served: Served, body: bytes) -> None:
    reply = served.webhook(body)
    assert reply.status == 202
    assert served.webhook(body, sign=False).status == 401


@pytest.mark.parametrize(
    "data, code",
    [
        (request("GET", "http://[x/api/status"), 400),
        (request("GET", "http://example.invalid/healthz"), 200),
        (request("GET", "/%ff%00%zz"), 404),
        (request("GET", "/" + "a" * 70_000), 414),
        (request("GET", "/healthz", {"X-Long": "b" * 70_000}), 431),
        (request("GET", "/healthz", {f"X-H{i}": "v" for i in range(200)}), 431),
        (b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 200),
        (b"GET /healthz HTTP/1.1\r\nX-A: \x00\xff\xfe\r\n\r\n", 200),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        (b"POST /webhook\r\n\r\n", 400),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/1.1\n\n", 200),  # bare newlines
    ],
    ids=[
        "bad-ipv6-host",
        "absolute-form",
        "bad-percent",
        "long-url",
        "long-header",
        "200-headers",
        "no-colon",
        "binary-header",
        "tls-hello",
        "no-version",
        "http2",
        "bare-newlines",
    ],
)
def test_odd_requests(served: Served, data: bytes, code: int, logs: Logs) -> None:
    reply = served.send(data)
    assert reply.status == code, reply
    assert not errors_in(logs)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
@pytest.mark.parametrize("path, allow", [("/", "GET, HEAD"), ("/api/status", "GET, HEAD"), ("/webhook", "POST")])
def test_other_methods_get_405(served: Served, method: str, path: str, allow: str) -> None:
    reply = served.send(request(method, path, {"Content-Length": "0"}))
    assert reply.status == 405 and reply.headers["allow"] == allow


def test_head_get_and_post_on_the_wrong_path(served: Served) -> None:
    get = served.send(request("GET", "/healthz"))
    head = served.send(request("HEAD", "/healthz"))
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == get.headers["content-length"] == "3"
    reply = served.send(request("GET", "/webhook"))
    assert reply.status == 405 and reply.headers["allow"] == "POST"
    reply = served.send(request("POST", "/api/status", {"Content-Length": "2"}, b"{}"))
    assert reply.status == 405 and reply.headers["allow"] == "GET, HEAD"
    assert served.send(request("POST", "/nowhere", {"Content-Length": "2"}, b"{}")).status == 404


def test_clients_that_go_away_leave_no_traceback(served: Served, logs: Logs, capsys: pytest.CaptureFixture[str]) -> None:
    for data in (
        b"GET /api/status HTTP/1.1\r\nHost: x\r\n",
        request("GET", "/metrics"),
        request("POST", "/webhook", {"Content-Length": "1000", "X-Gitlab-Token": "t"}),
    ):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        sock.sendall(data)
        time.sleep(0.05)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset
    time.sleep(0.2)
    assert served.send(request("GET", "/healthz")).status == 200
    assert "Traceback" not in capsys.readouterr().err
    assert not errors_in(logs)


# =========================================================================== 4. replays


@pytest.mark.parametrize(
    "sender, headers",
    [
        ("github", {"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-Hub-Signature-256": signature(MAIN)}),
        ("gitlab", {"X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e", "X-Gitlab-Token": SECRET}),
        ("generic", {"X-Pointsman-Delivery": "delivery-42", "X-Pointsman-Signature-256": signature(MAIN)}),
    ],
)
def test_a_replayed_delivery_triggers_once(served: Served, sender: str, headers: dict[str, str]) -> None:
    first = served.webhook(MAIN, headers, sign=False)
    assert first.status == 202 and first.json == {"triggered": True}
    delivery = next(v for k, v in headers.items() if k in webhook.DELIVERY_HEADERS.values())
    for _ in range(2):
        again = served.webhook(MAIN, headers, sign=False)
        assert again.status == 200
        assert again.json == {"triggered": False, "reason": f"duplicate delivery {delivery}"}
    assert served.triggers == [f"webhook:{sender}"]
    # Another delivery id is another delivery.
    other = {k: ("other-" + v if k in webhook.DELIVERY_HEADERS.values() else v) for k, v in headers.items()}
    assert served.webhook(MAIN, other, sign=False).status == 202
    assert len(served.triggers) == 2


def test_same_delivery_id_with_another_body_is_not_a_replay(served: Served) -> None:
    other = b'{"ref": "refs/heads/main", "after": "2"}'
    assert served.webhook(MAIN, {"X-GitHub-Delivery": "d-1"}).status == 202
    assert served.webhook(other, {"X-GitHub-Delivery": "d-1"}).status == 202
    assert len(served.triggers) == 2


def test_deliveries_without_an_id_are_not_deduplicated(served: Served) -> None:
    assert [served.webhook(MAIN).status for _ in range(3)] == [202, 202, 202]
    assert len(served.triggers) == 3


def test_gitlab_webhook_uuid_is_not_a_delivery_id(served: Served) -> None:
    # X-Gitlab-Webhook-UUID names the hook, not one delivery: two deliveries share it.
    for event in ("e-1", "e-2"):
        headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Webhook-UUID": "hook-1", "X-Gitlab-Event-UUID": event}
        assert served.webhook(MAIN, headers, sign=False).status == 202
    assert len(served.triggers) == 2


def test_a_rejected_delivery_does_not_poison_its_id(served: Served) -> None:
    forged = served.webhook(MAIN, {"X-GitHub-Delivery": "d-9", "X-Hub-Signature-256": signature(MAIN, "wrong")}, sign=False)
    assert forged.status == 401
    assert served.webhook(MAIN, {"X-GitHub-Delivery": "d-9"}).status == 202
    assert served.triggers == ["webhook:github"]


def test_a_replayed_push_to_another_branch_is_still_a_duplicate(served: Served) -> None:
    body = b'{"ref": "refs/heads/feature"}'
    assert served.webhook(body, {"X-GitHub-Delivery": "f-1"}).status == 202
    assert served.webhook(body, {"X-GitHub-Delivery": "f-1"}).status == 200
    assert served.triggers == []


def test_recent_deliveries_are_bounded_and_thread_safe() -> None:
    recent = http.RecentDeliveries(keep=3)
    assert [recent.repeat("github", f"d{i}", b"{}") for i in range(4)] == [False] * 4
    assert recent.repeat("github", "d0", b"{}") is False  # forgotten: only the last 3 are kept
    assert recent.repeat("github", "d3", b"{}") is True
    assert recent.repeat("gitlab", "d3", b"{}") is False  # per sender
    assert http.DELIVERIES_KEPT == 1000

    shared = http.RecentDeliveries()
    answers: list[bool] = []
    barrier = threading.Barrier(50)

    def race() -> None:
        barrier.wait(10)
        answers.append(shared.repeat("github", "same", b"{}"))

    threads = [threading.Thread(target=race) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == [False] + [True] * 49


def test_delivery_id_headers() -> None:
    assert webhook.delivery_id("github", {"x-github-delivery": " abc "}) == "abc"
    assert webhook.delivery_id("gitlab", {"X-Gitlab-Event-UUID": "u"}) == "u"
    assert webhook.delivery_id("gitlab", {"X-Gitlab-Webhook-UUID": "u"}) is None
    assert webhook.delivery_id("generic", {"X-Pointsman-Delivery": ""}) is None
    assert webhook.delivery_id("github", {"X-Pointsman-Delivery": "x"}) is None


# =========================================================================== 5. symlinks in commits


def commit_all(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def add_evil_file_link(repo: Path) -> str:
    os.symlink("/etc/passwd", repo / "desired_state/evil.yaml")
    return "desired_state/evil.yaml: symlink to /etc/passwd leaves the spec directory"


def add_relative_link(repo: Path) -> str:
    os.symlink("../../x", repo / "desired_state/evil.yaml")
    return "desired_state/evil.yaml: symlink to ../../x leaves the spec directory"


def add_directory_link(repo: Path) -> str:
    (repo / "elsewhere").mkdir()
    (repo / "elsewhere/more.yaml").write_text("functions: {}\n")
    os.symlink("../elsewhere", repo / "desired_state/more")
    return "desired_state/more: symlink to ../elsewhere leaves the spec directory"


def add_climbing_link(repo: Path) -> str:
    # Lexically inside (desired_state/x.yaml), but "here" is the directory itself, so
    # here/.. is the repository root.
    os.symlink(".", repo / "desired_state/here")
    os.symlink("here/../x.yaml", repo / "desired_state/up.yaml")
    return "desired_state/up.yaml: symlink to here/../x.yaml leaves the spec directory"


@pytest.mark.parametrize("add_link", [add_evil_file_link, add_relative_link, add_directory_link, add_climbing_link])
def test_export_refuses_links_leaving_the_spec_directory(tmp_path: Path, add_link: Callable[[Path], str]) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    message = add_link(repo)
    bad = commit_all(repo, "a link")
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    assert source.fetch() == bad
    with pytest.raises(UnsafeSpecTree) as info:
        source.export(bad, "desired_state", tmp_path / "specs")
    assert info.value.problems == [message]
    assert not (tmp_path / "specs").exists() or not list((tmp_path / "specs").iterdir())  # nothing left behind


def test_export_keeps_links_inside_the_spec_directory(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    (repo / "desired_state/docs").mkdir()
    (repo / "desired_state/docs/notes.md").write_text("notes\n")
    os.symlink("docs/notes.md", repo / "desired_state/README.md")
    os.symlink("../docs", repo / "desired_state/docs/self")
    good = commit_all(repo, "inner links")
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    source.fetch()
    exported = source.export(good, "desired_state", tmp_path / "specs")
    assert (exported / "README.md").is_symlink() and (exported / "README.md").read_text() == "notes\n"
    assert (exported / "getreport.yaml").is_file()
    # The whole repository as the spec directory: a link to a sibling directory stays inside it.
    (repo / "desired_state/up").symlink_to("../desired_state")
    whole = commit_all(repo, "sibling link")
    source.fetch()
    assert (source.export(whole, ".", tmp_path / "specs") / "desired_state/up").is_symlink()


def test_the_spec_directory_itself_as_a_link(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    git("mv", "desired_state", "real", cwd=repo)
    os.symlink("real", repo / "desired_state")
    sha = commit_all(repo, "spec dir is a link")
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    source.fetch()
    with pytest.raises(UnsafeSpecTree) as info:
        source.export(sha, "desired_state", tmp_path / "specs")
    assert info.value.problems == ["desired_state: symlink to real leaves the spec directory"]


def prod(clients: AwsClients) -> str:
    return str(clients.lambda_.get_alias(FunctionName="getreport", Name="prod")["FunctionVersion"])


@pytest.mark.parametrize("add_link", [add_evil_file_link, add_relative_link, add_directory_link])
def test_commit_with_a_link_out_is_invalid_and_the_last_good_commit_stays_reconciled(
    estate: dict[str, Any], clients: AwsClients, tmp_path: Path, add_link: Callable[[Path], str]
) -> None:
    repo = tmp_path / "repo"
    good = make_repo(repo)
    settings = RunSettings(repo=str(repo), state_dir=tmp_path / "state", poll_interval=0)
    controller = Controller(settings, clients)
    try:
        first = controller.reconcile("test")
        assert first.status == "applied", first.error
        assert first.commit_sha == good and prod(clients) == "1"

        message = add_link(repo)
        bad = commit_all(repo, "a link out of the spec directory")
        second = controller.reconcile("test")
        assert "internal error" not in (second.error or "")
        assert second.head_sha == bad and second.commit_sha == good
        assert second.status == "in_sync"
        assert f"newest commit {bad[:12]} is invalid" in (second.error or "")
        status = controller.status_document()
        assert status["head_commit"] == bad and status["head_valid"] is False
        assert status["spec_errors"] == [message]
        assert status["applied_commit"] == good
        assert controller.history.recent()[0].error == second.error

        # Console drift is still found against the last good commit (reported, not healed).
        clients.lambda_.update_alias(FunctionName="getreport", Name="prod", FunctionVersion="2")
        third = controller.reconcile("test")
        assert third.status == "drift" and third.commit_sha == good
        assert [d["resource"] for d in third.drift] == ["lambda_alias/getreport/prod"]
        assert prod(clients) == "2"
        assert write_calls(third.api_calls) == {}
        assert controller.status_document()["spec_errors"] == [message]

        # Removing the link makes the branch valid again: the drift is healed.
        for leftover in (repo / "desired_state/evil.yaml", repo / "desired_state/more", repo / "elsewhere"):
            if leftover.is_symlink() or leftover.is_file():
                leftover.unlink()
            elif leftover.is_dir():
                shutil.rmtree(leftover)
        fixed = commit_all(repo, "no link")
        fourth = controller.reconcile("test")
        assert fourth.status == "applied" and fourth.commit_sha == fixed, fourth.error
        assert prod(clients) == "1"
        assert controller.status_document()["head_valid"] is True
    finally:
        controller.history.close()


# =========================================================================== the attack harness


@pytest.mark.fuzz
def test_http_attacks() -> None:
    details: list[dict[str, Any]] = []
    started = time.monotonic()
    result = run_http_attacks(details)
    assert result["cases"] >= 34
    assert {k: v for k, v in result.items() if k != "cases"} == {
        "server_errors": 0,
        "tracebacks": 0,
        "hangs": 0,
        "unauthenticated_triggers": 0,
        "resets": 0,
    }, json.dumps([d for d in details if not d["ok"]], default=str)[:4000]
    assert [d["name"] for d in details if not d["ok"]] == []
    assert time.monotonic() - started < 45


def test_the_favicon_is_served(served: Served) -> None:
    reply = served.send(request("GET", "/favicon.ico"))
    assert reply.status == 200
    assert reply.headers.get("content-type") == "image/svg+xml"
    assert reply.body.startswith(b"<svg") and reply.body.endswith(b"</svg>")
    assert served.send(request("POST", "/favicon.ico", {"Content-Length": "0"})).status == 405
