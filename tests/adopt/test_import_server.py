"""`pointsman import` against moto's server (the converged example estate, as the e2e tests see it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import write_calls
from controller.engine.pipeline import reconcile
from controller.spec import load_spec
from tests.conftest import cli

pytestmark = pytest.mark.server


def test_import_then_plan_over_http_is_in_sync_and_apply_writes_nothing(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clients = world["clients"]
    monkeypatch.setattr("controller.cli.main.AwsClients", lambda: clients)
    out = tmp_path / "imported"
    clients.counter.reset()
    code, _, err = cli(capsys, "import", "--out", str(out))
    assert (code, err) == (0, "")
    calls = clients.counter.snapshot()
    assert calls and write_calls(calls) == {}
    code, _, _ = cli(capsys, "plan", "--spec", str(out))
    assert code == 0
    clients.counter.reset()
    result = reconcile(load_spec(out), clients, apply=True)
    assert result.in_sync and write_calls(clients.counter.snapshot()) == {}


def test_on_a_terminal_import_shows_a_progress_bar_and_clears_it(world: dict[str, Any], tmp_path: Path) -> None:
    """`pointsman import` as a process whose stderr is a terminal (a pseudo-terminal): tqdm's bar
    counts the reads, and the summary on stdout is as without one."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import subprocess
    import sys
    import termios

    out = tmp_path / "imported"
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "import", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    terminal = seen.decode(errors="replace")
    assert proc.returncode == 0, terminal
    assert "import: AWS reads" in terminal and " reads" in terminal, terminal
    counts = [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+) \[", terminal)]
    assert all(done <= total for done, total in counts), terminal
    # Each phase is drawn when it ends: the reads (more than a handful), then the APIs, functions and domains read back.
    assert any(done == total > 10 for done, total in counts) and "import: domains" in terminal, terminal
    assert terminal.endswith(("\r", " ")), terminal  # then cleared: tqdm blanks the line, none is left behind
    assert f"wrote {out}/domains.yaml" in proc.stdout.decode()
