"""The HTTP endpoints answer while a long reconcile runs (a 1,000-function scan takes minutes)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.app import build_runner
from controller.loop import runner as runner_module
from controller.loop.settings import RunSettings
from tests.e2e_support import make_repo, wait_for


def test_healthz_and_status_answer_during_a_long_reconcile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    entered, release = threading.Event(), threading.Event()
    real = runner_module.reconcile

    def slow(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(60)  # AWS reads at the quota's pace
        return real(*args, **kwargs)

    monkeypatch.setattr(runner_module, "reconcile", slow)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached while the test asks
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    settings = RunSettings(repo=str(repo), state_dir=tmp_path / "state", listen="127.0.0.1:0", interval=3600, poll_interval=0)
    runner = build_runner(settings)
    runner.start()
    try:
        assert entered.wait(30), "the reconcile did not start"
        host, port = runner.http.server_address[:2]
        for path in ("/healthz", "/api/status", "/metrics", "/"):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
                body = response.read().decode()
                assert response.status == 200, path
            assert time.monotonic() - started < 2, path
            if path == "/api/status":
                assert json.loads(body)["last_run"] is None  # the first run is still going
    finally:
        release.set()
        wait_for(lambda: not runner.controller._lock.locked(), 60, "the reconcile to end")
        runner.stop()
