"""The controller with guardrails (moto's server, a local git repo): a refused plan is recorded as
refused with no write call; a sync window defers applies until it closes (fake clock); a change to
an alias with approve: manual waits, the rest is applied, and `pointsman approve RUN` or the status
page's Approve button applies it. /api/status stays within its published schema throughout."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from controller.app import build_runner
from controller.aws.clients import write_calls
from controller.cli.main import main
from controller.loop.runner import Runner
from controller.loop.settings import RunSettings
from tests.e2e_support import git, wait_for
from tests.loop.test_status_schema import check

pytestmark = pytest.mark.server

TOKEN = "approve-token-123"


def start(world: dict[str, Any], name: str, **settings: Any) -> Runner:
    runner = build_runner(
        RunSettings(
            repo=str(world["repo"]),
            state_dir=world["tmp"] / f"state-{name}",
            listen="127.0.0.1:0",
            interval=3600,
            jitter=0,
            poll_interval=0,
            ui_token=TOKEN,
            **settings,
        )
    )
    return runner


def url(runner: Runner) -> str:
    assert runner.http is not None
    host, port = runner.http.server_address[:2]
    return f"http://{host}:{port}"


def status(runner: Runner) -> dict[str, Any]:
    with urllib.request.urlopen(url(runner) + "/api/status", timeout=5) as response:
        document = json.loads(response.read())
    check(document)
    return document


def commit(world: dict[str, Any], change: Any, message: str) -> None:
    path = world["repo"] / "desired_state" / "getreport.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    git("commit", "-qam", message, cwd=world["repo"])


def run_once(runner: Runner, trigger: str = "schedule") -> Any:
    return runner.controller.reconcile(trigger)


def first_run(runner: Runner) -> Any:
    """Start the runner and wait for its first (scheduled) run; that run's record."""
    runner.start()
    wait_for(lambda: runner.controller.status.last_run is not None and runner.controller.status.running is None, 60, "the first run")
    return runner.controller.history.recent(1)[0]


def prod_version(world: dict[str, Any]) -> str:
    return str(world["clients"].lambda_.get_alias(FunctionName="getreport", Name="prod")["FunctionVersion"])


def _two_changes(d: dict[str, Any]) -> None:
    d["functions"]["getreport"]["aliases"]["prod"]["version"] = "2"
    d["functions"]["getreport"]["aliases"]["dev"]["description"] = "changed"


def test_a_plan_over_max_changes_is_recorded_as_refused_and_nothing_is_written(world: dict[str, Any]) -> None:
    commit(world, _two_changes, "Two changes")
    runner = start(world, "refused", max_changes=1)
    try:
        record = first_run(runner)
        assert record.status == "refused" and record.error.startswith("plan refused: the plan has 2 actions, over --max-changes 1")
        assert write_calls(record.api_calls) == {}
        assert {a["outcome"] for a in record.actions} == {"refused"}
        document = status(runner)
        assert document["state"] == "error" and document["guardrails"]["refused"] == ["the plan has 2 actions, over --max-changes 1"]
        assert document["guardrails"]["max_changes"] == 1
        with urllib.request.urlopen(url(runner) + "/", timeout=5) as response:
            assert "Plan refused by a guardrail" in response.read().decode()
        assert prod_version(world) == "1"
    finally:
        runner.stop()


def test_a_deny_window_defers_the_controller_until_it_closes(world: dict[str, Any]) -> None:
    def change(d: dict[str, Any]) -> None:
        _two_changes(d)
        d["windows"] = [{"deny": "Fri 16:00-Mon 08:00", "timezone": "Europe/Paris"}]

    commit(world, change, "Two changes, and no applies over the weekend")
    runner = start(world, "window")
    runner.controller.clock = lambda: datetime(2026, 3, 6, 17, 0, tzinfo=UTC).timestamp()  # Friday 18:00 in Paris
    try:
        record = first_run(runner)
        assert record.status == "deferred" and record.error == "sync window: applies wait until Mon 08:00 Europe/Paris (in 2 d 14 h)"
        assert write_calls(record.api_calls) == {}
        document = status(runner)
        assert document["state"] == "drifted" and document["state_reason"].endswith("(sync window: applies wait until Mon 08:00 Europe/Paris (in 2 d 14 h))")
        assert document["guardrails"]["window"] == record.error
        assert prod_version(world) == "1"
        runner.controller.clock = lambda: datetime(2026, 3, 9, 8, 0, tzinfo=UTC).timestamp()  # Monday 09:00: open again
        record = run_once(runner)
        assert record.status == "applied" and write_calls(record.api_calls) == {"lambda.UpdateAlias": 2}
        assert status(runner)["guardrails"]["window"] is None and prod_version(world) == "2"
    finally:
        runner.stop()


def test_manual_approval_by_the_command_and_by_the_page(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def change(d: dict[str, Any]) -> None:
        _two_changes(d)
        d["functions"]["getreport"]["aliases"]["prod"]["approve"] = "manual"

    commit(world, change, "Promote getreport:prod, with approval")
    runner = start(world, "approval")
    try:
        record = first_run(runner)
        assert record.status == "waiting"
        assert write_calls(record.api_calls) == {"lambda.UpdateAlias": 1}  # dev, not prod
        document = status(runner)
        approval = document["guardrails"]["approval"]
        assert approval["run"] == record.id and [a["resource"] for a in approval["actions"]] == ["lambda_alias/getreport/prod"]
        assert "waiting for approval of run" in document["state_reason"]
        with urllib.request.urlopen(url(runner) + "/", timeout=5) as response:
            assert f'action="/approve/{record.id}"' in response.read().decode()
        assert prod_version(world) == "1"

        # Another run id, or no token: nothing is approved.
        monkeypatch.setenv("POINTSMAN_UI_TOKEN", TOKEN)
        assert main(["approve", str(record.id + 100), "--url", url(runner)]) == 1
        assert "is not the one waiting for approval" in capsys.readouterr().err
        monkeypatch.setenv("POINTSMAN_UI_TOKEN", "wrong")
        assert main(["approve", str(record.id), "--url", url(runner)]) == 1
        assert "HTTP 403" in capsys.readouterr().err
        assert prod_version(world) == "1"

        # By the command: the controller reconciles at once and applies it.
        monkeypatch.setenv("POINTSMAN_UI_TOKEN", TOKEN)
        assert main(["approve", str(record.id), "--url", url(runner)]) == 0
        wait_for(lambda: prod_version(world) == "2", 60, "the approved alias update")
        wait_for(lambda: status(runner)["guardrails"]["approval"] is None and not status(runner)["running"], 60, "the approval used")

        # By the page: a new change waits, the form with the token approves it.
        commit(world, lambda d: d["functions"]["getreport"]["aliases"]["prod"].update(version="1"), "Roll getreport:prod back, with approval")
        record = run_once(runner)
        assert record.status == "waiting" and write_calls(record.api_calls) == {}
        form = urllib.parse.urlencode({"token": TOKEN}).encode()
        request = urllib.request.Request(f"{url(runner)}/approve/{record.id}", data=form, headers={"Content-Type": "application/x-www-form-urlencoded"})

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.build_opener(NoRedirect).open(request, timeout=5)
        assert answer.value.code == 303 and answer.value.headers["Location"] == "/"
        wait_for(lambda: prod_version(world) == "1", 60, "the alias update approved on the page")
    finally:
        runner.stop()
