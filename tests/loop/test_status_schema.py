"""/api/status against its published schema (`pointsman schema --api`): real documents of a
controller in sync, drifted in detect mode and with an invalid newest commit are valid, every
time in them is ISO-8601 UTC, and a field the schema does not name is refused."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import jsonschema
import pytest

from controller.app import build_runner
from controller.cli.main import main
from controller.loop.runner import Runner
from controller.loop.settings import RunSettings
from controller.loop.status_schema import status_schema
from tests.e2e_support import git, wait_for
from tests.targets_support import two_targets

pytestmark = pytest.mark.server

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TIME_KEYS = {
    *("now", "time", "started", "finished", "last_started", "last_finished", "first_seen", "last_ok", "next_run_at", "healed_at", "event_time"),
    *("since", "updated", "renewed"),  # a document of targets and replicas
}


def start(world: dict[str, Any], mode: str) -> Runner:
    settings = RunSettings(
        repo=str(world["repo"]), state_dir=world["tmp"] / f"state-{mode}", listen="127.0.0.1:0", interval=3600, jitter=0, poll_interval=0, mode=mode
    )
    runner = build_runner(settings)
    runner.start()
    wait_for(lambda: runner.controller.status.last_run is not None, 60, "the first run")
    return runner


def get(runner: Runner, path: str) -> Any:
    assert runner.http is not None
    host, port = runner.http.server_address[:2]
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def times(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every (key, value) under a time key, anywhere in the document."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in ([(k, v)] if k in TIME_KEYS else []) + times(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in times(v, key)]
    return []


def check(document: dict[str, Any]) -> None:
    jsonschema.validate(document, status_schema(), format_checker=jsonschema.FormatChecker())
    for key, value in times(document):
        assert value is None or (isinstance(value, str) and ISO.match(value)), (key, value)


def test_the_schema_is_a_valid_json_schema_and_describes_every_field() -> None:
    schema = status_schema()
    jsonschema.Draft202012Validator.check_schema(schema)

    def undescribed(node: Any, path: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        out = [f"{path}.{k}" for k, v in (node.get("properties") or {}).items() if not v.get("description")]
        for k, v in (node.get("properties") or {}).items():
            out += undescribed(v, f"{path}.{k}")
        for sub in [node.get("items"), *(node.get("anyOf") or [])]:
            out += undescribed(sub, path)
        return out

    assert undescribed(schema, "") == []


def test_schema_api_prints_the_status_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--api"]) == 0
    assert json.loads(capsys.readouterr().out) == status_schema()
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) != status_schema()


def test_a_document_of_targets_and_replicas_matches_the_schema() -> None:
    document = two_targets()
    check(document)
    assert {e["target"] for key in ("drift", "managed", "routes", "rollouts", "healed") for e in document[key]} == {"eu-prod", "us-stage"}
    check({**document, "replica": None})
    check({k: v for k, v in document.items() if k not in ("targets", "replica")})  # one target: as before
    for bad in (
        {"targets": [{**document["targets"][0], "new_field": 1}]},
        {"targets": [{**document["targets"][0], "state": "sleeping"}]},
        {"targets": [{k: v for k, v in document["targets"][0].items() if k != "holder"}]},
        {"targets": [{**document["targets"][0], "since": 1796527516.07}]},
        {"targets": [{**document["targets"][0], "last_run": {**document["targets"][0]["last_run"], "new_field": 1}}]},
        {"replica": {**document["replica"], "replicas": [{"id": "r", "alive": True, "holds": 0}]}},
        {"drift": [{**document["drift"][0], "target": 7}]},
        {"managed": [{**document["managed"][0], "target": None}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check({**document, **bad})


def test_in_sync_then_drifted_in_detect_mode_the_documents_match_the_schema(world: dict[str, Any]) -> None:
    runner = start(world, "detect")
    try:
        document = get(runner, "/api/status")
        assert document["state"] == "in_sync"
        check(document)
        assert document["commits"]["desired"]["time"] and document["last_run"]["started"] and document["next_run_at"]
        managed = {m["resource"]: m for m in document["managed"]}
        assert managed["lambda_alias/getProducts/prod"] == {
            "resource": "lambda_alias/getProducts/prod",
            "kind": "lambda_alias",
            "source": "desired_state/products.yaml:7",
            "status": "in_sync",
            "live": {"version": '"3"', "description": '"v1 production"', "routing": "{}"},
        }
        assert all(m["status"] == "in_sync" and m["source"] and m["live"] for m in document["managed"])
        world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
        runner.trigger("test")
        wait_for(lambda: get(runner, "/api/status")["state"] == "drifted", 30, "the drift found")
        document = get(runner, "/api/status")
        check(document)
        assert document["drift"][0]["first_seen"] and document["drift"][0]["actions"]
        prod = next(m for m in document["managed"] if m["resource"] == "lambda_alias/getProducts/prod")
        assert prod["status"] == "differs" and prod["live"]["version"] == '"1"'
        with pytest.raises(jsonschema.ValidationError, match="new_field"):
            check({**document, "managed": [{**prod, "new_field": 1}]})
        # A field the schema does not name is refused: add it to the schema too.
        with pytest.raises(jsonschema.ValidationError, match="new_field"):
            check({**document, "new_field": 1})
        with pytest.raises(jsonschema.ValidationError, match="new_field"):
            check({**document, "last_run": {**document["last_run"], "new_field": 1}})
        # An epoch float where a time belongs is refused.
        with pytest.raises(jsonschema.ValidationError):
            check({**document, "last_run": {**document["last_run"], "started": 1796527516.07}})
        for entry in get(runner, "/api/history"):
            assert [(k, v) for k, v in times(entry) if not (v is None or ISO.match(v))] == []
    finally:
        runner.stop()


def test_with_an_invalid_newest_commit_the_document_matches_the_schema(world: dict[str, Any]) -> None:
    runner = start(world, "apply")
    try:
        spec = world["repo"] / "desired_state" / "getreport.yaml"
        spec.write_text(spec.read_text().replace("version: $LATEST", "version: latest-please"))
        git("commit", "-am", "Break the dev alias", cwd=world["repo"])
        runner.trigger("test")
        wait_for(lambda: get(runner, "/api/status")["head_valid"] is False and not get(runner, "/api/status")["running"], 30, "the invalid commit seen")
        document = get(runner, "/api/status")
        check(document)
        assert document["spec_errors"] and document["commits"]["head"]["time"]
    finally:
        runner.stop()


def test_an_event_driven_run_keeps_the_managed_list_whole_and_current(world: dict[str, Any]) -> None:
    runner = start(world, "detect")
    try:
        controller = runner.controller
        full = get(runner, "/api/status")["managed"]
        assert len(full) > 30
        world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="1")
        changed = [("function", "getProducts"), ("policy", "getProducts", "prod")]
        assert controller.reconcile("event", changed).status == "drift"
        assert "apigateway.GetRestApis" not in controller.clients.counter.snapshot()  # no full scan: the kept reads
        document = get(runner, "/api/status")
        check(document)
        after = {m["resource"]: m for m in document["managed"]}
        assert list(after) == [m["resource"] for m in full]
        assert after["lambda_alias/getProducts/prod"]["status"] == "differs"
        assert after["lambda_alias/getProducts/prod"]["live"]["version"] == '"1"'
        assert [m for m in full if m["resource"] != "lambda_alias/getProducts/prod"] == [
            m for m in after.values() if m["resource"] != "lambda_alias/getProducts/prod"
        ]
        world["clients"].lambda_.update_alias(FunctionName="getProducts", Name="prod", FunctionVersion="3")
        assert controller.reconcile("event", changed).status == "in_sync"
        assert get(runner, "/api/status")["managed"] == full
    finally:
        runner.stop()
