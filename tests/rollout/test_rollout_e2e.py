"""A merged PR rolls out as a canary, against moto's server: the controller drives the steps
with a fake clock, CloudWatch alarms and Lambda's per-version metrics (``ExecutedVersion``)
gate them, and the history database carries a rollout across restarts.

The alias moves from version 3 to version 2 of getProducts (any other published version is
"the new one"). Each run's AWS calls are read from its history entry.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.aws.clients import write_calls
from controller.loop.runner import Controller
from controller.loop.settings import RunSettings
from tests.e2e_support import git

pytestmark = pytest.mark.server

ROLLOUT = (
    'prod: {version: 2, description: "v1 production", rollout: {steps: [{weight: 10}, {pause: 5m}, {weight: 50}, {pause: 5m}],'
    " alarms: [getProducts-errors], analysis: {max_error_rate: 0.05, min_invocations: 10}}}"
)


@pytest.fixture
def estate(world: dict[str, Any]) -> dict[str, Any]:
    cloudwatch = world["clients"].client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="getProducts-errors", StateValue="OK", StateReason="quiet")  # the example estate has it (controller.demo.estate)
    spec = world["repo"] / "desired_state" / "products.yaml"
    spec.write_text(spec.read_text().replace('prod: {version: 3, description: "v1 production"}', ROLLOUT))
    git("commit", "-qam", "Roll out getProducts 2 to prod as a canary", cwd=world["repo"])
    return {**world, "cloudwatch": cloudwatch}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def controller(estate: dict[str, Any], clock: Clock, mode: str = "apply") -> Controller:
    settings = RunSettings(
        repo=str(estate["repo"]), state_dir=estate["tmp"] / "state", listen="127.0.0.1:0", interval=3600, jitter=0, poll_interval=0, mode=mode
    )
    c = Controller(settings)
    c.clock = clock
    return c


def alias(estate: dict[str, Any]) -> tuple[str, dict[str, float]]:
    item = estate["clients"].lambda_.get_alias(FunctionName="getProducts", Name="prod")
    return item["FunctionVersion"], {k: float(v) for k, v in ((item.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()}


def invocations(estate: dict[str, Any], clock: Clock, calls: int, errors: int) -> None:
    """What Lambda would publish for the canary version's invocations through the alias."""
    dims = [{"Name": "FunctionName", "Value": "getProducts"}, {"Name": "Resource", "Value": "getProducts:prod"}, {"Name": "ExecutedVersion", "Value": "2"}]
    at = datetime.fromtimestamp(clock.now - 30, UTC)
    estate["cloudwatch"].put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Value": calls, "Timestamp": at},
            {"MetricName": "Errors", "Dimensions": dims, "Value": errors, "Timestamp": at},
        ],
    )


def run(c: Controller) -> tuple[Any, dict[str, Any]]:
    record = c.reconcile("schedule")
    (row,) = [r for r in record.rollouts if r["alias"] == "getProducts/prod"]
    return record, row


