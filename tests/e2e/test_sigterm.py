"""SIGTERM during a reconcile: the action in flight finishes (never publish without its alias
update), nothing new starts, the run is recorded, and the process exits 0."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from controller.app import build_runner
from controller.aws.clients import AwsClients, is_write
from controller.loop.history import History
from controller.loop.runner import Controller
from controller.loop.settings import RunSettings
from tests.conftest import EXAMPLE_SPEC
from tests.e2e_support import free_port, git


def make_repo(tmp_path: Path, latest_sha: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "--initial-branch=main", cwd=repo)
    shutil.copytree(EXAMPLE_SPEC, repo / "desired_state")
    path = repo / "desired_state/getreport.yaml"
    path.write_text(path.read_text().replace('prod: {version: "1"', f'prod: {{version: "sha256:{latest_sha}"'))
    git("add", "-A", cwd=repo)
    git("commit", "-m", "prod runs the code on $LATEST", cwd=repo)
    return repo


def test_sigterm_mid_reconcile_finishes_publish_and_alias_then_records(estate, clients: AwsClients, tmp_path):
    latest = clients.lambda_.get_function(FunctionName="getreport")["Configuration"]["CodeSha256"]
    settings = RunSettings(
        repo=str(make_repo(tmp_path, latest)),
        state_dir=tmp_path / "state",
        listen=f"127.0.0.1:{free_port()}",
        interval=600,
        poll_interval=0,
    )
    sent: list[float] = []

    def terminate_during_publish(**_):
        # The signal lands while PublishVersion is in flight.
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)

    clients.lambda_.meta.events.register("before-call.lambda.PublishVersion", terminate_during_publish)
    clients.counter.reset()
    runner = build_runner(settings, Controller(settings, clients=clients))

    assert runner.run_forever() == 0
    assert sent, "PublishVersion never ran"

    history = History(settings.state_dir / "history.sqlite3")
    (run,) = history.recent()
    history.close()
    assert run.status == "interrupted" and run.finished is not None
    outcomes = {a["resource"]: a["outcome"] for a in run.actions}
    assert outcomes.pop(f"lambda_version/getreport/sha256:{latest}") == "succeeded"
    assert outcomes.pop("lambda_alias/getreport/prod") == "succeeded"  # finished the chain it started
    assert set(outcomes.values()) == {"skipped"} and len(outcomes) == 38
    assert {op: n for op, n in run.api_calls.items() if is_write(op)} == {"lambda.PublishVersion": 1, "lambda.CreateAlias": 1}
    assert clients.lambda_.get_alias(FunctionName="getreport", Name="prod")["FunctionVersion"] == "3"
    assert [a["Name"] for a in clients.lambda_.list_aliases(FunctionName="getProducts")["Aliases"]] == []


def test_restart_after_interruption_converges(estate, clients: AwsClients, tmp_path):
    """A run left 'running' by a killed process is closed as interrupted; the next run converges."""
    settings = RunSettings(
        repo=str(make_repo(tmp_path, clients.lambda_.get_function(FunctionName="getreport")["Configuration"]["CodeSha256"])),
        state_dir=tmp_path / "state",
        listen=f"127.0.0.1:{free_port()}",
        poll_interval=0,
    )
    from controller.loop.history import RunRecord

    stale = History(settings.state_dir / "history.sqlite3")
    stale.start(RunRecord(started=time.time(), trigger="schedule", mode="apply"))
    stale.close()

    controller = Controller(settings, clients=clients)
    record = controller.reconcile("once")
    assert record.status == "applied", record.error
    assert controller.reconcile("once").status == "in_sync"
    statuses = [r.status for r in controller.history.recent()]
    controller.history.close()
    assert statuses == ["in_sync", "applied", "interrupted"]
