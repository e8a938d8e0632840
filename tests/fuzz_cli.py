"""Bad command lines, environments and AWS endpoints, run in-process through ``controller.cli.main.main``.

Each case patches the environment (restored afterwards), captures stdout and stderr, and
expects exit 1 (a one-line ``error: ...``) or argparse's 2. ``run_cli_cases()`` returns the
figures: ``{"cases": N, "tracebacks": T, "hangs": H, "wrong_exit": W}``; a traceback is an
exception other than ``SystemExit`` escaping ``main``, "Traceback" in the output, or an
"internal error" line (a bug caught by main's last resort). A hang is a case taking more than
``HANG_SECONDS``; a case still running after ``ABORT_SECONDS`` is interrupted (SIGALRM).

Nothing leaves 127.0.0.1: every case has AWS_ENDPOINT_URL pointing at a local socket (a
refused port, a server that never answers, or one that answers with garbage), fake
credentials, and no AWS config files. Not collected by pytest (tests/cli/test_cli_hardening.py
runs it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog

from controller.cli.main import main
from tests.e2e_support import Overran, deadline, free_port, git

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = ROOT / "desired_state"
HANG_SECONDS = 20.0
ABORT_SECONDS = 60.0
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


# --------------------------------------------------------------------------- local endpoints


class HungServer:
    """Accepts TCP connections on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hung-endpoint", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)  # held open, never read or answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self.sock.close()


class FakeAws:
    """Answers 200 on 127.0.0.1 with canned bodies chosen by path (regex -> body), else ``default``.

    The body is bytes sent as is, so it can be garbage. Reset ``routes``/``default`` between
    cases; requests are served from threads.
    """

    def __init__(self) -> None:
        self.routes: list[tuple[re.Pattern[str], bytes]] = []
        self.default = b"{}"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                body = next((b for pattern, b in fake.routes if pattern.search(path)), fake.default)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815 - stdlib names

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-aws", daemon=True)
        self._thread.start()

    def serve(self, default: bytes | str = b"{}", routes: dict[str, Any] | None = None) -> None:
        def raw(body: Any) -> bytes:
            if isinstance(body, bytes):
                return body
            return body.encode() if isinstance(body, str) else json.dumps(body).encode()

        self.default = raw(default)
        self.routes = [(re.compile(pattern), raw(body)) for pattern, body in (routes or {}).items()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def valid_function(name: str = "getreport") -> dict[str, Any]:
    """Routes under which every Lambda read of the example's functions is well formed."""
    return {
        r"/functions/[^/]+/versions$": {"Versions": [{"Version": "$LATEST", "FunctionArn": ARN.format(name=name) + ":$LATEST", "CodeSha256": "x"}]},
        r"/functions/[^/]+/aliases$": {"Aliases": [{"Name": "prod", "FunctionVersion": "1", "AliasArn": ARN.format(name=name) + ":prod"}]},
        r"/restapis$": {"item": []},
        r"/basepathmappings$": {"item": []},
    }


# --------------------------------------------------------------------------- the workspace


@dataclass
class Workspace:
    root: Path
    spec: Path  # a copy of desired_state/
    repo: Path  # a git repository with desired_state/ on main
    a_file: Path
    a_dir: Path
    empty_dir: Path
    garbage_history: Path  # a state dir whose history.sqlite3 is random bytes
    foreign_history: Path  # a state dir whose history.sqlite3 is SQLite with another schema
    dir_history: Path  # a state dir whose history.sqlite3 is a directory
    refused: str  # an endpoint URL nobody listens on
    hung: HungServer
    fake: FakeAws
    busy: socket.socket  # a listening socket: its port is in use

    @property
    def busy_listen(self) -> str:
        return f"127.0.0.1:{self.busy.getsockname()[1]}"

    def state(self, name: str) -> str:
        return str(self.root / "state" / name)


@contextlib.contextmanager
def workspace() -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="pointsman-fuzz-cli-"))
    hung = HungServer()
    fake = FakeAws()
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        spec = root / "spec"
        shutil.copytree(EXAMPLE_SPEC, spec)
        repo = root / "repo"
        (repo / "desired_state").mkdir(parents=True)
        for path in EXAMPLE_SPEC.glob("*.yaml"):
            shutil.copy(path, repo / "desired_state" / path.name)
        git("init", "-q", "-b", "main", cwd=repo)
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", "estate", cwd=repo)
        a_file = root / "a-file"
        a_file.write_text("not a directory\n", encoding="utf-8")
        a_dir = root / "a-dir"
        a_dir.mkdir()
        empty_dir = root / "empty-spec"
        empty_dir.mkdir()
        (empty_dir / "README.md").write_text("no yaml here\n", encoding="utf-8")
        garbage = root / "garbage-state"
        garbage.mkdir()
        (garbage / "history.sqlite3").write_bytes(os.urandom(4096))
        foreign = root / "foreign-state"
        foreign.mkdir()
        db = sqlite3.connect(str(foreign / "history.sqlite3"))
        db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, note TEXT)")
        db.commit()
        db.close()
        dir_history = root / "dir-state"
        (dir_history / "history.sqlite3").mkdir(parents=True)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        yield Workspace(
            root=root,
            spec=spec,
            repo=repo,
            a_file=a_file,
            a_dir=a_dir,
            empty_dir=empty_dir,
            garbage_history=garbage,
            foreign_history=foreign,
            dir_history=dir_history,
            refused=f"http://127.0.0.1:{free_port()}",
            hung=hung,
            fake=fake,
            busy=busy,
        )
    finally:
        busy.close()
        fake.close()
        hung.close()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    name: str
    argv: Callable[[Workspace], list[str]]
    expect: int = 1  # exit code: 1, or argparse's 2
    env: Callable[[Workspace], dict[str, str | None]] = lambda w: {}  # None: unset
    says: Callable[[Workspace], str] = lambda w: ""  # a fragment the error line must hold
    setup: Callable[[Workspace], None] = lambda w: None  # e.g. what the fake endpoint answers
    within: float = HANG_SECONDS  # seconds the case may take


