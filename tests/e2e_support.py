"""Helpers for end-to-end tests: a git daemon on loopback, the controller as a subprocess."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPEC = ROOT / "desired_state"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # the thing may not be up yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


@dataclass
class GitServer:
    url: str
    work: Path  # a clone to commit and push from
    process: subprocess.Popen[bytes]

    def commit_and_push(self, message: str, edit: Callable[[Path], None]) -> str:
        edit(self.work)
        git("add", "-A", cwd=self.work)
        git("commit", "-m", message, cwd=self.work)
        git("push", "origin", "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def make_repo(path: Path) -> str:
    """A local repository on branch main holding desired_state/; returns the commit."""
    path.mkdir(parents=True)
    git("init", "--initial-branch=main", cwd=path)
    shutil.copytree(EXAMPLE_SPEC, path / "desired_state")
    git("add", "-A", cwd=path)
    git("commit", "-m", "Example estate", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


class Overran(BaseException):
    """Raised by ``deadline`` (a BaseException, so the code under test cannot swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` raises Overran (main thread only; elsewhere elapsed time alone tells)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def overran(signum: int, frame: Any) -> None:
        raise Overran()

    previous = signal.signal(signal.SIGALRM, overran)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def start_git_server(base: Path) -> GitServer:
    """A bare repo served by `git daemon` on 127.0.0.1 (push enabled), holding desired_state/."""
    repos = base / "repos"
    bare = repos / "estate.git"
    bare.mkdir(parents=True)
    git("init", "--bare", "--initial-branch=main", cwd=bare)
    port = free_port()
    process = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", f"--base-path={repos}", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1", f"--port={port}", str(repos)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}/estate.git"
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, 10, "git daemon")
    work = base / "work"
    work.mkdir()
    git("init", "--initial-branch=main", cwd=work)
    git("remote", "add", "origin", url, cwd=work)
    shutil.copytree(ROOT / "desired_state", work / "desired_state")
    server = GitServer(url, work, process)
    server.commit_and_push("Example estate", lambda _: None)
    return server


def replace_in(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(work: Path) -> None:
        path = work / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return edit


@dataclass
class ControllerProcess:
    process: subprocess.Popen[str]
    base_url: str
    state_dir: Path
    log_path: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def status(self) -> dict[str, Any]:
        code, body = self.get("/api/status")
        assert code == 200, body
        return json.loads(body)

    def history(self) -> list[dict[str, Any]]:
        return json.loads(self.get("/api/history?limit=100")[1])

    def post_webhook(self, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(self.base_url + "/webhook", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def runs_finished(self) -> int:
        return len([r for r in self.history() if r["finished"]])

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def start_controller(
    repo_url: str,
    state_dir: Path,
    aws_endpoint: str,
    *extra: str,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> ControllerProcess:
    port = free_port()
    log_path = state_dir.parent / f"controller-{port}.log"
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "POINTSMAN_REPO": repo_url,
        "POINTSMAN_STATE_DIR": str(state_dir),
        "POINTSMAN_LISTEN": f"127.0.0.1:{port}",
        "POINTSMAN_JITTER": "0",
        **(env or {}),
    }
    cmd = command or [sys.executable, "-m", "controller.cli", "run"]
    log = open(log_path, "w")
    process = subprocess.Popen([*cmd, *extra], env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    controller = ControllerProcess(process, f"http://127.0.0.1:{port}", state_dir, log_path)
    try:
        wait_for(lambda: controller.get("/healthz")[0] == 200, 30, "controller /healthz")
    except AssertionError:
        controller.stop()
        raise AssertionError("controller did not start:\n" + controller.logs()) from None
    return controller


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def converged_estate(moto_server: str, repo: Path) -> tuple[Any, str]:
    """moto's server reset and seeded with the example estate, a local repository at ``repo``
    holding desired_state/, and AWS converged to it (so a first full run writes nothing).
    Returns the clients and the repository's commit; AWS_ENDPOINT_URL must name ``moto_server``."""
    from controller.aws.clients import AwsClients
    from controller.demo.estate import seed
    from controller.engine.pipeline import reconcile
    from controller.spec import load_spec

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10).close()
    clients = AwsClients(rate_limiter=False)
    seed(clients)
    commit = make_repo(repo)
    assert not reconcile(load_spec(repo / "desired_state"), clients, apply=True).failed
    return clients, commit
