"""`pointsman demo`, driven the way the README walkthrough drives it.

The demo starts its own moto server (in the demo's process) on 127.0.0.1, so this test does
not use the moto_server fixture: it talks to the demo's emulator with the real aws CLI and to
the controller over its HTTP API. Walkthrough: promote getreport's prod by a commit, change
getProducts' prod alias behind the controller's back and watch it heal, then rerun the demo in
detect mode against a fresh emulator and see drift reported and left alone.
"""

from __future__ import annotations

import calendar
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import ROOT, free_port, wait_for

pytestmark = pytest.mark.server

AWS_CLI = Path(sys.executable).parent / "aws"
START_TIMEOUT = 60
STEP_TIMEOUT = 30
WRITES = ("Create", "Update", "Delete", "Add", "Remove", "Put", "Publish", "Tag", "Untag")


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    aws_port: int
    listen_port: int
    out_path: Path
    err_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    def stdout(self) -> str:
        return self.out_path.read_text() if self.out_path.exists() else ""

    def logs(self) -> str:
        err = self.err_path.read_text() if self.err_path.exists() else ""
        return f"--- stdout ---\n{self.stdout()[-4000:]}\n--- stderr ---\n{err[-6000:]}"

    def alive(self) -> None:
        assert self.process.poll() is None, f"demo exited with {self.process.returncode}:\n{self.logs()}"

    def get_json(self, path: str) -> Any:
        self.alive()
        with urllib.request.urlopen(self.base_url + path, timeout=5) as response:
            return json.loads(response.read())

    def status(self) -> dict[str, Any]:
        return self.get_json("/api/status")

    def history(self) -> list[dict[str, Any]]:
        return self.get_json("/api/history?limit=200")

    def aws(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        env.pop("AWS_ENDPOINT_URL", None)
        return subprocess.run(
            [str(AWS_CLI), *args, "--endpoint-url", self.endpoint, "--region", "us-east-1", "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def alias_version(self, function: str, alias: str) -> str:
        proc = self.aws("lambda", "get-alias", "--function-name", function, "--name", alias)
        assert proc.returncode == 0, f"get-alias {function}:{alias} failed: {proc.stderr}"
        return str(json.loads(proc.stdout)["FunctionVersion"])

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"demo did not exit within {timeout}s of SIGTERM:\n{self.logs()}") from None


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait(10)


def start_demo(demos: list[Demo], workdir: Path, logs: Path, *extra: str) -> Demo:
    aws_port, listen_port = free_port(), free_port()
    while listen_port == aws_port:
        listen_port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"demo-{listen_port}.out", logs / f"demo-{listen_port}.err"
    cmd = [
        sys.executable,
        "-m",
        "controller.cli",
        "demo",
        "--workdir",
        str(workdir),
        "--aws-port",
        str(aws_port),
        "--listen",
        f"127.0.0.1:{listen_port}",
        "--interval",
        "2",
        *extra,
    ]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
    demo = Demo(process, aws_port, listen_port, out_path, err_path)
    demos.append(demo)
    return demo


def wait_for_first_finished_run(demo: Demo) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        status = demo.status()
        last = status.get("last_run") or {}
        return status if last.get("finished") else None

    try:
        return wait_for(finished, START_TIMEOUT, "a finished reconcile", every=0.25)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{demo.logs()}") from None


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def test_demo_walkthrough(demos: list[Demo], tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    repo = workdir / "repo"
    demo = start_demo(demos, workdir, tmp_path / "logs")

    # The first run applies the example estate. With --interval 2 the next run (in_sync) follows
    # quickly, so an applied run recorded in the history counts too.
    def applied() -> bool:
        status = demo.status()
        if (status.get("last_run") or {}).get("status") == "applied":
            return True
        return any(r["status"] == "applied" for r in demo.history())

    try:
        wait_for(applied, START_TIMEOUT, "the first run to apply the estate", every=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{demo.logs()}") from None
    banner = demo.stdout()
    assert f"http://127.0.0.1:{demo.listen_port}/" in banner, demo.logs()
    assert demo.endpoint in banner, demo.logs()
    assert "(new, from desired_state/;" in banner, demo.logs()
    assert "First plan" in banner, demo.logs()
    assert (repo / ".git").is_dir() and (repo / "desired_state" / "getreport.yaml").is_file()
    assert demo.alias_version("getreport", "prod") == "1"

    # (1) Promote getreport 2 to prod with a commit.
    spec = repo / "desired_state" / "getreport.yaml"
    text = spec.read_text()
    assert 'prod: {version: "1"' in text, text
    spec.write_text(text.replace('prod: {version: "1"', 'prod: {version: "2"', 1))
    git(repo, "commit", "-am", "Promote")
    promoted = git(repo, "rev-parse", "HEAD")

    def promotion_applied() -> bool:
        return (
            demo.status()["applied_commit"] == promoted
            and demo.alias_version("getreport", "prod") == "2"
            and any(r["commit_sha"] == promoted and r["finished"] for r in demo.history())
        )

    try:
        wait_for(promotion_applied, STEP_TIMEOUT, f"commit {promoted[:12]} applied and getreport:prod at 2", every=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{demo.logs()}") from None
    # The README: the promotion is exactly one UpdateAlias.
    promotion_runs = [r for r in demo.history() if r["commit_sha"] == promoted and r["status"] == "applied"]
    assert len(promotion_runs) == 1, promotion_runs
    assert [(a["operation"], a["resource"], a["outcome"]) for a in promotion_runs[0]["actions"]] == [
        ("lambda.UpdateAlias", "lambda_alias/getreport/prod", "succeeded")
    ], promotion_runs[0]["actions"]

    # (2) A console click: getProducts prod back to version 1. The controller reports and heals it.
    assert demo.alias_version("getProducts", "prod") == "3"
    clicked_at = time.time()
    proc = demo.aws("lambda", "update-alias", "--function-name", "getProducts", "--name", "prod", "--function-version", "1")
    assert proc.returncode == 0, proc.stderr
    assert str(json.loads(proc.stdout)["FunctionVersion"]) == "1", proc.stdout
    try:
        wait_for(lambda: demo.alias_version("getProducts", "prod") == "3", STEP_TIMEOUT, "getProducts:prod healed to 3", every=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{demo.logs()}") from None

    def saw_console_drift(run: dict[str, Any]) -> bool:
        finished = run["last_finished"] or run["finished"]  # ISO-8601, whole seconds
        if not finished or calendar.timegm(time.strptime(finished, "%Y-%m-%dT%H:%M:%SZ")) < int(clicked_at):
            return False
        for drift in run["drift"]:
            if drift["resource"] == "lambda_alias/getProducts/prod" and drift["status"] == "modified":
                return any(c["field"] == "version" and str(c["live"]) == "1" and str(c["desired"]) == "3" for c in drift["changes"])
        return False

    history = demo.history()
    assert any(saw_console_drift(r) for r in history), json.dumps([{k: r[k] for k in ("id", "status", "finished", "drift")} for r in history[:5]], indent=1)

    # (3) Stop the demo; rerun it in detect mode on the same workdir. The emulator is fresh, so
    # everything the first run created is missing again, and detect mode leaves it missing.
    assert demo.stop() == 0, demo.logs()
    detect = start_demo(demos, workdir, tmp_path / "logs", "--mode", "detect", "--keep")
    status = wait_for_first_finished_run(detect)
    banner = detect.stdout()
    assert "reused (--keep)" in banner, detect.logs()
    assert "rerun it without --mode detect" in banner, detect.logs()
    assert detect.endpoint in banner, detect.logs()
    assert status["mode"] == "detect", status
    assert status["last_run"]["status"] == "drift", status
    assert status["last_run"]["commit_sha"] == promoted, status
    assert any(d["resource"] == "lambda_alias/getreport/prod" and d["status"] == "missing" for d in status["drift"]), status["drift"]
    # Detect mode plans but writes nothing.
    assert status["last_run"]["actions"], status["last_run"]
    assert {a["outcome"] for a in status["last_run"]["actions"]} == {"planned"}, status["last_run"]["actions"]
    detect_runs = [r for r in detect.history() if r["id"] == status["last_run"]["id"]]
    assert len(detect_runs) == 1 and detect_runs[0]["mode"] == "detect", detect_runs
    writes = {op: n for op, n in detect_runs[0]["api_calls"].items() if op.split(".", 1)[-1].startswith(WRITES)}
    assert not writes, writes
    proc = detect.aws("lambda", "get-alias", "--function-name", "getreport", "--name", "prod")
    assert proc.returncode != 0, f"alias getreport:prod exists in detect mode: {proc.stdout}"
    assert "ResourceNotFoundException" in proc.stderr, proc.stderr
    assert detect.stop() == 0, detect.logs()
