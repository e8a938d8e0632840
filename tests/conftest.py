"""Shared fixtures: moto in-process (and as a server on 127.0.0.1), the example estate, spec dirs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from controller.aws import ratelimit
from controller.aws.clients import AwsClients
from controller.cli.main import main
from controller.demo.emulator import fix_moto_gaps
from controller.demo.estate import seed
from controller.engine.pipeline import Result, reconcile
from controller.spec import load_spec
from tests.e2e_support import converged_estate, free_port  # noqa: F401 - free_port re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = ROOT / "desired_state"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Each test ends with the environment it started with.

    The CLI sets the variables its AWS flags stand for in its own process (``--max-attempts 2``
    sets AWS_MAX_ATTEMPTS=2, ``--retry-mode`` AWS_RETRY_MODE). Run in-process by a test, that
    would carry over to every later test in the same process, and to the controllers, CLIs and
    workflow steps they start as subprocesses with ``os.environ``: under pytest-xdist, whichever
    tests a worker happens to run after test_throttling.py. Defined first, so torn down last
    (after monkeypatch has undone its own changes)."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region; never a real endpoint or profile."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _clean_pointsman_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No POINTSMAN_* setting leaks in from the environment running the tests."""
    for name in list(os.environ):
        if name.startswith("POINTSMAN_"):
            monkeypatch.delenv(name, raising=False)
    # The emulator has no quotas: no client-side pacing (tests of pacing turn it on themselves).
    monkeypatch.setenv("POINTSMAN_RATE_LIMITS", "off")
    # Each test's clients start with full quota buckets, not those an earlier test drew from.
    ratelimit.forget_shared()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() binds structlog to the (captured) stderr of the test; undo that afterwards."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `pointsman ARGV` in-process: (exit code, stdout, stderr); never a traceback."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def clients() -> Iterator[AwsClients]:
    """AwsClients against moto in-process."""
    from moto import mock_aws

    fix_moto_gaps()
    with mock_aws():
        yield AwsClients(max_attempts=2)


@pytest.fixture
def estate(clients: AwsClients) -> dict[str, Any]:
    """The example estate's pre-existing infrastructure (functions, versions, APIs, domains)."""
    info = seed(clients)
    clients.counter.reset()
    return info


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A writable copy of desired_state/."""
    target = tmp_path / "spec"
    shutil.copytree(EXAMPLE_SPEC, target)
    return target


def run(spec_dir: Path, clients: AwsClients, **kwargs: Any) -> Result:
    """One reconcile with fresh call counts."""
    clients.counter.reset()
    return reconcile(load_spec(spec_dir), clients, **kwargs)


@pytest.fixture
def converged(estate: dict[str, Any], clients: AwsClients, spec_dir: Path) -> dict[str, Any]:
    """The example estate after a first apply of desired_state/ (everything in sync)."""
    result = run(spec_dir, clients, apply=True)
    assert not result.failed, [o.as_dict() for o in result.outcomes]
    clients.counter.reset()
    return estate


@pytest.fixture
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 (threaded, in this process); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    fix_moto_gaps()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def world(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The example estate converged on moto's server, with its local git repo (a module may
    define its own ``world`` with more in it)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    repo = tmp_path / "repo"
    clients, _ = converged_estate(moto_server, repo)
    yield {"clients": clients, "repo": repo, "tmp": tmp_path}
