"""The rollout state machine, run by hand: a fake clock, fake gate readings, and the alias's
live state updated as an apply would. Each run's decision is checked: what the alias serves,
the step, the line people read, and the record persisted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.rollout import ABORTED, PROGRESSING, PROMOTED, WAITING, Decision, Readings, RolloutRecord, decide
from controller.spec.schema import RolloutSpec

SPEC = RolloutSpec.model_validate(
    {
        "steps": [{"weight": 10}, {"pause": "5m"}, {"weight": 50}, {"pause": "5m"}],
        "alarms": ["getProducts-errors"],
        "analysis": {"max_error_rate": 0.01, "min_invocations": 50, "deadline": "10m"},
    }
)


@dataclass
class World:
    """The live alias, the persisted record and what the gates read."""

    version: str = "7"
    routing: dict[str, float] = field(default_factory=dict)
    record: RolloutRecord | None = None
    alarm: str = "OK"
    errors: float = 0.0
    invocations: float = 100.0
    reads: int = 0
    commit: str = "c1"

    def gates(self, since: float) -> Readings:
        self.reads += 1
        return Readings(alarms={"getProducts-errors": self.alarm}, errors=self.errors, invocations=self.invocations)

    def run(self, now: float, target: str = "8", spec: RolloutSpec = SPEC, control: str | None = None, apply: bool = True, **kw: Any) -> Decision:
        d = decide(
            alias="getProducts/prod",
            rollout=spec,
            target=target,
            live_version=self.version,
            live_routing=dict(self.routing),
            record=self.record,
            commit=self.commit,
            now=now,
            gates=self.gates,
            control=control,
            **kw,
        )
        if apply:
            self.version, self.routing, self.record = d.version, dict(d.routing), d.record
        return d


def test_a_full_rollout_moves_traffic_step_by_step_then_promotes() -> None:
    w = World()
    d = w.run(0)
    assert (d.version, d.routing, d.event) == ("7", {"8": 0.1}, "rollout_started")
    assert d.line == "rolling out getProducts:prod 7 -> 8: step 1 of 4 (10%)"
    d = w.run(10)
    assert (d.version, d.routing, d.event) == ("7", {"8": 0.1}, None)
    assert d.line == "rolling out getProducts:prod 7 -> 8: step 2 of 4 (10%), next step in 4 min 50 s, alarms OK, error rate 0% of 100 invocations"
    assert d.next_check == 300
    w.errors = 1  # 1%: at the limit, not above it
    d = w.run(300)
    assert (d.version, d.routing, d.event) == ("7", {"8": 0.5}, "rollout_step")
    assert d.line.startswith("rolling out getProducts:prod 7 -> 8: step 3 of 4 (50%), alarms OK, error rate 1% of 100 invocations")
    d = w.run(320)
    assert d.routing == {"8": 0.5} and "next step in 4 min 40 s" in d.line
    d = w.run(600)
    assert (d.version, d.routing, d.event) == ("8", {}, "rollout_promoted")
    assert w.record is not None and w.record.status == PROMOTED
    d = w.run(610)
    assert (d.version, d.routing, d.line) == ("8", {}, "")
    steps = [e["step"] for e in w.record.log]
    assert steps == [0, 2, 4] and all("gates" in e for e in w.record.log)


def test_an_alarm_mid_rollout_rolls_back_at_once_and_is_not_retried_on_the_same_commit() -> None:
    w = World()
    w.run(0)
    w.alarm = "ALARM"
    d = w.run(60)
    assert (d.version, d.routing, d.event) == ("7", {}, "rollout_aborted")
    assert d.line == "rollout of getProducts:prod 7 -> 8 aborted (alarm getProducts-errors in ALARM): rolled back to 7"
    assert w.record is not None and w.record.status == ABORTED
    w.alarm = "OK"
    d = w.run(120)  # the same commit: stays rolled back, says so
    assert (d.version, d.routing, d.event) == ("7", {}, None)
    assert "not retried on this commit" in d.line
    w.commit = "c2"  # a new commit starts again from what is live
    d = w.run(180)
    assert (d.routing, d.event) == ({"8": 0.1}, "rollout_started")


def test_retry_restarts_an_aborted_rollout_on_the_same_commit() -> None:
    w = World()
    w.run(0)
    w.run(10, control="abort")
    assert w.record is not None and w.record.status == ABORTED and w.record.reason == "by request"
    assert (w.version, w.routing) == ("7", {})
    d = w.run(20, control="retry")
    assert (d.routing, d.event) == ({"8": 0.1}, "rollout_started")


def test_promote_skips_the_remaining_steps() -> None:
    w = World()
    w.run(0)
    d = w.run(10, control="promote")
    assert (d.version, d.routing, d.event) == ("8", {}, "rollout_promoted")


def test_the_error_rate_gate_trips_holds_on_no_data_and_aborts_at_the_deadline() -> None:
    w = World(errors=5, invocations=100)  # 5% > 1%
    w.run(0)
    d = w.run(30)
    assert d.event == "rollout_aborted" and "error rate 5% of 100 invocations is above 1%" in d.line
    # Too few invocations: the pause ends but the step holds, then rolls back at the deadline.
    w = World(errors=0, invocations=3)
    w.run(0)
    assert w.run(60).routing == {"8": 0.1}  # pausing: too little data is no verdict yet
    d = w.run(300)
    assert d.routing == {"8": 0.1} and "holds: 3 of the 50 invocations needed" in d.line and "rolls back in 10 min" in d.line
    assert w.record is not None and w.record.status == PROGRESSING and w.record.held_since == 300
    d = w.run(899)
    assert d.routing == {"8": 0.1}
    d = w.run(900)
    assert d.event == "rollout_aborted" and "held 10 min for want of data" in d.line
    # on_no_data: pass lets it through.
    passing = RolloutSpec.model_validate(
        {**SPEC.model_dump(exclude_none=True), "analysis": {"max_error_rate": 0.01, "min_invocations": 50, "on_no_data": "pass"}}
    )
    w = World(invocations=3)
    w.run(0, spec=passing)
    assert w.run(300, spec=passing).routing == {"8": 0.5}


def test_a_start_waits_while_a_gate_alarm_is_in_alarm() -> None:
    w = World(alarm="ALARM")
    d = w.run(0)
    assert (d.version, d.routing) == ("7", {}) and "waits: alarm getProducts-errors is in ALARM already" in d.line
    assert w.record is not None and w.record.status == WAITING
    w.alarm = "OK"
    d = w.run(30)
    assert (d.routing, d.event) == ({"8": 0.1}, "rollout_started")
    w = World(alarm="ALARM")
    assert w.run(0, ignore_alarms_at_start=True).routing == {"8": 0.1}


def test_a_revert_applies_at_once_and_a_third_version_restarts_from_live() -> None:
    w = World()
    w.run(0)
    w.run(10)
    d = w.run(20, target="7")  # the revert: 7 is the primary still
    assert (d.version, d.routing) == ("7", {})
    w = World()
    w.run(0)
    d = w.run(30, target="9")  # a new target mid-rollout: its canary replaces 8's weight
    assert (d.version, d.routing, d.event) == ("7", {"9": 0.1}, "rollout_started")


def test_a_lost_record_resumes_at_the_live_weight_and_no_weight_goes_backwards() -> None:
    w = World()
    w.run(0)
    w.run(10)
    w.run(300)  # 50% live
    w.record = None  # a new state dir, a controller moved
    d = w.run(310)
    assert d.routing == {"8": 0.5} and "step 4 of 4 (50%)" in d.line


@pytest.mark.parametrize("preset", ["AllAtOnce"])
def test_all_at_once_moves_in_one_step(preset: str) -> None:
    w = World()
    d = w.run(0, spec=RolloutSpec.model_validate({"preset": preset}))
    assert (d.version, d.routing, d.event) == ("8", {}, "rollout_promoted")


def test_iam_policy_adds_cloudwatch_only_for_the_gates_rollouts_use(tmp_path: Any) -> None:
    from controller.engine.iam import policy_document
    from controller.spec import load_spec

    def sids(text: str) -> dict[str, Any]:
        (tmp_path / "a.yaml").write_text(text)
        return {s["Sid"]: s for s in policy_document(load_spec(tmp_path))["Statement"]}

    plain = sids("functions:\n  f:\n    aliases:\n      prod: {version: 2}\n")
    assert "PointsmanRolloutAlarms" not in plain and "PointsmanRolloutMetrics" not in plain
    preset = sids("functions:\n  f:\n    rollout: Canary10Percent5Minutes\n    aliases:\n      prod: {version: 2}\n")
    assert "PointsmanRolloutAlarms" not in preset and "PointsmanRolloutMetrics" not in preset
    gated = sids(
        "functions:\n  f:\n    aliases:\n      prod: {version: 2, rollout: {preset: Canary10Percent5Minutes, alarms: [f-errors],"
        " analysis: {max_error_rate: 0.01}}}\n"
    )
    assert gated["PointsmanRolloutAlarms"]["Action"] == ["cloudwatch:DescribeAlarms"]
    assert gated["PointsmanRolloutAlarms"]["Resource"] == ["arn:aws:cloudwatch:*:*:alarm:f-errors"]
    assert gated["PointsmanRolloutMetrics"]["Action"] == ["cloudwatch:GetMetricData"]


def test_each_rollout_step_is_one_notification_and_not_drift_news() -> None:
    from controller.loop.history import RunRecord
    from controller.loop.notify import Notifier

    n = Notifier([])
    queued: list[tuple[str, Any]] = []
    n._enqueue = lambda event, record, rollout=None: queued.append((event, rollout))  # type: ignore[method-assign]
    step = {"alias": "getProducts/prod", "line": "rolling out getProducts:prod 3 -> 2: step 1 of 4 (10%)", "event": "rollout_started", "status": "progressing"}
    drift = [{"resource": "lambda_alias/getProducts/prod", "kind": "lambda_alias", "status": "modified", "changes": []}]
    record = RunRecord(started=0, finished=1, trigger="schedule", mode="apply", status="applied", drift=drift, rollouts=[step])
    assert n.observe(record) == ["rollout_started"]
    assert queued == [("rollout_started", step)]  # no "healed": a step is not a heal
    pause = RunRecord(started=2, finished=3, trigger="rollout", mode="apply", status="rolling_out", rollouts=[{**step, "event": None}])
    assert n.observe(pause) == []
    aborted = {**step, "event": "rollout_aborted", "line": "rollout of getProducts:prod 3 -> 2 aborted (alarm getProducts-errors in ALARM): rolled back to 3"}
    assert n.observe(RunRecord(started=4, finished=5, trigger="rollout", mode="apply", status="applied", drift=drift, rollouts=[aborted])) == [
        "rollout_aborted"
    ]


def test_a_versions_catalogue_gives_its_rollout_to_the_aliases_it_pins(tmp_path: Any) -> None:
    from controller.spec import load_spec

    (tmp_path / "users.yaml").write_text(
        "rest_apis:\n"
        "  users-api:\n"
        "    stages:\n"
        "      prod: {}\n"
        "    versions:\n"
        "      header: Version\n"
        "      default: '2022-01-01'\n"
        "      rollout: {preset: Linear10PercentEvery1Minute, alarms: [users-errors]}\n"
        "      routes: [{method: POST, path: /users, function: postUser}]\n"
        "      catalogue:\n"
        "        '2022-01-01': {functions: {postUser: 1}}\n"
        "        '2022-11-01': {functions: {postUser: $LATEST}}\n"
    )
    spec = load_spec(tmp_path).functions["postUser"].spec
    pinned = spec.rollout_of("2022-01-01")
    assert pinned is not None and pinned.preset == "Linear10PercentEvery1Minute" and pinned.alarms == ["users-errors"]
    assert len(pinned.schedule()) == 18  # 10% .. 90%, each with a minute's pause
    assert spec.rollout_of("2022-11-01") is None  # $LATEST moves at once


def test_a_rollout_step_carries_the_revision_id_and_lambda_refusing_it_fails_only_that_action() -> None:
    """Lambda answers PreconditionFailedException when the RevisionId of an UpdateAlias is not
    the alias's current one (Lambda API reference, UpdateAlias). moto ignores RevisionId, so the
    answer is given by botocore's Stubber on a client of its own."""
    import boto3
    from botocore.stub import Stubber

    from controller.engine.apply import apply_actions
    from controller.kinds.lambda_alias import LambdaAlias
    from controller.model import FieldChange, OutcomeStatus, Resource

    context = {"function": "getProducts", "alias": "prod", "rollout": "rolling out getProducts:prod 7 -> 8: step 1 of 4 (10%)", "revision_id": "rev-1"}
    desired = Resource("lambda_alias", "getProducts/prod", {"version": "7", "description": "", "routing": {"8": 0.1}}, context)
    live = Resource("lambda_alias", "getProducts/prod", {"version": "7", "description": "", "routing": {}}, {"function": "getProducts", "alias": "prod"})
    (action,) = LambdaAlias().converge(desired, live, (FieldChange("routing", {}, {"8": 0.1}),), [])
    (call,) = action.calls
    assert call.params == {"FunctionName": "getProducts", "Name": "prod", "RoutingConfig": {"AdditionalVersionWeights": {"8": 0.1}}, "RevisionId": "rev-1"}
    assert action.reason == "rolling out getProducts:prod 7 -> 8: step 1 of 4 (10%)"

    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_client_error("update_alias", service_error_code="PreconditionFailedException", http_status_code=412, expected_params=dict(call.params))

    class Clients:
        def client(self, service: str) -> Any:
            assert service == "lambda"
            return client

    with stub:
        (outcome,) = apply_actions(Clients(), [action])  # type: ignore[arg-type]
    stub.assert_no_pending_responses()
    assert outcome.status is OutcomeStatus.FAILED and "PreconditionFailedException" in outcome.error
