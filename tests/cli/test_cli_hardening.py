"""Bad command lines, environments, state dirs and AWS endpoints: one `error: ...` line, exit 1
(argparse's usage errors: 2), never a traceback, never a hang.

Endpoints are sockets on 127.0.0.1 only (refused, never answering, or answering garbage); the
conftest fixtures give fake credentials and clear AWS_* and POINTSMAN_*.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import build_runner
from controller.aws.clients import DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_READ_TIMEOUT, AwsClients
from controller.loop.settings import RunSettings, StartupError
from tests.conftest import EXAMPLE_SPEC, cli
from tests.e2e_support import git
from tests.fuzz_cli import CASES, Case, FakeAws, HungServer, Workspace, run_case, run_cli_cases, workspace


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.fixture
def hung() -> Iterator[HungServer]:
    server = HungServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    server = FakeAws()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    (path / "desired_state").mkdir(parents=True)
    for spec_file in EXAMPLE_SPEC.glob("*.yaml"):
        (path / "desired_state" / spec_file.name).write_text(spec_file.read_text(encoding="utf-8"), encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "estate", cwd=path)
    return path


@pytest.fixture
def garbage_state(tmp_path: Path) -> Path:
    state = tmp_path / "garbage-state"
    state.mkdir()
    (state / "history.sqlite3").write_bytes(bytes(range(256)) * 16)
    return state


# --------------------------------------------------------------------------- 1. log level


def test_log_level_flag_is_validated_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli(capsys, "--log-level", "bogus", "validate", "--spec", str(EXAMPLE_SPEC))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "argument --log-level: invalid choice: 'bogus'" in err


def test_log_level_flag_is_case_insensitive(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--log-level", "DEBUG", "validate", "--spec", str(EXAMPLE_SPEC))
    assert code == 0, err


def test_log_level_environment_is_validated(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTSMAN_LOG_LEVEL", "bogus")
    code, out, err = cli(capsys, "validate", "--spec", str(EXAMPLE_SPEC))
    assert code == 1
    assert out == ""
    assert lines(err) == ["error: POINTSMAN_LOG_LEVEL must be one of debug, info, warning, error, not 'bogus'"]


def test_log_level_flag_wins_over_a_bad_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTSMAN_LOG_LEVEL", "bogus")
    code, out, err = cli(capsys, "--log-level", "error", "validate", "--spec", str(EXAMPLE_SPEC))
    assert code == 0, err


# --------------------------------------------------------------------------- 2. client creation


def test_endpoint_that_is_not_a_url(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not a url")
    code, out, err = cli(capsys, "plan", "--spec", str(EXAMPLE_SPEC))
    assert code == 1
    assert out == ""
    (line,) = lines(err)
    assert line.startswith("error: cannot make the ")
    assert "client: Invalid endpoint: not a url (check AWS_ENDPOINT_URL, AWS_REGION and the AWS profile)" in line


def test_empty_region(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    code, out, err = cli(capsys, "plan", "--spec", str(EXAMPLE_SPEC))
    assert code == 1
    assert lines(err) == ["error: no AWS region configured (set AWS_REGION or AWS_DEFAULT_REGION); nothing was applied."]


def test_run_with_a_bad_endpoint_stops_at_start(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, repo: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not a url")
    code, out, err = cli(capsys, "run", "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "--listen", "127.0.0.1:0")
    assert code == 1
    (line,) = error_lines(err)
    assert "Invalid endpoint: not a url" in line


# --------------------------------------------------------------------------- 3. malformed responses


@pytest.mark.parametrize(
    ("body", "operation", "detail"),
    [
        (b"\x00garbage<<", "lambda.ListVersionsByFunction", "unexpected function ARN '' for "),
        (json.dumps({"Versions": "x"}).encode(), "lambda.ListVersionsByFunction", "wrong shape ("),
        (json.dumps({"Versions": [{}]}).encode(), "lambda.ListVersionsByFunction", "missing field 'Version'"),
        (json.dumps({"item": 5}).encode(), "apigateway.GetRestApis", "wrong shape ("),
    ],
)
def test_malformed_response_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake_aws: FakeAws,
    tmp_path: Path,
    body: bytes,
    operation: str,
    detail: str,
) -> None:
    # Reads run in parallel, so the spec names only what the read under test serves: a function
    # whose environment is managed (its versions are read) or a REST API.
    if operation.startswith("lambda."):
        (tmp_path / "spec.yaml").write_text("functions:\n  getProductsV2:\n    environment: {TABLE: t}\n")
    else:
        (tmp_path / "spec.yaml").write_text("rest_apis:\n  products-v1:\n    stages:\n      prod: {}\n")
    fake_aws.serve(body)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_aws.url)
    code, out, err = cli(capsys, "plan", "--spec", str(tmp_path))
    assert code == 1
    assert out == ""
    (line,) = lines(err)
    assert line.startswith(f"error: {operation}: unexpected response from {fake_aws.url}: {detail}"), line
    assert line.endswith("; nothing was applied.")


def test_malformed_policy_names_get_policy(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fake_aws: FakeAws) -> None:
    from tests.fuzz_cli import valid_function

    fake_aws.serve(routes={**valid_function(), r"/policy$": {"Policy": "{not json"}})
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_aws.url)
    code, out, err = cli(capsys, "plan", "--spec", str(EXAMPLE_SPEC))
    assert code == 1
    (line,) = lines(err)
    assert line.startswith(f"error: lambda.GetPolicy: unexpected response from {fake_aws.url}: a field is not valid JSON"), line


def test_scope_loaders_still_return_what_they_did(estate: dict[str, Any], clients: AwsClients) -> None:
    """The error wrapping changes nothing for a well-formed answer."""
    from controller.live.scope import Scope

    scope = Scope(clients)
    fn = scope.function("getreport")
    assert fn is not None and fn.name == "getreport" and set(fn.versions) >= {"1", "2"}
    assert scope.function("no-such-function") is None
    assert "getreport-api" in scope.rest_api_ids()
    assert scope.mappings("no-such-domain.example") is None


# --------------------------------------------------------------------------- 4. timeouts and retries


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    clients = AwsClients()
    assert (clients.max_attempts, clients.retry_mode) == (DEFAULT_MAX_ATTEMPTS, "standard") == (5, "standard")
    assert (clients.connect_timeout, clients.read_timeout) == (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT) == (5.0, 15.0)
    assert clients.worst_case_seconds == 100.0
    config = clients.client("lambda").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert (config.connect_timeout, config.read_timeout) == (5.0, 15.0)


def test_standard_aws_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("POINTSMAN_AWS_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("POINTSMAN_AWS_READ_TIMEOUT", "7.5")
    clients = AwsClients()
    config = clients.client("apigateway").meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 3}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 7.5)
    assert clients.worst_case_seconds == 3 * 9.5
    # Explicit arguments win over the environment.
    assert AwsClients(max_attempts=1, retry_mode="legacy").client("lambda").meta.config.retries == {"mode": "legacy", "total_max_attempts": 1}


def test_attempts_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "50")
    assert AwsClients().max_attempts == 10


def test_aws_region_wins_over_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert AwsClients().region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "")
    assert AwsClients().region == "us-east-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert AwsClients().client("lambda").meta.region_name == "ap-south-1"


def test_profile_max_attempts_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file = tmp_path / "config"
    config_file.write_text("[default]\nmax_attempts = 2\nretry_mode = legacy\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    clients = AwsClients()
    assert (clients.max_attempts, clients.retry_mode) == (2, "legacy")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AWS_MAX_ATTEMPTS", "abc", "error: AWS_MAX_ATTEMPTS (or max_attempts in the AWS config profile) is not valid: "),
        ("AWS_MAX_ATTEMPTS", "0", "error: AWS_MAX_ATTEMPTS must be at least 1, not 0"),
        ("AWS_RETRY_MODE", "bogus", "error: AWS_RETRY_MODE must be one of standard, adaptive, legacy, not 'bogus'"),
        ("POINTSMAN_AWS_READ_TIMEOUT", "abc", "error: POINTSMAN_AWS_READ_TIMEOUT must be a positive number of seconds, not 'abc'"),
        ("POINTSMAN_AWS_READ_TIMEOUT", "0", "error: POINTSMAN_AWS_READ_TIMEOUT must be a positive number of seconds, not '0'"),
        ("POINTSMAN_AWS_CONNECT_TIMEOUT", "nan", "error: POINTSMAN_AWS_CONNECT_TIMEOUT must be a positive number of seconds, not 'nan'"),
    ],
)
def test_bad_retry_and_timeout_settings(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(name, value)
    code, out, err = cli(capsys, "plan", "--spec", str(EXAMPLE_SPEC))
    assert code == 1
    (line,) = lines(err)
    assert line.startswith(message), line


def test_endpoint_that_never_answers(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, hung: HungServer) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", hung.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("POINTSMAN_AWS_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("POINTSMAN_AWS_READ_TIMEOUT", "0.5")
    started = time.monotonic()
    code, out, err = cli(capsys, "plan", "--spec", str(EXAMPLE_SPEC))
    elapsed = time.monotonic() - started
    assert code == 1
    assert out == ""
    (line,) = lines(err)
    assert line.startswith(f"error: timed out waiting for AWS endpoint {hung.url}/"), line
    assert "after 0.5 s (read timeout, 1 attempt; see POINTSMAN_AWS_READ_TIMEOUT and AWS_MAX_ATTEMPTS)" in line
    assert elapsed < 5, f"plan against a hung endpoint took {elapsed:.1f}s"


def test_a_hung_endpoint_costs_one_call_not_one_per_call(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, hung: HungServer) -> None:
    """One read at a time, two attempts of 0.5 s: the first read times out after ~1 s and
    every later read fails at once (six reads would take 6 s otherwise)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", hung.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("POINTSMAN_AWS_READ_TIMEOUT", "0.5")
    started = time.monotonic()
    code, out, err = cli(capsys, "apply", "--spec", str(EXAMPLE_SPEC), "--concurrency", "1")
    elapsed = time.monotonic() - started
    assert code == 1
    (line,) = lines(err)
    assert "after 0.5 s (read timeout, 2 attempts;" in line
    assert elapsed < 4, f"apply against a hung endpoint took {elapsed:.1f}s"


