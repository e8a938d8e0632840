"""End to end: git daemon on 127.0.0.1 + moto's server + `pointsman run` as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients, is_write
from controller.demo.estate import seed
from tests.e2e_support import (
    ROOT,
    GitServer,
    github_signature,
    replace_in,
    start_controller,
    start_git_server,
    wait_for,
)

pytestmark = pytest.mark.server
SECRET = "s3cret-for-tests"
PROMOTE = replace_in("desired_state/getreport.yaml", 'prod: {version: "1"', 'prod: {version: "2"')


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(moto_server + "/moto-api/reset", method="POST"), timeout=10).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    clients = AwsClients()
    seed(clients)
    yield clients


@pytest.fixture
def gitserver(tmp_path: Path) -> Iterator[GitServer]:
    server = start_git_server(tmp_path / "git")
    yield server
    server.process.terminate()
    server.process.wait(10)


@pytest.fixture
def controllers(tmp_path: Path) -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for c in started:
        c.stop()


def prod_version(aws: AwsClients, function: str = "getreport") -> str:
    return str(aws.lambda_.get_alias(FunctionName=function, Name="prod")["FunctionVersion"])


def launch(controllers, gitserver, aws, tmp_path, *extra, env=None, state="state"):
    c = start_controller(
        gitserver.url,
        tmp_path / state,
        aws.lambda_.meta.endpoint_url,
        *extra,
        env={"POINTSMAN_WEBHOOK_SECRET": SECRET, **(env or {})},
    )
    controllers.append(c)
    return c


def first_run_done(c) -> dict[str, Any]:
    """The first run's status, once it has finished. It must not have failed: the tests build on
    the aliases it creates, and a failure here names its cause (not a later "alias not found")."""
    status = wait_for(lambda: c.runs_finished() >= 1 and c.status(), 60, "first reconcile")
    assert status["last_run"]["status"] not in ("error", "failed", "invalid", "interrupted"), f"first run: {status['last_run']}\n{c.logs()[-4000:]}"
    return status


def test_pushed_commit_is_applied_within_one_interval(aws, gitserver, controllers, tmp_path):
    interval = 4.0
    c = launch(controllers, gitserver, aws, tmp_path, "--interval", str(interval), "--poll-interval", "0")
    status = first_run_done(c)
    assert status["last_run"]["status"] == "applied", c.logs()
    assert prod_version(aws) == "1"

    sha = gitserver.commit_and_push("Promote getreport 2 to prod", PROMOTE)
    pushed = time.monotonic()
    wait_for(lambda: prod_version(aws) == "2", interval + 10, "prod alias -> 2")
    assert time.monotonic() - pushed < interval + 10
    status = wait_for(lambda: (s := c.status())["applied_commit"] == sha and s, 10, "applied commit in status")
    run = next(r for r in c.history() if r["commit_sha"] == sha and r["actions"])
    assert run["trigger"] == "schedule"
    assert [(a["operation"], a["resource"], a["outcome"]) for a in run["actions"]] == [("lambda.UpdateAlias", "lambda_alias/getreport/prod", "succeeded")]
    assert {op: n for op, n in run["api_calls"].items() if is_write(op)} == {"lambda.UpdateAlias": 1}
    metrics = c.get("/metrics")[1]
    assert f'pointsman_applied_commit_info{{branch="main",commit="{sha}"}} 1.0' in metrics
    assert "pointsman_reconcile_duration_seconds_count" in metrics
    assert 'pointsman_aws_calls_total{operation="lambda.UpdateAlias"} 1.0' in metrics


def test_signed_webhook_triggers_at_once_unsigned_does_nothing(aws, gitserver, controllers, tmp_path):
    c = launch(controllers, gitserver, aws, tmp_path, "--interval", "600", "--poll-interval", "0")
    first_run_done(c)
    gitserver.commit_and_push("Promote getreport 2 to prod", PROMOTE)
    body = json.dumps({"ref": "refs/heads/main"}).encode()

    assert c.post_webhook(body, {"Content-Type": "application/json"}) == 401
    assert c.post_webhook(body, {"X-Hub-Signature-256": "sha256=" + "0" * 64}) == 401
    assert c.post_webhook(body, {"X-Gitlab-Token": "wrong"}) == 401
    time.sleep(3)
    assert prod_version(aws) == "1"
    assert c.runs_finished() == 1

    assert c.post_webhook(body, {"X-Hub-Signature-256": github_signature(SECRET, body)}) == 202
    wait_for(lambda: prod_version(aws) == "2", 20, "prod alias -> 2 after webhook")
    # The alias moves before the run is recorded: wait for the record, so the count below is settled.
    wait_for(lambda: c.runs_finished() >= 2, 20, "the webhook's run recorded")
    triggers = [r["trigger"] for r in c.history()]
    assert "webhook:github" in triggers

    # A push to another branch is acknowledged but reconciles nothing.
    other = json.dumps({"ref": "refs/heads/feature"}).encode()
    assert c.post_webhook(other, {"X-Gitlab-Token": SECRET}) == 202
    runs = c.runs_finished()
    time.sleep(2)
    assert c.runs_finished() == runs


def test_new_commit_is_noticed_by_polling(aws, gitserver, controllers, tmp_path):
    c = launch(controllers, gitserver, aws, tmp_path, "--interval", "600", "--poll-interval", "1")
    first_run_done(c)
    gitserver.commit_and_push("Promote getreport 2 to prod", PROMOTE)
    wait_for(lambda: prod_version(aws) == "2", 20, "prod alias -> 2 after poll")
    assert "new-commit" in [r["trigger"] for r in c.history()]


def test_invalid_commit_applies_nothing_and_shows_errors(aws, gitserver, controllers, tmp_path):
    c = launch(controllers, gitserver, aws, tmp_path, "--interval", "600", "--poll-interval", "0")
    good = first_run_done(c)["applied_commit"]

    def break_spec(work: Path) -> None:
        PROMOTE(work)  # a change that must NOT be applied ...
        path = work / "desired_state/getreport.yaml"
        path.write_text(path.read_text().replace("dev: {version: $LATEST", "dev: {versoin: $LATEST"))  # ... with an error

    bad = gitserver.commit_and_push("Broken spec", break_spec)
    # Console drift made meanwhile is still detected against the last good commit.
    aws.lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
    body = b"{}"
    assert c.post_webhook(body, {"X-Pointsman-Signature-256": github_signature(SECRET, body)}) == 202
    status = wait_for(lambda: (s := c.status())["head_commit"] == bad and s["last_run"]["head_sha"] == bad and s, 20, "bad commit seen")
    assert status["head_valid"] is False
    assert status["applied_commit"] == good
    assert any(e.startswith("desired_state/getreport.yaml:8: functions.getreport.aliases.dev") for e in status["spec_errors"]), status["spec_errors"]
    assert "invalid" in status["last_error"]
    assert prod_version(aws) == "1"  # nothing from the bad commit
    assert [d["resource"] for d in status["drift"]] == ["lambda_alias/getProducts/prod"]
    assert prod_version(aws, "getProducts") == "1"  # detected, not healed while head is invalid
    code, page = c.get("/")
    assert code == 200 and "is invalid: nothing from it is applied" in page
    assert "desired_state/getreport.yaml:8: functions.getreport.aliases.dev" in page

    fixed = gitserver.commit_and_push("Fix spec", replace_in("desired_state/getreport.yaml", "versoin", "version"))
    assert c.post_webhook(body, {"X-Pointsman-Signature-256": github_signature(SECRET, body)}) == 202
    wait_for(lambda: c.status()["applied_commit"] == fixed, 20, "fixed commit applied")
    assert prod_version(aws) == "2" and prod_version(aws, "getProducts") == "3"


def test_restart_keeps_history(aws, gitserver, controllers, tmp_path):
    c = launch(controllers, gitserver, aws, tmp_path, "--interval", "600", "--poll-interval", "0")
    first_run_done(c)
    assert c.stop() == 0
    first_ids = [r["id"] for r in json.loads(cli("history", "--state-dir", str(tmp_path / "state"), "--format", "json").stdout)]
    assert len(first_ids) == 1

    c2 = launch(controllers, gitserver, aws, tmp_path, "--interval", "600", "--poll-interval", "0")
    wait_for(lambda: c2.runs_finished() >= 2, 60, "second process's run")
    runs = c2.history()
    assert [r["status"] for r in runs][-1] == "applied" and runs[0]["status"] == "in_sync"
    assert runs[-1]["id"] == first_ids[0]
    text = cli("history", "--state-dir", str(tmp_path / "state")).stdout
    assert "in sync" in text and "healed" in text and "lambda.CreateAlias" in text


def test_detect_mode_makes_zero_write_calls(aws, gitserver, controllers, tmp_path):
    c = launch(controllers, gitserver, aws, tmp_path, "--interval", "600", "--poll-interval", "0", "--mode", "detect")
    status = first_run_done(c)
    assert status["mode"] == "detect" and status["last_run"]["status"] == "drift"
    run = c.history()[0]
    assert run["drift"] and all(a["outcome"] == "planned" for a in run["actions"])
    assert not [op for op in run["api_calls"] if is_write(op)]
    with pytest.raises(aws.lambda_.exceptions.ResourceNotFoundException):
        aws.lambda_.get_alias(FunctionName="getreport", Name="prod")
    assert 'pointsman_drift_resources{kind="lambda_alias",status="missing"} 11.0' in c.get("/metrics")[1]


def test_readyz_and_git_unreachable_keeps_last_good(aws, gitserver, controllers, tmp_path):
    c = launch(controllers, gitserver, aws, tmp_path, "--interval", "1", "--poll-interval", "0")
    first_run_done(c)
    wait_for(lambda: c.get("/readyz")[0] == 200, 20, "ready")
    gitserver.process.terminate()
    gitserver.process.wait(10)
    status = wait_for(lambda: (s := c.status())["git"]["error"] and s, 20, "git error reported")
    assert "git fetch git://127.0.0.1" in status["git"]["error"]
    assert c.get("/readyz")[0] == 503
    # Still reconciling against the last good commit: console drift is healed.
    aws.lambda_.update_alias(FunctionName="getreport", Name="prod", FunctionVersion="2")
    wait_for(lambda: prod_version(aws) == "1", 20, "drift healed while git is down")
    assert c.process.poll() is None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