def test_a_rollout_steps_through_its_schedule_and_rolls_back_when_its_alarm_fires(estate: dict[str, Any]) -> None:
    clock = Clock()
    c = controller(estate, clock)
    try:
        record, row = run(c)
        assert alias(estate) == ("3", {"2": 0.1})
        assert write_calls(record.api_calls) == {"lambda.UpdateAlias": 1}
        assert row["event"] == "rollout_started" and row["line"] == "rolling out getProducts:prod 3 -> 2: step 1 of 4 (10%)"
        assert record.status == "applied"
        assert c.rollout_due_at is not None and c.rollout_due_at <= clock.now  # the pause starts at the next look

        clock.now += 60
        invocations(estate, clock, 100, 1)
        record, row = run(c)
        assert write_calls(record.api_calls) == {}
        assert row["line"] == "rolling out getProducts:prod 3 -> 2: step 2 of 4 (10%), next step in 4 min, alarms OK, error rate 1% of 100 invocations"
        assert record.api_calls.get("cloudwatch.DescribeAlarms") == 1 and record.api_calls.get("cloudwatch.GetMetricData") == 1
        status = c.status_document()
        assert status["rollouts"][0]["weight"] == 10 and status["rollouts"][0]["next_check"].endswith("Z")
        assert status["in_sync"] is False and status["state"] == "rolling_out"  # git says 2; live serves 3 (90%) + 2 (10%)
        assert record.status == "rolling_out"

        clock.now += 241
        invocations(estate, clock, 100, 2)
        record, row = run(c)
        assert alias(estate) == ("3", {"2": 0.5}) and write_calls(record.api_calls) == {"lambda.UpdateAlias": 1}
        assert row["event"] == "rollout_step" and "step 3 of 4 (50%)" in row["line"]

        clock.now += 60
        estate["cloudwatch"].set_alarm_state(AlarmName="getProducts-errors", StateValue="ALARM", StateReason="errors")
        record, row = run(c)
        assert alias(estate) == ("3", {})  # rolled back in one call
        assert write_calls(record.api_calls) == {"lambda.UpdateAlias": 1}
        assert (
            row["event"] == "rollout_aborted"
            and row["line"] == "rollout of getProducts:prod 3 -> 2 aborted (alarm getProducts-errors in ALARM): rolled back to 3"
        )
        assert b"pointsman_rollout_aborts_total 1.0" in c.metrics.render()
        assert c.rollout_due_at is None

        estate["cloudwatch"].set_alarm_state(AlarmName="getProducts-errors", StateValue="OK", StateReason="quiet")
        clock.now += 60
        record, row = run(c)
        assert write_calls(record.api_calls) == {} and "not retried on this commit" in row["line"]
    finally:
        c.history.close()
    # A restart keeps it aborted: the record is in the history database.
    again = controller(estate, clock)
    try:
        record, row = run(again)
        assert write_calls(record.api_calls) == {} and row["status"] == "aborted"
    finally:
        again.history.close()


def test_a_restart_mid_pause_resumes_the_same_step_with_the_time_left_and_promotes(estate: dict[str, Any]) -> None:
    clock = Clock()
    c = controller(estate, clock)
    run(c)
    c.history.close()
    clock.now += 100
    c = controller(estate, clock)  # a new process: nothing in memory
    try:
        invocations(estate, clock, 50, 0)
        record, row = run(c)
        assert write_calls(record.api_calls) == {} and alias(estate) == ("3", {"2": 0.1})
        assert "step 2 of 4 (10%), next step in 3 min 20 s" in row["line"]
        for _ in range(2):  # the 50% step, then the end
            clock.now += 301
            invocations(estate, clock, 50, 0)
            run(c)
        assert alias(estate) == ("2", {})
        record = c.reconcile("schedule")
        assert record.status == "in_sync" and write_calls(record.api_calls) == {}
        assert [r["event"] for r in c.history.recent(10) for r in r.rollouts if r.get("event")][:2] == ["rollout_promoted", "rollout_step"]
    finally:
        c.history.close()


def test_detect_mode_never_shifts_traffic(estate: dict[str, Any]) -> None:
    c = controller(estate, Clock(), mode="detect")
    try:
        record, row = run(c)
        assert write_calls(record.api_calls) == {} and alias(estate) == ("3", {})
        assert row["applied"] is False and row["line"] == "rolling out getProducts:prod 3 -> 2: step 1 of 4 (10%)"
        assert record.actions[0]["outcome"] == "planned"
    finally:
        c.history.close()


