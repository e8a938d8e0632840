"""A plan's warnings are kept, not only printed: in the run's history entry, in /api/status, on the
status page (and the run page), in `pointsman status`, and as the pointsman_warnings gauge on /metrics.

The controller runs in-process against moto's server on 127.0.0.1, following a local git repo
whose spec declares an environment for getProductsV2: its alias prod serves published version 2,
whose environment apply cannot change, so every plan warns of it (not drift).
"""

from __future__ import annotations

import html
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.app import build_runner
from controller.cli.main import main
from controller.loop.runner import Runner
from controller.loop.settings import RunSettings
from tests.e2e_support import converged_estate, git, wait_for

pytestmark = pytest.mark.server

WARNING = "getProductsV2: alias prod serves version 2, whose environment differs from the declared one (TABLE: (added))"
ANCHOR = "  getProductsV2:          # backs products-v2: prod is version 2.2\n"
WITH_ENVIRONMENT = "  getProductsV2:\n    environment: {TABLE: products-v2}\n"


def commit(repo: Path, message: str, old: str, new: str) -> str:
    path = repo / "desired_state" / "products.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    git("commit", "-qam", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


@pytest.fixture
def runner(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    repo = tmp_path / "repo"
    converged_estate(moto_server, repo)
    commit(repo, "Declare the environment of getProductsV2", ANCHOR, WITH_ENVIRONMENT)
    settings = RunSettings(
        repo=str(repo),
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        interval=3600,
        jitter=0,
        poll_interval=0,
        mode="detect",
    )
    r = build_runner(settings)
    r.start()
    wait_for(lambda: r.controller.status.last_run is not None, 60, "the first run")
    yield r
    r.stop()


def get(runner: Runner, path: str) -> str:
    host, port = runner.http.server_address[:2]
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
        return str(response.read().decode())


def gauge(runner: Runner) -> float:
    found = re.findall(r"^pointsman_warnings (\S+)$", get(runner, "/metrics"), re.MULTILINE)
    assert len(found) == 1, "one pointsman_warnings sample"
    return float(found[0])


def test_warnings_are_in_history_status_page_and_metrics(runner: Runner, capsys: pytest.CaptureFixture[str]) -> None:
    status = json.loads(get(runner, "/api/status"))
    assert status["warnings"] == [WARNING]
    assert status["last_run"]["id"] == 1 and "warnings" not in status["last_run"]  # once, at the top

    [entry] = json.loads(get(runner, "/api/history"))
    assert entry["warnings"] == [WARNING]
    assert runner.controller.history.get(1).warnings == [WARNING]  # stored, not only in memory

    page = get(runner, "/")
    section = re.search(r'<div class="banner warn" id="warnings">(.*?)</div>', page, re.DOTALL)
    assert section is not None, "the status page has no warnings section"
    assert "Warnings (1)" in section[1] and f"<li>{html.escape(WARNING)}</li>" in section[1]
    assert f"<li>{html.escape(WARNING)}</li>" in get(runner, "/runs/1")

    assert gauge(runner) == 1.0

    host, port = runner.http.server_address[:2]
    assert main(["status", "--url", f"http://{host}:{port}"]) == 2  # drifted: detect mode heals nothing
    assert f"Warnings (1; not drift, apply does not change them):\n  ! {WARNING}" in capsys.readouterr().out


def test_warnings_go_when_the_cause_goes_and_history_keeps_the_old_ones(runner: Runner) -> None:
    repo = Path(runner.controller.settings.repo)
    commit(repo, "Stop managing the environment of getProductsV2", WITH_ENVIRONMENT, "  getProductsV2:\n")
    runner.trigger("test")
    wait_for(lambda: (runner.controller.status.last_run or {}).get("id") == 2, 60, "the second run")

    assert json.loads(get(runner, "/api/status"))["warnings"] == []
    assert 'id="warnings"' not in get(runner, "/")
    assert 'id="warnings"' not in get(runner, "/runs/2")
    assert gauge(runner) == 0.0
    newest, oldest = json.loads(get(runner, "/api/history"))
    assert (newest["id"], newest["warnings"]) == (2, [])
    assert (oldest["id"], oldest["warnings"]) == (1, [WARNING])