def test_timeout_hold_expires(monkeypatch: pytest.MonkeyPatch, hung: HungServer) -> None:
    import botocore.exceptions

    monkeypatch.setenv("AWS_ENDPOINT_URL", hung.url)
    lam = AwsClients(max_attempts=1, read_timeout=0.3, connect_timeout=0.3, timeout_hold=0.5).lambda_
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            lam.list_aliases(FunctionName="f")
        assert time.monotonic() - started >= 0.25  # a real attempt
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            lam.list_aliases(FunctionName="f")
        assert time.monotonic() - started < 0.2  # failed at once
        time.sleep(0.6)  # the hold expires: the next call tries the endpoint again


def test_reconcile_once_against_a_hung_endpoint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, hung: HungServer, repo: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", hung.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("POINTSMAN_AWS_READ_TIMEOUT", "0.5")
    started = time.monotonic()
    code, out, err = cli(capsys, "reconcile", "--once", "--repo", str(repo), "--state-dir", str(tmp_path / "state"))
    assert code == 1
    (line,) = error_lines(err)
    assert line.startswith(f"error: timed out waiting for AWS endpoint {hung.url}/")
    assert json.loads(out)["status"] == "error"
    assert time.monotonic() - started < 8


# --------------------------------------------------------------------------- 5. history database


