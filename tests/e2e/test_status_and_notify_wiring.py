"""`pointsman status` against a running controller, and the controller's notifications to a
local receiver on 127.0.0.1 (moto's server plays AWS; the controller runs in-process)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.app import build_runner
from controller.cli.main import main
from controller.loop.settings import RunSettings
from tests.e2e_support import converged_estate, free_port, git, wait_for

pytestmark = pytest.mark.server
SECRET = "notify-secret-for-tests"


class Receiver:
    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, str], bytes]] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.messages]


@pytest.fixture
def world(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    repo = tmp_path / "repo"
    clients, _ = converged_estate(moto_server, repo)
    receiver = Receiver()
    port = free_port()
    settings = RunSettings(
        repo=str(repo),
        state_dir=tmp_path / "state",
        listen=f"127.0.0.1:{port}",
        interval=3600,
        jitter=0,
        poll_interval=0,
        mode="detect",
        notify_webhook_url=receiver.url,
        notify_secret=SECRET,
    )
    runner = build_runner(settings)
    runner.start()
    wait_for(lambda: runner.controller.status.last_run is not None, 60, "the first run")
    yield {"clients": clients, "repo": repo, "runner": runner, "url": f"http://127.0.0.1:{port}", "receiver": receiver}
    runner.stop()
    receiver.server.shutdown()


def test_status_prints_the_state_and_waits_for_a_new_run(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--url", world["url"]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("in sync: live AWS matches git\n")
    assert "desired commit" in out and "'Example estate' by t" in out and "last run #1: in sync (schedule)" in out

    world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    world["runner"].trigger("test")
    assert main(["status", "--url", world["url"], "--wait", "drifted", "--timeout", "30"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("drifted: 1 resource differs from git (detect mode: drift is reported, not healed)\n")
    assert "  lambda_alias/getProducts/prod  [modified, since " in out
    assert '      version: "1" -> "3"' in out
    assert "Routing (2 routes differ from git):" in out and "myapi.com/v1 -> products-v1/prod -> getProducts:prod -> version 1 (git: version 3)" in out

    assert main(["status", "--url", world["url"], "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out)["state"] == "drifted"
    # Waiting for a commit that never comes times out with one line.
    assert main(["status", "--url", world["url"], "--wait", "drifted", "--commit", "deadbeef", "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: timed out after 1s waiting for drifted at commit deadbeef after a new run")


def test_status_of_no_controller_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reach the controller at http://127.0.0.1:")


def test_the_controller_notifies_each_state_change_once(world: dict[str, Any]) -> None:
    runner, receiver = world["runner"], world["receiver"]
    world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    for _ in range(3):  # three ticks over the same drift: one message
        runner.controller.reconcile("test")
    wait_for(lambda: receiver.events() == ["drift_found"], 10, "drift_found delivered")
    headers, body = receiver.messages[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Pointsman-Signature"], expected)
    message = json.loads(body)
    assert [r["resource"] for r in message["resources"]] == ["lambda_alias/getProducts/prod"]
    assert message["run"]["mode"] == "detect" and message["run"]["started"].endswith("Z")

    world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="3")
    runner.controller.reconcile("test")
    wait_for(lambda: receiver.events() == ["drift_found", "recovered"], 10, "recovered delivered")

    spec = world["repo"] / "desired_state" / "getreport.yaml"
    spec.write_text(spec.read_text().replace("version: $LATEST", "version: latest-please"))
    git("commit", "-am", "Break the dev alias", cwd=world["repo"])
    runner.controller.reconcile("test")
    runner.controller.reconcile("test")
    wait_for(lambda: receiver.events() == ["drift_found", "recovered", "invalid_commit"], 10, "invalid_commit delivered")
    assert "is invalid" in json.loads(receiver.messages[-1][1])["summary"]
