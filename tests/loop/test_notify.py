"""Drift notifications: state changes, payloads, signatures, retries, and targets that are dead or slow.

Every delivery goes to a real HTTP receiver on 127.0.0.1; retry waits go to a fake sleep.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog

from controller.loop.history import RunRecord
from controller.loop.notify import Notifier, Target, targets_from

SHA = "abc1234def5678abc1234def5678abc1234def56"
T0 = 1700000000.5  # 2023-11-14T22:13:20.500Z


class Receiver:
    """Records each POST (path, headers, body); answers with ``codes`` in turn, then 200."""

    def __init__(self, codes: list[int] | None = None, hang: bool = False) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.codes = list(codes or [])
        self.hang = hang
        self.release = threading.Event()
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.got:
                    receiver.requests.append((self.path, dict(self.headers.items()), body))
                    code = receiver.codes.pop(0) if receiver.codes else 200
                    receiver.got.notify_all()
                if receiver.hang:
                    receiver.release.wait(5)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timed out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait(self, count: int, timeout: float = 5.0) -> None:
        with self.got:
            assert self.got.wait_for(lambda: len(self.requests) >= count, timeout), f"{len(self.requests)} requests, wanted {count}"

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, _, body in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


@pytest.fixture
def notifiers() -> Iterator[list[Notifier]]:
    made: list[Notifier] = []
    yield made
    for n in made:
        n.close(timeout=1)


@pytest.fixture
def receiver(receivers: list[Receiver]) -> Receiver:
    r = Receiver()
    receivers.append(r)
    return r


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there now


def drift(*resources: str) -> list[dict[str, Any]]:
    return [
        {"resource": r, "kind": "lambda_alias", "status": "changed", "changes": [{"field": "FunctionVersion", "live": "3", "desired": "4"}]} for r in resources
    ]


def run(status: str, resources: tuple[str, ...] = (), *, mode: str = "detect", error: str | None = None, **kw: Any) -> RunRecord:
    kw.setdefault("commit_sha", None if status == "invalid" else SHA)
    kw.setdefault("head_sha", SHA)
    return RunRecord(started=T0, finished=T0 + 2.25, trigger="schedule", mode=mode, status=status, drift=drift(*resources), error=error, id=7, **kw)


def make(notifiers: list[Notifier], *targets: Target, **kw: Any) -> Notifier:
    kw.setdefault("sleep", lambda _s: None)
    n = Notifier(targets, **kw)
    notifiers.append(n)
    return n


# ---------------------------------------------------------------------- state changes


def test_state_change_sequence_sends_one_event_per_change(receiver: Receiver, notifiers: list[Notifier]) -> None:
    n = make(notifiers, Target(receiver.url(), "json"))
    sequence = [
        (run("in_sync"), []),  # first run, nothing bad before
        (run("drift", ("getProducts:prod", "products-v1/prod")), ["drift_found"]),
        (run("drift", ("products-v1/prod", "getProducts:prod")), []),  # same drift, other order
        (run("drift", ("getProducts:prod",)), ["drift_found"]),  # other resources
        (run("applied", ("getProducts:prod",), mode="apply"), ["healed"]),
        (run("in_sync", mode="apply"), []),  # healed is healthy already
        (run("failed", ("getProducts:prod",), mode="apply", error="getProducts:prod: AccessDenied"), ["apply_failed"]),
        (run("failed", ("getProducts:prod",), mode="apply", error="getProducts:prod: AccessDenied"), []),
        (run("in_sync", mode="apply"), ["recovered"]),
        (run("invalid", error="aliases.yaml:3: unknown field 'wieght'"), ["invalid_commit"]),
        (run("in_sync"), ["recovered"]),
    ]
    got = [n.observe(record) for record, _ in sequence]
    assert got == [want for _, want in sequence]
    assert n.wait_idle(5)
    expected = ["drift_found", "drift_found", "healed", "apply_failed", "recovered", "invalid_commit", "recovered"]
    assert receiver.events() == expected
    assert [headers["X-Pointsman-Event"] for _, headers, _ in receiver.requests] == expected
    assert n.delivered == 7 and n.failed == 0


def test_twenty_identical_ticks_are_one_notification_and_running_runs_are_ignored(notifiers: list[Notifier]) -> None:
    n = make(notifiers)
    events = [n.observe(run("drift", ("getProducts:prod",))) for _ in range(20)]
    assert events == [["drift_found"]] + [[]] * 19
    assert n.observe(run("running")) == [] and n.observe(run("interrupted")) == []
    assert n.observe(run("drift", ("getProducts:prod",))) == []  # an ignored run does not reset the state
    assert n.observe(run("in_sync")) == ["recovered"]
    assert n.observe(run("in_sync")) == []


def test_errors_and_repeated_healing(notifiers: list[Notifier]) -> None:
    n = make(notifiers)
    assert n.observe(run("error", error="git unreachable")) == ["error"]  # first run after start, bad
    assert n.observe(run("error", error="git unreachable")) == []
    assert n.observe(run("error", error="throttled")) == ["error"]  # another error text is another state
    assert n.observe(run("applied", ("a:prod",), mode="apply")) == ["healed"]
    assert n.observe(run("applied", ("a:prod",), mode="apply")) == []  # same healing every tick: once
    assert n.observe(run("in_sync", mode="apply")) == []
    assert n.observe(run("applied", ("a:prod",), mode="apply")) == ["healed"]  # drifted again after being in sync
    assert n.observe(run("invalid", error="x")) == ["invalid_commit"]
    assert n.observe(run("invalid", error="x", head_sha="f" * 40)) == ["invalid_commit"]  # another invalid commit


# ---------------------------------------------------------------------- payloads


def test_json_payload_fields_and_times(receiver: Receiver, notifiers: list[Notifier]) -> None:
    n = make(notifiers, Target(receiver.url("/pointsman"), "json"), controller_name="prod-eu", status_url="http://ctl:8080/status")
    n.observe(run("drift", ("getProducts:prod", "products-v1/prod")))
    receiver.wait(1)
    path, headers, body = receiver.requests[0]
    payload = json.loads(body)
    assert path == "/pointsman"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Pointsman-Event"] == "drift_found"
    assert len(headers["X-Pointsman-Delivery"]) == 36
    assert "X-Pointsman-Signature" not in headers  # no secret, no signature
    assert payload["event"] == "drift_found" and payload["controller"] == "prod-eu"
    assert payload["status_url"] == "http://ctl:8080/status"
    assert payload["run"] == {
        "id": 7, "trigger": "schedule", "mode": "detect", "status": "drift", "commit": SHA,
        "started": "2023-11-14T22:13:20Z", "finished": "2023-11-14T22:13:22Z",
    }  # fmt: skip
    assert datetime.fromisoformat(payload["run"]["started"]) == datetime.fromtimestamp(int(T0), tz=UTC)  # ISO-8601 UTC, to the second
    assert payload["summary"] == "prod-eu: drift found on 2 resources at abc1234def56 (detect mode): getProducts:prod, products-v1/prod"
    assert payload["resources"] == drift("getProducts:prod", "products-v1/prod")
    assert payload["more"] == 0 and payload["error"] is None
    assert payload["target"] is None  # a spec without targets


def test_a_targets_notifications_name_it(notifiers: list[Notifier]) -> None:
    n = make(notifiers, spec_target="prod-eu")
    assert n.summary("healed", run("applied", ("a:prod",))) == "pointsman [prod-eu]: healed 1 resource at abc1234def56: a:prod"
    assert n.payload("healed", run("applied", ("a:prod",)))["target"] == "prod-eu"
    assert n.slack_payload("healed", run("applied", ("a:prod",)))["text"].startswith("pointsman [prod-eu]: healed")


def test_summaries(notifiers: list[Notifier]) -> None:
    n = make(notifiers)
    assert n.summary("healed", run("applied", ("a:prod",))) == "pointsman: healed 1 resource at abc1234def56: a:prod"
    failed = run("failed", ("a:prod",), error=None, actions=[{"resource": "a:prod", "operation": "lambda.UpdateAlias", "outcome": "failed"}])
    assert n.summary("apply_failed", failed) == "pointsman: apply failed: a:prod lambda.UpdateAlias"
    assert n.summary("apply_failed", run("failed", error="a:prod: AccessDenied\nmore")) == "pointsman: apply failed: a:prod: AccessDenied more"
    invalid = run("invalid", error="aliases.yaml:3: bad; routes.yaml:1: worse")
    assert n.summary("invalid_commit", invalid) == "pointsman: commit abc1234def56 is invalid: aliases.yaml:3: bad"
    assert n.summary("recovered", run("in_sync")) == "pointsman: back in sync at abc1234def56"


def test_resources_are_capped(notifiers: list[Notifier]) -> None:
    n = make(notifiers)
    many = run("drift", tuple(f"fn{i}:prod" for i in range(150)))
    payload = n.payload("drift_found", many)
    assert len(payload["resources"]) == 100 and payload["more"] == 50
    assert payload["summary"].endswith("fn9:prod and 140 more")
    slack = n.slack_payload("drift_found", many)["blocks"][0]["text"]["text"]
    assert slack.count("\n• ") == 10 and "and 140 more" in slack


def test_hmac_signature_verifies_on_the_received_body(receiver: Receiver, notifiers: list[Notifier]) -> None:
    secret = "s3cret-value"
    n = make(notifiers, Target(receiver.url(), "json", secret=secret))
    n.observe(run("failed", ("a:prod",), error="a:prod: AccessDenied"))
    receiver.wait(1)
    _, headers, body = receiver.requests[0]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Pointsman-Signature"].encode(), expected.encode())
    wrong = "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(headers["X-Pointsman-Signature"].encode(), wrong.encode())
    assert json.loads(body)["error"] == "a:prod: AccessDenied"


def test_slack_payload_has_text_and_blocks(receiver: Receiver, notifiers: list[Notifier]) -> None:
    n = make(notifiers, Target(receiver.url("/services/T000/B000/XXXX"), "slack"), status_url="http://ctl/status")
    n.observe(run("drift", ("getProducts:prod", "<b>&")))
    receiver.wait(1)
    path, headers, body = receiver.requests[0]
    payload = json.loads(body)
    assert path == "/services/T000/B000/XXXX"
    assert not any(k.startswith("X-Pointsman") for k in headers)
    assert payload["text"] == "pointsman: drift found on 2 resources at abc1234def56 (detect mode): getProducts:prod, <b>&"
    [block] = payload["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    text = block["text"]["text"]
    assert '• `getProducts:prod` (changed) `FunctionVersion`: "3" -> "4"' in text  # values as the plan shows them
    assert "`&lt;b&gt;&amp;`" in text  # mrkdwn control characters escaped
    assert "<http://ctl/status|status>" in text


# ---------------------------------------------------------------------- delivery


def test_retries_on_500_and_429_with_backoff(receivers: list[Receiver], notifiers: list[Notifier]) -> None:
    r = Receiver(codes=[500, 429, 503])
    receivers.append(r)
    waits: list[float] = []
    n = make(notifiers, Target(r.url(), "json"), backoff=0.5, sleep=waits.append)
    n.observe(run("drift", ("a:prod",)))
    assert n.wait_idle(5)
    assert len(r.requests) == 4 and waits == [0.5, 1.0, 2.0]
    assert n.delivered == 1 and n.failed == 0
    assert len({headers["X-Pointsman-Delivery"] for _, headers, _ in r.requests}) == 1  # a retry is the same delivery
    assert len({body for _, _, body in r.requests}) == 1


def test_backoff_is_capped_and_gives_up_after_the_last_attempt(receivers: list[Receiver], notifiers: list[Notifier]) -> None:
    r = Receiver(codes=[500] * 20)
    receivers.append(r)
    waits: list[float] = []
    n = make(notifiers, Target(r.url(), "json"), attempts=8, backoff=10, sleep=waits.append)
    with structlog.testing.capture_logs() as logs:
        n.observe(run("drift", ("a:prod",)))
        assert n.wait_idle(5)
    assert len(r.requests) == 8 and waits == [10, 20, 40, 60, 60, 60, 60]
    assert n.failed == 1 and n.delivered == 0
    [entry] = [e for e in logs if e["event"] == "notification failed"]
    assert entry["error"] == "HTTP 500" and entry["attempts"] == 8 and entry["notification"] == "drift_found"


def test_no_retry_on_400(receivers: list[Receiver], notifiers: list[Notifier]) -> None:
    r = Receiver(codes=[400, 400])
    receivers.append(r)
    waits: list[float] = []
    n = make(notifiers, Target(r.url("/hook?token=QUERYSECRET"), "json", secret="SIGNSECRET"), sleep=waits.append)
    with structlog.testing.capture_logs() as logs:
        n.observe(run("drift", ("a:prod",)))
        assert n.wait_idle(5)
    assert len(r.requests) == 1 and waits == []
    assert n.failed == 1
    [entry] = [e for e in logs if e["event"] == "notification failed"]
    assert entry["target"] == r.url("/hook") and entry["error"] == "HTTP 400"
    assert "QUERYSECRET" not in repr(logs) and "SIGNSECRET" not in repr(logs)


def test_dead_and_hanging_targets_never_block(receivers: list[Receiver], receiver: Receiver, notifiers: list[Notifier]) -> None:
    hanging = Receiver(hang=True)
    receivers.append(hanging)
    waits: list[float] = []
    slack_dead = dead_url().replace("/hook", "/services/T0/B0/SLACKTOKEN")
    targets = [Target(slack_dead, "slack"), Target(hanging.url(), "json"), Target(receiver.url(), "json")]
    n = make(notifiers, *targets, attempts=2, timeout=0.2, sleep=waits.append)
    with structlog.testing.capture_logs() as logs:
        began = time.monotonic()
        assert n.observe(run("drift", ("a:prod",))) == ["drift_found"]
        assert n.observe(run("in_sync")) == ["recovered"]
        assert time.monotonic() - began < 0.5
        receiver.wait(2, timeout=5)
        assert n.wait_idle(5)
    assert receiver.events() == ["drift_found", "recovered"]
    assert len(hanging.requests) == 4  # 2 events x 2 attempts, each timed out
    assert n.delivered == 2 and n.failed == 4
    failures = [e for e in logs if e["event"] == "notification failed"]
    assert {e["target"] for e in failures} == {slack_dead.split("/services")[0], hanging.url("/hook")}
    assert "SLACKTOKEN" not in repr(logs)


def test_queue_is_bounded_and_drops_the_oldest(receivers: list[Receiver], notifiers: list[Notifier]) -> None:
    r = Receiver(hang=True)
    receivers.append(r)
    n = make(notifiers, Target(r.url(), "json"), timeout=5)
    with structlog.testing.capture_logs() as logs:
        n.observe(run("drift", ("fn0:prod",)))
        r.wait(1)  # the worker is now stuck on the first delivery
        began = time.monotonic()
        for i in range(1, 150):
            assert n.observe(run("drift", (f"fn{i}:prod",))) == ["drift_found"]
        assert time.monotonic() - began < 0.5
    assert n.dropped == 49
    assert len([e for e in logs if e["event"] == "notification queue full; dropped the oldest"]) == 49
    r.release.set()
    assert n.wait_idle(10)
    sent = [json.loads(body)["resources"][0]["resource"] for _, _, body in r.requests]
    assert sent == ["fn0:prod"] + [f"fn{i}:prod" for i in range(50, 150)]
    assert n.delivered == 101


def test_close_stops_the_worker(receiver: Receiver) -> None:
    n = Notifier([Target(receiver.url(), "json")])
    n.observe(run("drift", ("a:prod",)))
    n.close(timeout=2)
    assert not n._worker.is_alive()
    assert receiver.events() == ["drift_found"]  # what was queued got its attempt
    assert n.observe(run("in_sync")) == ["recovered"]  # still answers; nothing is sent any more
    time.sleep(0.05)
    assert receiver.events() == ["drift_found"]


# ---------------------------------------------------------------------- configuration


def test_targets_from() -> None:
    assert targets_from(None, None, None) == [] and targets_from("", "", "") == []
    assert targets_from("https://hooks.slack.com/services/T/B/X", "http://10.0.0.1:9000/in", "k") == [
        Target("https://hooks.slack.com/services/T/B/X", "slack"),
        Target("http://10.0.0.1:9000/in", "json", "k"),
    ]
    for bad in ("ftp://host/x", "hooks.slack.com/services/T/B/X", "https:///path", "http://h:99999/", "https://user:pw@h/x", "https://h/a b"):
        with pytest.raises(ValueError) as info:
            targets_from(bad, None, None)
        assert "\n" not in str(info.value) and bad not in str(info.value)
    with pytest.raises(ValueError, match="no webhook URL"):
        targets_from(None, None, "k")
    with pytest.raises(ValueError):
        Target("https://h/x", "email")


def test_who_made_a_drift_travels_with_it(notifiers: list[Notifier]) -> None:
    n = make(notifiers)
    healed = run("applied", ("getProducts:prod", "getreport:prod"), mode="apply")
    actor = {
        "arn": "arn:aws:iam::123456789012:user/alice",
        "source_ip": "203.0.113.5",
        "user_agent": "console.amazonaws.com",
        "event": "lambda UpdateAlias",
        "event_time": "2026-12-02T12:00:00Z",
        "event_id": "0b1c2d3e",
    }
    healed.drift[0]["actor"] = actor
    payload = n.payload("healed", healed)
    assert payload["resources"][0]["actor"] == actor
    assert "actor" not in payload["resources"][1]  # a drift no event named has none
    text = n.slack_payload("healed", healed)["blocks"][0]["text"]["text"]
    first, second = [line for line in text.splitlines() if line.startswith("• ")]
    assert first.endswith("by arn:aws:iam::123456789012:user/alice with the AWS console from 203.0.113.5"), first
    assert " by " not in second


def test_a_rollout_step_is_sent_with_its_line_and_state(receiver: Receiver, notifiers: list[Notifier]) -> None:
    n = make(notifiers, Target(receiver.url(), "json"))
    step = {"alias": "getProducts/prod", "line": "rolling out getProducts:prod 3 -> 2: step 3 of 4 (50%)", "event": "rollout_step", "weight": 50.0}
    record = RunRecord(started=T0, finished=T0 + 1, trigger="rollout", mode="apply", status="applied", commit_sha=SHA, id=9, rollouts=[step])
    assert n.observe(record) == ["rollout_step"]
    receiver.wait(1)
    _, headers, body = receiver.requests[0]
    payload = json.loads(body)
    assert headers["X-Pointsman-Event"] == "rollout_step"
    assert payload["summary"] == "pointsman: rolling out getProducts:prod 3 -> 2: step 3 of 4 (50%)"
    assert payload["rollout"] == step and payload["run"]["id"] == 9
