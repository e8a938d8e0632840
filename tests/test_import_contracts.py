"""The import contracts of pyproject.toml hold, and break when a lower layer imports an upper one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and pyproject.toml, to break on purpose."""
    shutil.copytree(ROOT / "controller", tmp_path / "controller", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_and_a_cycle_break_the_contracts(tree: Path) -> None:
    """engine importing web is upward; events and history importing each other is a cycle (one run checks both)."""
    plan = tree / "controller" / "engine" / "plan.py"
    plan.write_text(plan.read_text() + "\nfrom controller.web import server  # noqa: E402, F401\n")
    events = tree / "controller" / "loop" / "events.py"
    history = tree / "controller" / "loop" / "history.py"
    events.write_text(events.read_text() + "\nfrom controller.loop import history as _history  # noqa: E402, F401\n")
    history.write_text(history.read_text() + "\nfrom controller.loop import events as _events  # noqa: E402, F401\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "Layers: a package imports only the packages below it BROKEN" in result.stdout
    assert "controller.engine.plan -> controller.web.server" in result.stdout
    assert "No cycles: no module or package imports one that imports it back BROKEN" in result.stdout
