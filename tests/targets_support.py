"""A status document of a spec split into two targets shared by two replicas (what the runner of
targets serves at /api/status), for the schema, page and CLI tests: ``eu-prod`` is drifted and
held here (replica-a), ``us-stage`` is in sync, rolling out, held by replica-b; replica-c is a
standby."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from controller.loop.history import RunRecord
from controller.loop.settings import RunSettings
from controller.web.server import serve

SHA = "c0ffee" + "0" * 34
NOW_ISO = "2026-12-02T12:00:00Z"
NOW = 1796212800.0  # NOW_ISO, the document's now
TOKEN = "ui-token-for-tests"


def _run(run_id: int, status: str, target: str, replica: str, drift: int) -> dict[str, Any]:
    return {
        "id": run_id,
        "started": "2026-12-02T11:59:50Z",
        "finished": "2026-12-02T11:59:52Z",
        "duration_s": 2.0,
        "age_s": 8.0,
        "trigger": "schedule",
        "triggers": ["schedule"],
        "mode": "detect",
        "status": status,
        "commit_sha": SHA,
        "head_sha": SHA,
        "drift_count": drift,
        "actions": [],
        "error": None,
        "count": 1,
        "last_started": None,
        "last_finished": None,
        "target": target,
        "replica": replica,
    }


def _managed(target: str, resource: str, status: str) -> dict[str, Any]:
    return {
        "resource": resource,
        "kind": "lambda_alias",
        "source": f"desired_state/{target}/products.yaml:7",
        "status": status,
        "live": {"version": '"1"' if status == "differs" else '"3"'},
        "target": target,
    }


def _route(target: str, differs: bool) -> dict[str, Any]:
    versions = [{"version": "3", "weight": 1.0}]
    return {
        "entry": f"{target}.example.com/v1",
        "entry_kind": "domain",
        "methods": ["GET /products"],
        "api": "products-api",
        "stage": "prod",
        "variable": "alias",
        "value": "prod",
        "selector": None,
        "function": "getProducts",
        "alias": "prod",
        "live": [{"version": "1", "weight": 1.0}] if differs else versions,
        "desired": versions,
        "differs": differs,
        "in_git": True,
        "text": f"{target}.example.com/v1 -> getProducts:prod",
        "chain": "products-api/prod -> getProducts:prod",
        "live_text": "version 1" if differs else "version 3",
        "desired_text": "version 3",
        "live_chain": None,
        "git_chain": None,
        "target": target,
    }


def two_targets() -> dict[str, Any]:
    """A fresh copy of the document (tests change theirs)."""
    eu_run = _run(12, "drift", "eu-prod", "replica-a", 1)
    us_run = _run(3, "rolling_out", "us-stage", "replica-b", 0) | {"started": "2026-12-02T11:59:55Z", "finished": "2026-12-02T11:59:57Z", "age_s": 3.0}
    document: dict[str, Any] = {
        "repo": "https://example.com/estate.git",
        "branch": "main",
        "path": "desired_state",
        "mode": "detect",
        "prune": False,
        "state": "drifted",
        "state_reason": "eu-prod: 1 resource differs from git",
        "now": NOW_ISO,
        "applied_commit": SHA,
        "head_commit": SHA,
        "head_valid": True,
        "commits": {
            "desired": {"sha": SHA, "short": SHA[:12], "subject": "Promote", "author": "Ann", "time": "2026-12-02T11:58:00Z"},
            "head": {"sha": SHA, "short": SHA[:12], "subject": "Promote", "author": "Ann", "time": "2026-12-02T11:58:00Z"},
        },
        "spec_errors": [],
        "git": {"reachable": True, "error": None, "last_ok": "2026-12-02T11:59:50Z"},
        "running": None,
        "last_run": us_run,
        "next_run_at": "2026-12-02T12:00:30Z",
        "next_run_in_s": 30.0,
        "drift": [
            {
                "resource": "lambda_alias/getProducts/prod",
                "kind": "lambda_alias",
                "status": "modified",
                "changes": [{"field": "version", "live": "1", "desired": "3"}],
                "first_seen": "2026-12-02T11:50:00Z",
                "actions": [{"resource": "lambda_alias/getProducts/prod", "operation": "lambda.UpdateAlias", "reason": "version 1 -> 3", "outcome": "planned"}],
                "target": "eu-prod",
            }
        ],
        "drift_found_by_last_run": 0,
        "healed_by_last_run": [],
        "rollouts": [
            {
                "alias": "getReport/live",
                "line": "getReport:live 4 -> 5 at 10%, step 1 of 3",
                "event": "rollout_step",
                "status": "progressing",
                "stable": "4",
                "version": "5",
                "target": "us-stage",
                "step": 0,
                "total": 3,
                "weight": 10,
                "gates": {},
                "applied": False,
                "next_check": "2026-12-02T12:01:00Z",
            }
        ],
        "healed": [
            {
                "resource": "stage_variable/products-api/prod/debug",
                "kind": "stage_variable",
                "status": "extra",
                "changes": [],
                "first_seen": "2026-12-02T11:40:00Z",
                "healed_at": "2026-12-02T11:45:00Z",
                "run": 9,
                "target": "eu-prod",
            }
        ],
        "in_sync": False,
        "routes": [_route("eu-prod", True), _route("us-stage", False)],
        "managed": [
            _managed("eu-prod", "lambda_alias/getProducts/prod", "differs"),
            _managed("us-stage", "lambda_alias/getProducts/prod", "in_sync"),
            _managed("us-stage", "lambda_alias/getReport/live", "in_sync"),
        ],
        "warnings": ["us-stage: stage variable debug is set by hand"],
        "last_error": None,
        "ready": True,
        "ready_reason": "ok",
        "guardrails": {"allow_protected": False, "max_changes": None, "max_deletions": None, "refused": [], "window": None, "approval": None},
        "targets": [
            {
                "name": "eu-prod",
                "account_id": "111111111111",
                "region": "eu-west-1",
                "state": "drifted",
                "state_reason": "1 resource differs from git",
                "holder": "replica-a",
                "here": True,
                "since": "2026-12-02T10:00:00Z",
                "epoch": 4,
                "applied_commit": SHA,
                "last_run": eu_run,
                "drift_count": 1,
                "error": None,
                "updated": "2026-12-02T11:59:52Z",
            },
            {
                "name": "us-stage",
                "account_id": "222222222222",
                "region": "us-east-1",
                "state": "rolling_out",
                "state_reason": "getReport:live rolling out",
                "holder": "replica-b",
                "here": False,
                "since": "2026-12-02T09:00:00Z",
                "epoch": 2,
                "applied_commit": SHA,
                "last_run": us_run,
                "drift_count": 0,
                "error": "AccessDenied: lambda:ListAliases (a role without it)",
                "updated": "2026-12-02T11:59:57Z",
            },
        ],
        "replica": {
            "id": "replica-a",
            "lease_table": "pointsman-leases",
            "holds": ["eu-prod"],
            "replicas": [
                {"id": "replica-a", "alive": True, "holds": 1, "renewed": "2026-12-02T11:59:58Z"},
                {"id": "replica-b", "alive": True, "holds": 1, "renewed": "2026-12-02T11:59:57Z"},
                {"id": "replica-c", "alive": True, "holds": 0, "renewed": "2026-12-02T11:59:56Z"},
            ],
        },
    }
    return copy.deepcopy(document)


def as_standby(document: dict[str, Any]) -> dict[str, Any]:
    """The same picture seen from replica-c, which holds nothing."""
    document["replica"] |= {"id": "replica-c", "holds": []}
    for t in document["targets"]:
        t["here"] = False
    return document


class FakeLoop:
    """A LoopView serving a fixed status document, remembering what it was asked (``calls``).
    It approves eu-prod's run #12 only, and controls us-stage's rollouts only."""

    def __init__(self, tmp: Path, document: dict[str, Any]) -> None:
        self.settings = RunSettings(repo=str(tmp), state_dir=tmp / "state", listen="127.0.0.1:0", ui_token=TOKEN)
        self.document = document
        self.calls: list[tuple[Any, ...]] = []

    def trigger(self, reason: str) -> None:
        self.calls.append(("trigger", reason))

    def rollout_control(self, alias: str, action: str, target: str | None = None) -> str | None:
        self.calls.append(("rollout_control", alias, action, target))
        return None if target == "us-stage" else f"no rollout of {alias} in target {target}"

    def ready(self) -> tuple[bool, str]:
        return True, "ok"

    def status_document(self) -> dict[str, Any]:
        return self.document

    def recent_runs(self, limit: int, resource: str | None = None, target: str | None = None) -> list[RunRecord]:
        self.calls.append(("recent_runs", limit, resource, target))
        runs = [
            RunRecord(started=NOW - 60, trigger="schedule", mode="detect", status="drift", finished=NOW - 58, id=12, target="eu-prod"),
            RunRecord(started=NOW - 5, trigger="schedule", mode="detect", status="rolling_out", finished=NOW - 3, id=3, target="us-stage"),
        ]
        return [r for r in runs if target in (None, r.target)][:limit]

    def run_record(self, run_id: int, target: str | None = None) -> RunRecord | None:
        self.calls.append(("run_record", run_id, target))
        return next((r for r in self.recent_runs(10, target=target) if r.id == run_id), None)

    def metrics_text(self) -> bytes:
        return b""

    def approve(self, run_id: int, target: str | None = None) -> str | None:
        self.calls.append(("approve", run_id, target))
        return None if (run_id, target) == (12, "eu-prod") else f"run #{run_id} of {target} is not waiting"


@contextlib.contextmanager
def serve_fake(tmp: Path, document: dict[str, Any] | None = None) -> Iterator[tuple[FakeLoop, str]]:
    """The HTTP server of a FakeLoop (the two targets' document unless given), and its base URL."""
    loop = FakeLoop(tmp, two_targets() if document is None else document)
    server = serve(loop)
    host, port = server.server_address[:2]
    try:
        yield loop, f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
