"""Console changes seen in seconds: CloudTrail events on an SQS queue drive targeted reconciles.

moto's server on 127.0.0.1 plays AWS (Lambda, API Gateway and SQS); the real `aws` CLI makes
the console change; the test puts the CloudTrail event AWS would record for it on the queue,
in the shape EventBridge delivers ("AWS API Call via CloudTrail"). The controller runs
in-process, so each run's AWS calls can be read from its history.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import build_runner
from controller.aws.clients import USER_AGENT, write_calls
from controller.cli.main import main
from controller.cli.status import render
from controller.loop.runner import Runner
from controller.loop.settings import RunSettings
from tests.e2e_support import converged_estate, wait_for
from tests.loop.test_events_parse import ALICE, envelope, record
from tests.loop.test_status_schema import check

pytestmark = pytest.mark.server

AWS_CLI = Path(sys.executable).parent / "aws"


def cloudtrail_event(source: str, name: str, parameters: dict[str, Any], *, user_agent: str = "aws-cli/1.32.0 Python/3.11 Linux") -> str:
    """An EventBridge "AWS API Call via CloudTrail" event, as AWS delivers it to an SQS target."""
    return envelope(record(source.removeprefix("aws."), name, parameters, userAgent=user_agent), source)


@pytest.fixture
def world(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    repo = tmp_path / "repo"
    # Converged before the controller starts: its full run writes nothing, so it keeps every read.
    clients, _ = converged_estate(moto_server, repo)
    queue = clients.client("sqs").create_queue(QueueName="pointsman-events")["QueueUrl"]
    yield {"clients": clients, "queue": queue, "repo": repo, "endpoint": moto_server, "tmp": tmp_path}


def start(world: dict[str, Any], mode: str) -> Runner:
    settings = RunSettings(
        repo=str(world["repo"]),
        state_dir=world["tmp"] / f"state-{mode}",
        listen="127.0.0.1:0",
        interval=3600,  # the full scan runs once; only events bring the runs after it
        jitter=0,
        poll_interval=0,
        mode=mode,
        events_queue=world["queue"],
        events_wait=1,
    )
    runner = build_runner(settings)
    runner.start()
    wait_for(lambda: runner.controller.has_reads() and runner.events.handled == 0, 60, "the first full run")
    return runner


def aws(world: dict[str, Any], *args: str) -> Any:
    env = {**os.environ, "AWS_ENDPOINT_URL": world["endpoint"], "AWS_PAGER": ""}
    proc = subprocess.run([str(AWS_CLI), *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def send(world: dict[str, Any], *bodies: str) -> None:
    for body in bodies:
        world["clients"].client("sqs").send_message(QueueUrl=world["queue"], MessageBody=body)


def event_runs(runner: Runner) -> list[Any]:
    return [r for r in runner.controller.history.recent(100) if r.trigger == "event" and r.finished]


def queue_is_empty(world: dict[str, Any]) -> bool:
    attrs = world["clients"].client("sqs").get_queue_attributes(QueueUrl=world["queue"], AttributeNames=["All"])["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_console_change_is_healed_from_its_event_with_only_its_own_reads(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    runner = start(world, "apply")
    try:
        aws(world, "lambda", "update-alias", "--function-name", "getProducts", "--name", "prod", "--function-version", "1")
        send(world, cloudtrail_event("aws.lambda", "UpdateAlias20150331", {"functionName": "getProducts", "name": "prod", "functionVersion": "1"}))
        (run,) = wait_for(lambda: event_runs(runner), 20, "a run for the event")
        assert [d["resource"] for d in run.drift] == ["lambda_alias/getProducts/prod"]
        assert run.status == "applied"
        # Only the touched alias is read again: its function's aliases, its policy, and (the
        # alias must move back) the versions it moves to. One write heals it; the routing view
        # reads the healed function's aliases once more, to show what clients get now.
        assert run.api_calls == {"lambda.GetPolicy": 1, "lambda.ListAliases": 2, "lambda.ListVersionsByFunction": 1, "lambda.UpdateAlias": 1}
        assert aws(world, "lambda", "get-alias", "--function-name", "getProducts", "--name", "prod")["FunctionVersion"] == "3"
        wait_for(lambda: queue_is_empty(world), 10, "the event deleted")
        # Who did it is kept with the drift: in the history, and in the healed list of /api/status.
        who = {
            "arn": ALICE,
            "source_ip": "203.0.113.5",
            "user_agent": "aws-cli/1.32.0 Python/3.11 Linux",
            "event": "lambda UpdateAlias",
            "event_time": "2026-12-02T12:00:00Z",
            "event_id": "0b1c2d3e-0000-4000-8000-000000000002",
        }
        assert run.drift[0]["actor"] == who
        (healed,) = runner.controller.status_document()["healed"]
        assert healed["resource"] == "lambda_alias/getProducts/prod" and healed["run"] == run.id and healed["actor"] == who
        assert healed["changes"] == [{"field": "version", "live": "1", "desired": "3"}]
        assert healed["healed_at"].endswith("Z") and healed["first_seen"] <= healed["healed_at"]
        check(runner.controller.status_document())  # valid against the published schema, actor and all
        # And in what people read: `pointsman status` and `pointsman history`.
        shown = render(runner.controller.status_document())
        assert "Healed in the last hour (1 resource):" in shown
        assert f"lambda_alias/getProducts/prod  [modified] changed by {ALICE} with the AWS CLI from 203.0.113.5, healed by run #{run.id}" in shown
        assert main(["history", "--state-dir", str(world["tmp"] / "state-apply"), "--limit", "1"]) == 0
        assert f"changed by {ALICE} with the AWS CLI from 203.0.113.5 (lambda UpdateAlias at 2026-12-02 12:00:00Z)" in capsys.readouterr().out

        # The event of Pointsman's own heal (its user agent) starts nothing.
        own = cloudtrail_event(
            "aws.lambda",
            "UpdateAlias20150331",
            {"functionName": "getProducts", "name": "prod", "functionVersion": "3"},
            user_agent=f"Boto3/1.35 md/Botocore#1.35 ua/2.0 os/linux {USER_AGENT}",
        )
        handled = runner.events.handled
        send(world, own)
        wait_for(lambda: runner.events.handled > handled and queue_is_empty(world), 10, "Pointsman's own event handled")
        assert len(event_runs(runner)) == 1
    finally:
        runner.stop()
    # A restart keeps the last hour's heals in view: they are read back from the history.
    again = start(world, "apply")
    try:
        (healed,) = again.controller.status_document()["healed"]
        assert healed["resource"] == "lambda_alias/getProducts/prod" and healed["actor"]["arn"] == ALICE
    finally:
        again.stop()


def test_detect_mode_reports_the_event_drift_and_writes_nothing(world: dict[str, Any]) -> None:
    runner = start(world, "detect")
    try:
        aws(
            world,
            "apigateway",
            "update-stage",
            "--rest-api-id",
            api_id(world, "products-v1"),
            "--stage-name",
            "prod",
            "--patch-operations",
            "op=replace,path=/variables/lambdaAlias,value=dev",
        )
        send(
            world,
            cloudtrail_event(
                "aws.apigateway",
                "UpdateStage",
                {
                    "restApiId": api_id(world, "products-v1"),
                    "stageName": "prod",
                    "patchOperations": [{"op": "replace", "path": "/variables/lambdaAlias", "value": "dev"}],
                },
            ),
        )
        (run,) = wait_for(lambda: event_runs(runner), 20, "a run for the event")
        assert run.status == "drift"
        assert "rest_stage/products-v1/prod" in [d["resource"] for d in run.drift]
        assert write_calls(run.api_calls) == {}
        assert run.api_calls == {"apigateway.GetStages": 1}
        status = runner.controller.status_document()
        assert status["in_sync"] is False and any(d["resource"] == "rest_stage/products-v1/prod" for d in status["drift"])
        (stage,) = [d for d in status["drift"] if d["resource"] == "rest_stage/products-v1/prod"]
        assert stage["actor"]["arn"] == ALICE and stage["actor"]["event"] == "apigateway UpdateStage"
        check(status)
        assert status["healed"] == []
        # A scheduled full run finds the same drift: it keeps who made it.
        runner.controller.reconcile("schedule")
        (stage,) = [d for d in runner.controller.status_document()["drift"] if d["resource"] == "rest_stage/products-v1/prod"]
        assert stage["actor"]["arn"] == ALICE
    finally:
        runner.stop()


def test_malformed_unrelated_and_unmanaged_events_are_deleted_without_a_read(world: dict[str, Any]) -> None:
    runner = start(world, "apply")
    try:
        before = runner.controller.clients.counter.snapshot()
        send(
            world,
            "not json at all",
            json.dumps({"detail-type": "AWS API Call via CloudTrail", "source": "aws.lambda", "detail": "oops"}),
            cloudtrail_event("aws.lambda", "GetAlias20150331", {"functionName": "getProducts", "name": "prod"}),  # a read
            cloudtrail_event("aws.lambda", "UpdateAlias20150331", {"functionName": "someoneElsesFunction", "name": "prod"}),
            cloudtrail_event("aws.apigateway", "UpdateStage", {"restApiId": "zzzzzzzzzz", "stageName": "prod"}),
            json.dumps({"version": "0", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
        )
        wait_for(lambda: runner.events.handled >= 6 and queue_is_empty(world), 20, "every message handled and deleted")
        assert event_runs(runner) == []
        assert runner.controller.clients.counter.snapshot() == before  # not one AWS read for them
        assert runner.events._thread is not None and runner.events._thread.is_alive()
    finally:
        runner.stop()


def api_id(world: dict[str, Any], name: str) -> str:
    return next(i["id"] for i in world["clients"].apigateway.get_rest_apis()["items"] if i["name"] == name)