def _plan(w: Workspace) -> list[str]:
    return ["plan", "--spec", str(w.spec)]


def _once(*more: str) -> Callable[[Workspace], list[str]]:
    return lambda w: ["reconcile", "--once", "--repo", str(w.repo), "--state-dir", w.state("once"), *more]


def _run(*more: str) -> Callable[[Workspace], list[str]]:
    return lambda w: ["run", "--repo", str(w.repo), "--state-dir", w.state("run"), "--listen", "127.0.0.1:0", *more]


def _fake(default: Any = b"{}", routes: dict[str, Any] | None = None) -> Callable[[Workspace], None]:
    return lambda w: w.fake.serve(default, routes)


def _at_fake(w: Workspace) -> dict[str, str | None]:
    return {"AWS_ENDPOINT_URL": w.fake.url}


def _at_hung(w: Workspace) -> dict[str, str | None]:
    return {"AWS_ENDPOINT_URL": w.hung.url, "POINTSMAN_AWS_READ_TIMEOUT": "0.5", "POINTSMAN_AWS_CONNECT_TIMEOUT": "0.5"}


def _const(text: str) -> Callable[[Workspace], str]:
    return lambda w: text


CASES: list[Case] = [
    # ---- argparse: exit 2
    Case("log level flag", lambda w: ["--log-level", "bogus", "validate", "--spec", str(w.spec)], 2, says=_const("--log-level")),
    Case("no command", lambda w: [], 2),
    Case("unknown command", lambda w: ["frobnicate"], 2),
    Case("plan --concurrency 0", lambda w: [*_plan(w), "--concurrency", "0"], 2, says=_const("--concurrency")),
    Case("plan --concurrency -3", lambda w: [*_plan(w), "--concurrency", "-3"], 2, says=_const("--concurrency")),
    Case("apply --concurrency abc", lambda w: ["apply", "--spec", str(w.spec), "--concurrency", "abc"], 2, says=_const("--concurrency")),
    Case("plan --format yaml", lambda w: [*_plan(w), "--format", "yaml"], 2, says=_const("--format")),
    Case("run --interval abc", _run("--interval", "abc"), 2, says=_const("--interval")),
    Case("reconcile without --once", lambda w: ["reconcile", "--repo", str(w.repo)], 2, says=_const("--once")),
    Case("history --limit 0", lambda w: ["history", "--state-dir", str(w.root), "--limit", "0"], 2, says=_const("--limit")),
    Case("demo --listen nope", lambda w: ["demo", "--listen", "nope"], 2, says=_const("--listen")),
    Case("demo --aws-port 70000", lambda w: ["demo", "--aws-port", "70000"], 2, says=_const("--aws-port")),
    Case("demo --interval nan", lambda w: ["demo", "--interval", "nan"], 2, says=_const("--interval")),
    # ---- settings: exit 1
    Case(
        "POINTSMAN_LOG_LEVEL=bogus",
        lambda w: ["validate", "--spec", str(w.spec)],
        env=lambda w: {"POINTSMAN_LOG_LEVEL": "bogus"},
        says=_const("POINTSMAN_LOG_LEVEL"),
    ),
    Case("run without a repo", lambda w: ["run", "--state-dir", w.state("norepo")], says=_const("--repo")),
    Case("--interval 0", _once("--interval", "0"), says=_const("--interval")),
    Case("--interval nan", _once("--interval", "nan"), says=_const("--interval")),
    Case("--interval inf", _once("--interval", "inf"), says=_const("--interval")),
    Case("--jitter 5", _once("--jitter", "5"), says=_const("--jitter")),
    Case("--poll-interval -1", _once("--poll-interval", "-1"), says=_const("--poll-interval")),
    Case("--history-keep 0", _once("--history-keep", "0"), says=_const("--history-keep")),
    Case("--listen nope", _run("--listen", "nope"), says=_const("--listen")),
    Case("--listen 256.1.1.1:80", _run("--listen", "256.1.1.1:80"), says=_const("256.1.1.1")),
    Case("POINTSMAN_INTERVAL=abc", _once(), env=lambda w: {"POINTSMAN_INTERVAL": "abc"}, says=_const("POINTSMAN_INTERVAL")),
    Case("POINTSMAN_PRUNE=maybe", _once(), env=lambda w: {"POINTSMAN_PRUNE": "maybe"}, says=_const("--prune")),
    Case("POINTSMAN_MODE=chaos", _once(), env=lambda w: {"POINTSMAN_MODE": "chaos"}, says=_const("--mode")),
    Case("POINTSMAN_CONCURRENCY=0", _once(), env=lambda w: {"POINTSMAN_CONCURRENCY": "0"}, says=_const("--concurrency")),
    Case("POINTSMAN_ALLOW_EMPTY=perhaps", _once(), env=lambda w: {"POINTSMAN_ALLOW_EMPTY": "perhaps"}, says=_const("--allow-empty")),
    Case(
        "POINTSMAN_WEBHOOK_SECRET_FILE is a directory",
        _once(),
        env=lambda w: {"POINTSMAN_WEBHOOK_SECRET_FILE": str(w.a_dir)},
        says=lambda w: f"cannot read POINTSMAN_WEBHOOK_SECRET_FILE {w.a_dir}",
    ),
    Case(
        "POINTSMAN_GIT_TOKEN_FILE missing",
        _once(),
        env=lambda w: {"POINTSMAN_GIT_TOKEN_FILE": str(w.root / "no-token")},
        says=_const("cannot read POINTSMAN_GIT_TOKEN_FILE"),
    ),
    # ---- state dir and history: exit 1
    Case("history: state dir is a file", lambda w: ["history", "--state-dir", str(w.a_file)], says=lambda w: f"state dir {w.a_file} is not a directory"),
    Case("history: no history", lambda w: ["history", "--state-dir", str(w.a_dir)], says=_const("no history at")),
    Case(
        "history: not SQLite",
        lambda w: ["history", "--state-dir", str(w.garbage_history)],
        says=lambda w: f"{w.garbage_history / 'history.sqlite3'} is not a Pointsman history database (file is not a database)",
    ),
    Case(
        "history: another schema",
        lambda w: ["history", "--state-dir", str(w.foreign_history)],
        says=_const("is not a Pointsman history database (table runs has no column"),
    ),
    Case("history: a directory", lambda w: ["history", "--state-dir", str(w.dir_history)], says=_const("is not a Pointsman history database")),
    Case("reconcile: state dir is a file", lambda w: [*_once()(w), "--state-dir", str(w.a_file)], says=lambda w: f"state dir {w.a_file} is not a directory"),
    Case(
        "reconcile: state dir under a file",
        lambda w: [*_once()(w), "--state-dir", str(w.a_file / "x")],
        says=lambda w: f"cannot create state dir {w.a_file / 'x'}",
    ),
    Case("run: state dir under a file", lambda w: [*_run()(w), "--state-dir", str(w.a_file / "x")], says=lambda w: f"cannot create state dir {w.a_file / 'x'}"),
    Case("run: state dir is a file", lambda w: [*_run()(w), "--state-dir", str(w.a_file)], says=lambda w: f"state dir {w.a_file} is not a directory"),
    Case("reconcile: history not SQLite", lambda w: [*_once()(w), "--state-dir", str(w.garbage_history)], says=_const("is not a Pointsman history database")),
    Case("run: history not SQLite", lambda w: [*_run()(w), "--state-dir", str(w.garbage_history)], says=_const("is not a Pointsman history database")),
    # ---- listen: exit 1
    Case("run: port in use", lambda w: [*_run()(w), "--listen", w.busy_listen], says=lambda w: f"cannot listen on {w.busy_listen}: Address already in use"),
    Case("run: address not on this machine", _run("--listen", "10.255.255.1:8080"), says=_const("cannot listen on 10.255.255.1:8080")),
    # ---- repository and spec: exit 1
    Case("reconcile: repo does not exist", lambda w: [*_once()(w), "--repo", str(w.root / "no-repo")], says=_const("git fetch")),
    Case("reconcile: spec path not in the repo", _once("--path", "nowhere"), says=_const("nowhere")),
    Case("validate: spec dir missing", lambda w: ["validate", "--spec", str(w.root / "missing")], says=_const("spec directory")),
    Case("validate: --spec is a file", lambda w: ["validate", "--spec", str(w.a_file)], says=lambda w: str(w.a_file)),
    Case("validate: no yaml files", lambda w: ["validate", "--spec", str(w.empty_dir)], says=lambda w: str(w.empty_dir)),
    # ---- AWS environment: exit 1
    Case("AWS_ENDPOINT_URL not a URL", _plan, env=lambda w: {"AWS_ENDPOINT_URL": "not a url"}, says=_const("Invalid endpoint: not a url")),
    Case("reconcile: AWS_ENDPOINT_URL not a URL", _once(), env=lambda w: {"AWS_ENDPOINT_URL": "not a url"}, says=_const("Invalid endpoint: not a url")),
    Case("run: AWS_ENDPOINT_URL not a URL", _run(), env=lambda w: {"AWS_ENDPOINT_URL": "not a url"}, says=_const("Invalid endpoint: not a url")),
    Case("AWS_REGION empty", _plan, env=lambda w: {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, says=_const("no AWS region configured")),
    Case("AWS_REGION malformed", _plan, env=lambda w: {"AWS_REGION": "us east 1", "AWS_DEFAULT_REGION": "us east 1"}, says=_const("us east 1")),
    Case("AWS_PROFILE missing", _plan, env=lambda w: {"AWS_PROFILE": "no-such-profile"}, says=_const("no-such-profile")),
    Case(
        "no credentials",
        _plan,
        env=lambda w: {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
        says=_const("no AWS credentials found"),
    ),
    Case("AWS_ENDPOINT_URL ftp://", _plan, env=lambda w: {"AWS_ENDPOINT_URL": "ftp://127.0.0.1:21"}, says=_const("is not an http(s) URL")),
    Case("AWS_ENDPOINT_URL port 99999", _plan, env=lambda w: {"AWS_ENDPOINT_URL": "http://127.0.0.1:99999"}, says=_const("Port out of range")),
    Case("AWS_DEFAULTS_MODE=bogus", _plan, env=lambda w: {"AWS_DEFAULTS_MODE": "bogus"}, says=_const("defaults mode")),
    Case("AWS_CONFIG_FILE not INI", _plan, env=lambda w: {"AWS_CONFIG_FILE": str(w.garbage_history / "history.sqlite3")}, says=_const("config file")),
    Case("AWS_MAX_ATTEMPTS=abc", _plan, env=lambda w: {"AWS_MAX_ATTEMPTS": "abc"}, says=_const("AWS_MAX_ATTEMPTS")),
    Case("AWS_MAX_ATTEMPTS=0", _plan, env=lambda w: {"AWS_MAX_ATTEMPTS": "0"}, says=_const("AWS_MAX_ATTEMPTS must be at least 1")),
    Case("AWS_RETRY_MODE=bogus", _plan, env=lambda w: {"AWS_RETRY_MODE": "bogus"}, says=_const("AWS_RETRY_MODE")),
    Case("POINTSMAN_AWS_READ_TIMEOUT=abc", _plan, env=lambda w: {"POINTSMAN_AWS_READ_TIMEOUT": "abc"}, says=_const("POINTSMAN_AWS_READ_TIMEOUT")),
    Case("POINTSMAN_AWS_CONNECT_TIMEOUT=-1", _plan, env=lambda w: {"POINTSMAN_AWS_CONNECT_TIMEOUT": "-1"}, says=_const("POINTSMAN_AWS_CONNECT_TIMEOUT")),
    Case("POINTSMAN_AWS_READ_TIMEOUT=inf", _plan, env=lambda w: {"POINTSMAN_AWS_READ_TIMEOUT": "inf"}, says=_const("POINTSMAN_AWS_READ_TIMEOUT")),
    # ---- AWS endpoint behaviour: exit 1
    Case("endpoint refuses connections", _plan, env=lambda w: {"AWS_ENDPOINT_URL": w.refused}, says=lambda w: f"cannot reach AWS endpoint {w.refused}"),
    Case("plan: endpoint never answers", _plan, env=_at_hung, says=lambda w: f"timed out waiting for AWS endpoint {w.hung.url}", within=10),
    Case(
        "reconcile: endpoint never answers",
        _once(),
        env=_at_hung,
        says=lambda w: f"timed out waiting for AWS endpoint {w.hung.url}",
        within=10,
    ),
    Case(
        "apply: endpoint never answers",
        lambda w: ["apply", "--spec", str(w.spec), "--concurrency", "1"],
        env=lambda w: {**_at_hung(w), "AWS_MAX_ATTEMPTS": "2"},
        says=lambda w: f"timed out waiting for AWS endpoint {w.hung.url}",
        within=10,
    ),
    Case("garbage body", _plan, env=_at_fake, setup=_fake(b"\x00garbage<<not json"), says=_const("unexpected response from")),
    Case("HTML body", _plan, env=_at_fake, setup=_fake(b"<html><body>proxy error</body></html>"), says=_const("unexpected response from")),
    Case("JSON array body", _plan, env=_at_fake, setup=_fake([1, 2, 3]), says=_const("unexpected response from")),
    Case("Versions is a string", _plan, env=_at_fake, setup=_fake({"Versions": "x"}), says=_const("lambda.ListVersionsByFunction: unexpected response from")),
    Case(
        "Versions of empty objects",
        _plan,
        env=_at_fake,
        setup=_fake({"Versions": [{}]}),
        says=_const("lambda.ListVersionsByFunction: unexpected response from"),
    ),
    Case(
        "REST API items not a list",
        _plan,
        env=_at_fake,
        setup=_fake(routes={**valid_function(), r"/restapis$": {"item": 5}}),
        says=_const("apigateway.GetRestApis: unexpected response from"),
    ),
    Case(
        "REST API without a name",
        _plan,
        env=_at_fake,
        setup=_fake(routes={**valid_function(), r"/restapis$": {"item": [{"id": "a1"}]}}),
        says=_const("apigateway.GetRestApis: unexpected response from"),
    ),
    Case(
        "alias without a name",
        _plan,
        env=_at_fake,
        setup=_fake(routes={**valid_function(), r"/functions/[^/]+/aliases$": {"Aliases": [{"FunctionVersion": "1"}]}}),
        says=_const("lambda.ListAliases: unexpected response from"),
    ),
    Case(
        "function ARN malformed",
        _plan,
        env=_at_fake,
        setup=_fake(routes={**valid_function(), r"/functions/[^/]+/versions$": {"Versions": [{"Version": "$LATEST", "FunctionArn": "nope"}]}}),
        says=_const("lambda.ListVersionsByFunction: unexpected response from"),
    ),
    Case(
        "policy not JSON",
        _plan,
        env=_at_fake,
        setup=_fake(routes={**valid_function(), r"/policy$": {"Policy": "{not json"}}),
        says=_const("lambda.GetPolicy: unexpected response from"),
    ),
    Case(
        "mapping items not a list",
        _plan,
        env=_at_fake,
        setup=_fake(routes={**valid_function(), r"/basepathmappings$": {"item": "x"}}),
        says=_const("apigateway.GetBasePathMappings: unexpected response from"),
    ),
]


# --------------------------------------------------------------------------- running them


@dataclass
class Outcome:
    case: Case
    code: int | None
    out: str
    err: str
    seconds: float
    exception: str | None = None  # an exception other than SystemExit escaped main
    hung: bool = False
    expected_text: str = ""

    @property
    def traceback(self) -> bool:
        text = self.out + self.err
        return self.exception is not None or "Traceback" in text or "error: internal error" in text

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error: ") or ": error: " in line]


BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_MAX_ATTEMPTS": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


@contextlib.contextmanager
def _environment(extra: dict[str, str | None], endpoint: str) -> Iterator[None]:
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith(("AWS_", "POINTSMAN_")):
                del os.environ[name]
        os.environ.update(BASE_ENV, AWS_ENDPOINT_URL=endpoint)
        for name, value in extra.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_case(case: Case, w: Workspace) -> Outcome:
    argv = case.argv(w)
    case.setup(w)
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    exception: str | None = None
    hung = False
    started = time.monotonic()
    with _environment(case.env(w), w.refused), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            with deadline(ABORT_SECONDS):
                code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Overran:
            hung = True
        except Exception as exc:  # noqa: BLE001 - exactly what is being counted
            exception = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    return Outcome(case, code, out.getvalue(), err.getvalue(), seconds, exception, hung or seconds > case.within, case.says(w))


def run_cases(cases: list[Case] | None = None) -> list[Outcome]:
    saved_logging = structlog.get_config()
    try:
        with workspace() as w:
            return [run_case(case, w) for case in (CASES if cases is None else cases)]
    finally:
        structlog.configure(**saved_logging)


def run_cli_cases() -> dict[str, int]:
    """Run every case; the figures: cases, tracebacks, hangs, wrong exit codes."""
    outcomes = run_cases()
    return {
        "cases": len(outcomes),
        "tracebacks": sum(o.traceback for o in outcomes),
        "hangs": sum(o.hung for o in outcomes),
        "wrong_exit": sum(o.code != o.case.expect for o in outcomes),
    }


if __name__ == "__main__":  # pragma: no cover
    for outcome in run_cases():
        flag = "ok " if outcome.code == outcome.case.expect and not outcome.traceback and not outcome.hung else "BAD"
        last = (outcome.error_lines or outcome.err.splitlines() or [""])[-1]
        print(f"{flag} {outcome.code} {outcome.seconds:5.1f}s {outcome.case.name}: {last}")
    print(run_cli_cases())