def test_history_that_is_not_sqlite(capsys: pytest.CaptureFixture[str], garbage_state: Path) -> None:
    code, out, err = cli(capsys, "history", "--state-dir", str(garbage_state))
    assert code == 1
    assert out == ""
    assert lines(err) == [f"error: {garbage_state}/history.sqlite3 is not a Pointsman history database (file is not a database)"]


def test_history_with_another_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(str(tmp_path / "history.sqlite3"))
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, started REAL)")
    db.commit()
    db.close()
    code, out, err = cli(capsys, "history", "--state-dir", str(tmp_path))
    assert code == 1
    (line,) = lines(err)
    assert line.startswith(f"error: {tmp_path}/history.sqlite3 is not a Pointsman history database (table runs has no column finished, ")


@pytest.mark.parametrize("command", ["run", "reconcile"])
def test_controller_start_with_a_history_that_is_not_sqlite(capsys: pytest.CaptureFixture[str], garbage_state: Path, repo: Path, command: str) -> None:
    argv = [command, *(["--once"] if command == "reconcile" else []), "--repo", str(repo), "--state-dir", str(garbage_state), "--listen", "127.0.0.1:0"]
    code, out, err = cli(capsys, *argv)
    assert code == 1
    assert out == ""
    assert lines(err) == [f"error: {garbage_state}/history.sqlite3 is not a Pointsman history database (file is not a database)"]


