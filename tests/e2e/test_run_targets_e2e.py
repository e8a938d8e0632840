"""``pointsman run`` of a spec split into targets, as a process against moto's server: the status
page, /api/status, /api/history and /metrics of both targets, and ``pointsman status --target``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.aws.targets import assumed_session
from controller.demo.estate import seed
from tests.e2e_support import ROOT, git, start_controller, wait_for
from tests.loop.test_status_schema import check
from tests.targets.test_targets import A, B, role, write_target

pytestmark = pytest.mark.server


def pointsman(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", *argv], capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=60)


def test_run_serves_every_target_together_and_status_takes_one(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    for account, region in ((A, "eu-west-1"), (B, "us-east-1")):
        seed(AwsClients(assumed_session(region, [role(account)]), rate_limiter=False))
    repo = tmp_path / "repo"
    spec = repo / "desired_state"
    write_target(spec, "prod-eu", f'account_id: "{A}"\nregion: eu-west-1\nrole_arn: {role(A)}\n')
    write_target(spec, "prod-us", f'account_id: "{B}"\nregion: us-east-1\nrole_arn: {role(B)}\n')
    git("init", "--initial-branch=main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-m", "two targets", cwd=repo)
    controller = start_controller(str(repo), tmp_path / "state", moto_server, env={"POINTSMAN_INTERVAL": "3600", "POINTSMAN_POLL_INTERVAL": "0"})
    try:

        def both_ran() -> dict[str, Any] | None:
            d = controller.status()
            return d if d.get("targets") and all(t["last_run"] for t in d["targets"]) else None

        document: dict[str, Any] = wait_for(both_ran, 60, "both targets' runs")
        check(document)
        assert [t["name"] for t in document["targets"]] == ["prod-eu", "prod-us"] and document["replica"] is None
        for account, region in ((A, "eu-west-1"), (B, "us-east-1")):
            lam = assumed_session(region, [role(account)]).client("lambda")
            assert lam.get_alias(FunctionName="getProducts", Name="prod")["FunctionVersion"] == "3"
        history = json.loads(controller.get("/api/history?target=prod-us")[1])
        assert history and {r["target"] for r in history} == {"prod-us"}
        run_id = history[0]["id"]
        code, page = controller.get(f"/runs/{run_id}?target=prod-us")
        assert code == 200 and "prod-us" in page
        code, page = controller.get("/?target=prod-eu")
        assert code == 200 and 'id="target-filter"' in page
        assert 'pointsman_reconciles_total{status="applied",target="prod-eu"} 1.0' in controller.get("/metrics")[1]
        # The command line: one target's state, and an unknown one.
        shown = pointsman("status", "--url", controller.base_url, "--target", "prod-us")
        assert shown.returncode == 0 and "prod-us" in shown.stdout and "prod-eu" not in shown.stdout, shown.stdout + shown.stderr
        unknown = pointsman("status", "--url", controller.base_url, "--target", "nope")
        assert unknown.returncode == 1 and "prod-eu" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1
        everything = pointsman("status", "--url", controller.base_url)
        assert everything.returncode == 0 and "prod-eu" in everything.stdout and "prod-us" in everything.stdout
    finally:
        assert controller.stop() == 0, controller.logs()


def test_a_running_controller_restarts_as_a_controller_of_targets_when_the_spec_is_split(world: dict[str, Any], moto_server: str, tmp_path: Path) -> None:
    repo: Path = world["repo"]
    controller = start_controller(str(repo), tmp_path / "state", moto_server, env={"POINTSMAN_INTERVAL": "3600", "POINTSMAN_POLL_INTERVAL": "1"})
    try:
        wait_for(lambda: controller.status().get("last_run"), 60, "the first run")
        assert "targets" not in controller.status()
        # The same estate, now one target: the ambient account, named.
        spec = repo / "desired_state"
        target = spec / "main"
        target.mkdir()
        for file in spec.glob("*.yaml"):
            file.rename(target / file.name)
        (target / "target.yaml").write_text('account_id: "123456789012"\nregion: us-east-1\n')
        git("add", "-A", cwd=repo)
        git("commit", "-m", "split the spec into targets", cwd=repo)

        def targets() -> list[dict[str, Any]] | None:
            try:
                document = controller.status()
            except (AssertionError, OSError):
                return None  # restarting: the page is down for a moment
            rows = document.get("targets") or []
            return rows if rows and rows[0].get("last_run") else None

        (row,) = wait_for(targets, 60, "the controller of targets")
        assert row["name"] == "main" and row["state"] == "in_sync", row
        assert controller.process.poll() is None  # the same command goes on
        assert "restarting as a controller of targets" in controller.logs()
    finally:
        assert controller.stop() == 0, controller.logs()
