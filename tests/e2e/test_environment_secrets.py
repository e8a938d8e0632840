"""Environment values never leave as text; values from SSM Parameter Store.

End to end over moto's server on 127.0.0.1: a function has a password set by hand in the
console, git declares it from an SSM SecureString. Every output Pointsman makes is collected
(plan as text, JSON and a PR comment, apply, history, the status page, /api/status, the
notifications, the logs, the files in its state directory) and searched for both secrets.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.app import build_runner
from controller.aws.clients import AwsClients, write_calls
from controller.engine.pipeline import reconcile
from controller.loop.settings import RunSettings
from controller.spec import load_spec
from tests.conftest import cli
from tests.e2e_support import converged_estate, git, wait_for

pytestmark = pytest.mark.server

FN = "getProductsV2"
ANCHOR = "  getProductsV2:          # backs products-v2: prod is version 2.2\n"
PARAMETER = "/shop/prod/db-password"
FROM_SSM = "s3cr3t-from-ssm"
HAND_SET = "hunter2-live-secret"
HAND_SET_DEBUG = "hunter2-debug-token"
SECRETS = (FROM_SSM, HAND_SET, HAND_SET_DEBUG)
TOKEN = "ui-token-for-tests"


class Receiver:
    """A webhook target on 127.0.0.1 keeping every body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for body in self.bodies]


def live_environment(clients: AwsClients) -> dict[str, str]:
    config = clients.lambda_.get_function_configuration(FunctionName=FN)
    return dict((config.get("Environment") or {}).get("Variables") or {})


def declare(spec_dir: Path, environment: str) -> None:
    path = spec_dir / "products.yaml"
    text = path.read_text()
    assert ANCHOR in text
    path.write_text(text.replace(ANCHOR, f"  getProductsV2:\n    environment: {environment}\n"))


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def world(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The example estate converged; then a password and a debug token set by hand on getProductsV2,
    the SecureString in SSM, and a commit that declares the environment from it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    repo = tmp_path / "repo"
    clients, _ = converged_estate(moto_server, repo)
    clients.client("ssm").put_parameter(Name=PARAMETER, Value=FROM_SSM, Type="SecureString")
    clients.lambda_.update_function_configuration(FunctionName=FN, Environment={"Variables": {"DB_PASSWORD": HAND_SET, "DEBUG": HAND_SET_DEBUG}})
    declare(repo / "desired_state", f"{{DB_PASSWORD: {{ssm: {PARAMETER}}}, TABLE: products-v2}}")
    git("commit", "-qam", "products v2 reads its database password from SSM", cwd=repo)
    receiver = Receiver()
    yield {"clients": clients, "repo": repo, "tmp": tmp_path, "receiver": receiver}
    receiver.server.shutdown()


def test_no_output_holds_a_value_and_apply_sets_the_decrypted_one(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, repo, receiver = world["clients"], world["repo"], world["receiver"]
    monkeypatch.chdir(repo)
    seen: list[str] = []  # everything a person, a CI log, a PR or a webhook could see

    def pointsman(*argv: str) -> tuple[int, str, str]:
        seen.extend(capsys.readouterr())  # first what was written since (the controller's logs)
        code, out, err = cli(capsys, "--log-level", "debug", *argv)
        seen.extend((out, err))
        return code, out, err

    # plan: text, JSON, the PR comment (with the spec changes against the commit before)
    plans = []
    for fmt in ("text", "json", "markdown"):
        code, out, err = pointsman("plan", "--spec", "desired_state", "--base", "HEAD~1", "--format", fmt)
        assert code == 2, out + err
        plans.append(out)
    text, as_json, markdown = plans[0], json.loads(plans[1]), plans[2]
    # What a reviewer sees: the names, the removal of the variable set by hand, digests.
    assert "environment.DB_PASSWORD: sha256:" in text
    assert "environment.DEBUG: sha256:" in text and "-> (none)" in text
    assert "DB_PASSWORD: (changed), DEBUG: (removed), TABLE: (added); removes DEBUG, set in AWS but not in git" in text
    (action,) = [a for a in as_json["actions"] if a["resource"] == f"lambda_function_config/{FN}"]
    variables = action["calls"][0]["params"]["Environment"]["Variables"]
    assert sorted(variables) == ["DB_PASSWORD", "TABLE"] and all(v.startswith("sha256:") for v in variables.values())
    assert "| `lambda_function_config/getProductsV2` | modified | environment.DEBUG |" in markdown
    assert f'| environment.DB_PASSWORD.ssm |  | "{PARAMETER}" |' in markdown  # git holds the reference, shown as it is
    assert "| environment.TABLE |  | sha256:346b953e |" in markdown  # a value written in git: its digest too

    # The controller, in detect mode first: drift on the status page, /api/status and a notification.
    settings = RunSettings(
        repo=str(repo),
        state_dir=world["tmp"] / "state",
        listen="127.0.0.1:0",
        interval=3600,
        jitter=0,
        poll_interval=0,
        mode="detect",
        ui_token=TOKEN,
        notify_webhook_url=receiver.url,
    )
    runner = build_runner(settings)
    runner.start()
    try:
        wait_for(lambda: runner.controller.status.last_run is not None, 60, "the first run")
        wait_for(lambda: receiver.events() == ["drift_found"], 10, "drift_found delivered")
        host, port = runner.http.server_address[:2]

        def page(path: str) -> str:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
                return str(response.read().decode())

        status = json.loads(page("/api/status"))
        assert status["state"] == "drifted"
        fields = [c["field"] for d in status["drift"] for c in d["changes"]]
        assert "environment.DEBUG" in fields and "environment.DB_PASSWORD" in fields
        seen += [page("/"), page("/api/status"), page("/api/history"), page("/runs/1")]
        assert "environment.DB_PASSWORD" in seen[-4]

        # apply (the CLI), then the controller sees it healed
        code, out, err = pointsman("apply", "--spec", "desired_state")
        assert code == 0, out + err
        assert live_environment(clients) == {"DB_PASSWORD": FROM_SSM, "TABLE": "products-v2"}  # resolved, decrypted, set

        runner.controller.reconcile("test")
        wait_for(lambda: receiver.events() == ["drift_found", "recovered"], 10, "recovered delivered")
        seen += [page("/"), page("/api/status"), page("/api/history"), page("/runs/2")]
        assert json.loads(seen[-3])["state"] == "in_sync"
    finally:
        runner.stop()
    seen += [body.decode() for body in receiver.bodies]

    for fmt in ("text", "json"):
        code, out, err = pointsman("history", "--state-dir", str(world["tmp"] / "state"), "--format", fmt)
        assert code == 0, out + err
    assert "environment.DEBUG" in out  # the history has the drift, by name
    seen += [path.read_bytes().decode("utf-8", "replace") for path in (world["tmp"] / "state").rglob("*") if path.is_file()]
    seen.extend(capsys.readouterr())  # the controller's own logs, since the last command
    everything = "\n".join(seen)
    # The logs were seen: the plan's, apply's and the controller's.
    assert "drift found" in everything and "action succeeded" in everything and "reconcile finished" in everything

    assert not [leaks(text) for text in seen if leaks(text)]
    # The check can fail: the secrets are where they should be.
    assert leaks(json.dumps(live_environment(clients))) == [FROM_SSM]

    # Converged: the next plan compares digests and writes nothing; the parameter is read in one call.
    again = reconcile(load_spec(repo / "desired_state"), AwsClients(rate_limiter=False))
    assert again.in_sync, [d.as_dict() for d in again.drift]
    assert write_calls(again.api_calls) == {}
    assert again.api_calls["ssm.GetParameters"] == 1