# --------------------------------------------------------------------------- 6. listen


def _threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.is_alive() and t.ident is not None}


@pytest.mark.parametrize("kind", ["in-use", "not-here"])
def test_run_cannot_listen(capsys: pytest.CaptureFixture[str], busy_port: int, repo: Path, tmp_path: Path, kind: str) -> None:
    listen = f"127.0.0.1:{busy_port}" if kind == "in-use" else "10.255.255.1:8080"
    reason = "Address already in use" if kind == "in-use" else "Cannot assign requested address"
    before = _threads()
    started = time.monotonic()
    code, out, err = cli(capsys, "run", "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "--listen", listen)
    assert code == 1
    assert out == ""
    assert lines(err) == [f"error: cannot listen on {listen}: {reason}"]
    assert time.monotonic() - started < 10
    time.sleep(0.2)
    assert _threads() <= before, [t.name for t in threading.enumerate() if t.ident not in before]
    # The history was closed and is usable; no run was started.
    code, out, err = cli(capsys, "history", "--state-dir", str(tmp_path / "state"))
    assert code == 0 and "no runs recorded yet" in out


def test_runner_stop_is_safe_after_a_failed_start(busy_port: int, repo: Path, tmp_path: Path) -> None:
    settings = RunSettings(repo=str(repo), state_dir=tmp_path / "state", listen=f"127.0.0.1:{busy_port}")
    runner = build_runner(settings)
    with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{busy_port}: Address already in use"):
        runner.start()
    assert runner.http is None and not runner.scheduler.running
    runner.stop()
    runner.stop()


def test_listen_host_that_is_no_ip_address(capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path) -> None:
    code, out, err = cli(capsys, "run", "--repo", str(repo), "--state-dir", str(tmp_path / "s"), "--listen", "256.1.1.1:80")
    assert code == 1
    assert lines(err) == ["error: --listen: listen host '256.1.1.1' is not an IPv4 address (in '256.1.1.1:80')"]


# --------------------------------------------------------------------------- 7. state dir


@pytest.mark.parametrize("command", ["run", "reconcile", "history"])
@pytest.mark.parametrize("where", ["file", "under-file"])
def test_unusable_state_dir(capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path, command: str, where: str) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    state = a_file if where == "file" else a_file / "state"
    argv = [command]
    if command != "history":
        argv += [*(["--once"] if command == "reconcile" else []), "--repo", str(repo), "--listen", "127.0.0.1:0"]
    code, out, err = cli(capsys, *argv, "--state-dir", str(state))
    assert code == 1
    assert out == ""
    if where == "file":
        expected = f"error: state dir {a_file} is not a directory (--state-dir / POINTSMAN_STATE_DIR)"
    elif command == "history":
        expected = f"error: no history at {state / 'history.sqlite3'} (has `pointsman run` used --state-dir {state}?)"
    else:
        expected = f"error: cannot create state dir {state}: Not a directory"
    assert lines(err) == [expected]


def test_state_dir_from_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, repo: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    monkeypatch.setenv("POINTSMAN_STATE_DIR", str(a_file))
    code, out, err = cli(capsys, "reconcile", "--once", "--repo", str(repo))
    assert code == 1
    assert lines(err) == [f"error: state dir {a_file} is not a directory (--state-dir / POINTSMAN_STATE_DIR)"]


# --------------------------------------------------------------------------- 8. --allow-empty


@pytest.fixture
def empty_spec(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_validate_empty_spec_needs_allow_empty(capsys: pytest.CaptureFixture[str], empty_spec: Path) -> None:
    code, out, err = cli(capsys, "validate", "--spec", str(empty_spec))
    assert code == 1
    (line,) = error_lines(err)
    assert str(empty_spec) in line and "--allow-empty" in line
    code, out, err = cli(capsys, "validate", "--spec", str(empty_spec), "--allow-empty")
    assert code == 0, err
    assert lines(out) == [f"{empty_spec}: valid (0 files, 0 top-level items)"]


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_with_allow_empty(capsys: pytest.CaptureFixture[str], estate: dict[str, Any], empty_spec: Path, command: str) -> None:
    code, out, err = cli(capsys, command, "--spec", str(empty_spec))
    assert code == 1
    assert len(error_lines(err)) == 1
    code, out, err = cli(capsys, command, "--spec", str(empty_spec), "--allow-empty", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["drift"] == [] and report["actions"] == [] and report["write_calls"] == 0


@pytest.fixture
def empty_repo(tmp_path: Path) -> Path:
    path = tmp_path / "empty-repo"
    (path / "desired_state").mkdir(parents=True)
    (path / "desired_state" / "README.md").write_text("nothing managed yet\n", encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "empty", cwd=path)
    return path


def test_reconcile_once_allow_empty_flag_and_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, estate: dict[str, Any], empty_repo: Path, tmp_path: Path
) -> None:
    base = ["reconcile", "--once", "--repo", str(empty_repo), "--poll-interval", "0"]
    code, out, err = cli(capsys, *base, "--state-dir", str(tmp_path / "s1"))
    assert code == 1
    (line,) = error_lines(err)
    assert "--allow-empty" in line
    code, out, err = cli(capsys, *base, "--state-dir", str(tmp_path / "s2"), "--allow-empty")
    assert code == 0, err
    assert json.loads(out)["status"] == "in_sync"
    monkeypatch.setenv("POINTSMAN_ALLOW_EMPTY", "true")
    code, out, err = cli(capsys, *base, "--state-dir", str(tmp_path / "s3"))
    assert code == 0, err
    code, out, err = cli(capsys, *base, "--state-dir", str(tmp_path / "s4"), "--no-allow-empty")
    assert code == 1


def test_allow_empty_setting() -> None:
    assert RunSettings(repo="x").allow_empty is False
    assert RunSettings(repo="x", allow_empty=True).allow_empty is True


# --------------------------------------------------------------------------- 9. everything else


def test_relative_repo_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    monkeypatch.chdir(repo.parent)
    assert RunSettings(repo=repo.name).repo == str(repo)
    assert RunSettings(repo="no-such-dir").repo == "no-such-dir"
    assert RunSettings(repo="git@github.com:org/repo.git").repo == "git@github.com:org/repo.git"


@pytest.mark.parametrize("value", ["inf", "nan", "1e300"])
def test_intervals_must_be_finite_and_bounded(value: str) -> None:
    from pydantic import ValidationError

    for field in ("interval", "poll_interval", "ready_after"):
        with pytest.raises(ValidationError):
            given: dict[str, Any] = {field: float(value)}
            RunSettings(repo="x", **given)


def test_broken_pipe_is_quiet(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`pointsman schema | head -1`: the reader goes away; exit 1, nothing on stderr."""
    import io
    import sys

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Gone())
    from controller.cli.main import main

    assert main(["schema"]) == 1
    assert capsys.readouterr().err == ""


def test_a_bug_is_still_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.cli import main as cli_module

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("something nobody foresaw\nover two lines")

    monkeypatch.setattr(cli_module, "json_schema", boom)
    code, out, err = cli(capsys, "schema")
    assert code == 1
    assert lines(err) == ["error: internal error: RuntimeError: something nobody foresaw over two lines (--log-level debug shows where)"]


@pytest.fixture(scope="module")
def shared_workspace() -> Iterator[Workspace]:
    with workspace() as w:
        yield w


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fuzz_case(case: Case, shared_workspace: Workspace) -> None:
    outcome = run_case(case, shared_workspace)
    detail = f"exit {outcome.code}, {outcome.seconds:.1f}s\nstdout: {outcome.out[-2000:]}\nstderr: {outcome.err[-3000:]}"
    assert outcome.exception is None, outcome.exception
    assert not outcome.traceback, detail
    assert outcome.code == case.expect, detail
    assert not outcome.hung, detail
    if case.expect == 1:
        (line,) = error_lines(outcome.err) or [""]
        assert outcome.expected_text in line, detail
    else:
        assert "usage: pointsman" in outcome.err, detail
        assert outcome.expected_text in outcome.err, detail


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 44
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.fuzz
def test_run_cli_cases_figures() -> None:
    figures = run_cli_cases()
    assert figures == {"cases": len(CASES), "tracebacks": 0, "hangs": 0, "wrong_exit": 0}