def test_an_alias_changed_meanwhile_is_not_overwritten(estate: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """UpdateAlias carries the RevisionId read in the same run; Lambda answers
    PreconditionFailedException when the alias changed since (moto ignores RevisionId, so the
    refusal is Lambda's documented answer, raised here). The step is not recorded as done."""
    clock = Clock()
    c = controller(estate, clock)
    sent: list[dict[str, Any]] = []
    lam = c.clients.lambda_

    def refused(**params: Any) -> Any:
        sent.append(params)
        raise ClientError({"Error": {"Code": "PreconditionFailedException", "Message": "The Revision Id provided does not match"}}, "UpdateAlias")

    monkeypatch.setattr(lam, "update_alias", refused)
    try:
        record, row = run(c)
        assert sent and sent[0]["RevisionId"] and sent[0]["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
        assert record.status == "failed" and row["applied"] is False and row["event"] is None
        assert c.history.load_rollouts() == {}  # the step did not happen: nothing recorded
    finally:
        c.history.close()


def test_the_rollout_path_stays_in_git_and_the_spec_refuses_mistakes(tmp_path: Path) -> None:
    from controller.spec import SpecInvalid, load_spec

    (tmp_path / "a.yaml").write_text(
        "functions:\n  f:\n    aliases:\n      prod: {version: 2, routing: {'3': 0.1}, rollout: AllAtOnce}\n"
        "      dev: {version: 2, rollout: {steps: [{weight: 150}]}}\n"
        "      qa: {version: 2, rollout: {steps: [{pause: 5}]}}\n"
        "      demo: {version: 2, rollout: Canary}\n"
    )
    with pytest.raises(SpecInvalid) as info:
        load_spec(tmp_path)
    text = str(info.value)
    assert "a.yaml:4" in text and "routing and rollout on the same alias" in text
    assert "a.yaml:5" in text and "less than 100" in text
    assert "a.yaml:6" in text and "needs a unit" in text
    assert "a.yaml:7" in text and "unknown rollout preset 'Canary'" in text


def test_the_error_rate_gate_reads_the_canary_versions_metrics_and_rolls_back(estate: dict[str, Any]) -> None:
    clock = Clock()
    c = controller(estate, clock)
    try:
        run(c)
        clock.now += 60
        invocations(estate, clock, 40, 4)  # 10% of the canary's own invocations failed: above 5%
        record, row = run(c)
        assert alias(estate) == ("3", {}) and write_calls(record.api_calls) == {"lambda.UpdateAlias": 1}
        assert row["event"] == "rollout_aborted" and "error rate 10% of 40 invocations is above 5%" in row["line"]
        assert row["gates"]["invocations"] == 40 and row["gates"]["errors"] == 4
    finally:
        c.history.close()


def test_a_revert_mid_rollout_applies_at_once(estate: dict[str, Any]) -> None:
    clock = Clock()
    c = controller(estate, clock)
    try:
        run(c)
        assert alias(estate) == ("3", {"2": 0.1})
        spec = estate["repo"] / "desired_state" / "products.yaml"
        spec.write_text(spec.read_text().replace('prod: {version: 2, description: "v1 production"', 'prod: {version: 3, description: "v1 production"'))
        git("commit", "-qam", "Revert: getProducts 3 on prod", cwd=estate["repo"])
        clock.now += 5  # well inside the pause: a revert does not wait for it
        record = c.reconcile("schedule")
        assert alias(estate) == ("3", {}) and write_calls(record.api_calls) == {"lambda.UpdateAlias": 1}
        assert record.status == "applied" and c.status_document()["state"] == "in_sync"
    finally:
        c.history.close()


def test_reconcile_once_takes_the_due_steps_and_exits_2_while_a_rollout_is_in_progress(estate: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from controller.cli.main import main

    args = ["reconcile", "--once", "--repo", str(estate["repo"]), "--state-dir", str(estate["tmp"] / "once")]
    assert main(args) == 2  # the first step: 10%
    assert alias(estate) == ("3", {"2": 0.1})
    assert main(args) == 2  # pausing: nothing due, still rolling out
    assert json.loads(capsys.readouterr().out.split("\n}\n")[-2] + "\n}")["status"] == "rolling_out"
    assert alias(estate) == ("3", {"2": 0.1})


def test_rollout_steps_wait_while_a_sync_window_is_closed(estate: dict[str, Any]) -> None:
    (estate["repo"] / "desired_state" / "windows.yaml").write_text('windows:\n  - {deny: "12:00-13:00", timezone: UTC}\n')
    git("add", "-A", cwd=estate["repo"])
    git("commit", "-qm", "No applies at noon", cwd=estate["repo"])
    clock = Clock()
    noon = datetime.fromtimestamp(clock.now, UTC).replace(hour=12, minute=30, second=0).timestamp()
    clock.now = noon
    c = controller(estate, clock)
    try:
        record, row = run(c)
        assert write_calls(record.api_calls) == {} and alias(estate) == ("3", {})
        assert row["applied"] is False and row["line"] == "rolling out getProducts:prod 3 -> 2: step 1 of 4 (10%)"
        assert c.history.load_rollouts() == {}  # the step did not happen: nothing recorded
        clock.now = noon + 3600  # 13:30: the window is open again
        record, row = run(c)
        assert alias(estate) == ("3", {"2": 0.1}) and row["applied"] is True and row["event"] == "rollout_started"
    finally:
        c.history.close()
