"""Running the README's shell walkthroughs against `pointsman demo`, as a reader runs them.

The commands come from the README itself (its ```sh blocks, trailing comments left out; comment
lines under a command are lines it prints), so the README cannot drift from what is tested.
What a test changes in them is all in the block "What the test changes" below: its own ports and
working directory instead of the demo's defaults, the test's interpreter's bin directory for
`.venv/bin/`, and `make demo DEMO_ARGS="X"` run as the Makefile runs it (`pointsman demo X`).
Used by tests/e2e/test_readme_walkthrough.py ("Demo walkthrough") and
tests/e2e/test_readme_adopt_walkthrough.py ("Walkthrough: adopting the demo's hand-built API").
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e_support import ROOT, free_port, wait_for

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
COMMAND_TIMEOUT = 150  # `pointsman status --wait` itself gives up after 120 s
START_TIMEOUT = 60


# What the test changes ------------------------------------------------------------------------


def substitutions(workdir: Path, aws_port: int) -> list[tuple[str, str]]:
    """Text replaced in the README's commands, in order (each must occur in the walkthrough)."""
    return [
        ("http://127.0.0.1:4599", f"http://127.0.0.1:{aws_port}"),  # the demo's default --aws-port
        (".venv/bin/", f"{BIN}/"),  # the test's interpreter's venv
        (".pointsman-demo", str(workdir)),  # the demo's default --workdir
    ]


# `pointsman status` takes its --url default from this variable: the demo's --listen, not 8080.
STATUS_URL_ENV = "POINTSMAN_STATUS_URL"
MAKE_DEMO = re.compile(r'make demo(?: DEMO_ARGS="(?P<args>[^"]*)")?')


def demo_command(line: str, workdir: Path, aws_port: int, listen_port: int) -> str:
    """`make demo DEMO_ARGS="X"` as the Makefile runs it (`pointsman demo X`), on the test's ports and workdir."""
    match = MAKE_DEMO.fullmatch(line)
    assert match, f"not a `make demo` line: {line!r}"
    where = f"--workdir {shlex.quote(str(workdir))} --aws-port {aws_port} --listen 127.0.0.1:{listen_port}"
    return f"exec {shlex.quote(str(BIN / 'pointsman'))} demo {match['args'] or ''} {where}"


# -----------------------------------------------------------------------------------------------


@dataclass
class Command:
    line: str  # the command, its trailing comment left out
    comment: str  # that comment ("" if none)
    output: list[str] = field(default_factory=list)  # comment-only lines after it: lines it prints


def sh_blocks(text: str) -> list[list[Command]]:
    """The ```sh fenced blocks of ``text``, each as its commands."""
    blocks: list[list[Command]] = []
    current: list[Command] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if current is None:
            if line == "```sh":
                current = []
            continue
        if line == "```":
            blocks.append(current)
            current = None
        elif line.startswith("#"):
            assert current, f"a comment before any command: {raw!r}"
            current[-1].output.append(line.lstrip("#").strip())
        elif line:
            command, *comment = re.split(r"\s+#\s+", line, maxsplit=1)  # no command of the README has a " # " of its own
            current.append(Command(command, "".join(comment)))
    assert current is None, "an unclosed ```sh block"
    return blocks


@dataclass
class Walkthrough:
    start: str  # Quick start's `make demo`
    setup: list[str]  # the first block's lines (export, REPO=), run before each command
    steps: list[list[Command]]  # the numbered steps, a block each


def section(text: str, heading: str) -> str:
    """The README's section under ``heading``, up to the next heading of its level or a higher one."""
    start = text.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    following = re.search(rf"^#{{1,{level}}} ", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def quick_start(text: str) -> str:
    """Quick start's `make demo` (the sh blocks before the Demo walkthrough): how a reader starts the demo."""
    lines = [c.line for block in sh_blocks(text[: text.index("### Demo walkthrough")]) for c in block if c.line.startswith("make demo")]
    assert lines == ["make demo"], lines
    return lines[0]


def check_substitutions(text: str) -> None:
    """Each text the test replaces is in ``text`` (else the substitutions are out of date)."""
    for old, _ in substitutions(Path("/unused"), 0):
        assert old in text, f"{old!r} is no longer in the walkthrough: update the substitutions"


@dataclass
class Ran:
    command: Command
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"$ {self.command.line}\nexit {self.returncode}\n--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    listen_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def logs(self) -> str:
        return self.output()[-6000:]

    def stop(self) -> None:
        """Ctrl-C: the demo stops and exits 0."""
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the demo did not stop within 30 s of SIGINT:\n{self.logs()}") from None
        assert code == 0, f"the demo exited {code} on SIGINT:\n{self.logs()}"


class Session:
    """The README's second terminal: the project directory, the walkthrough's variables."""

    def __init__(self, walkthrough: Walkthrough, tmp_path: Path) -> None:
        self.walkthrough = walkthrough
        self.tmp_path = tmp_path
        self.workdir = tmp_path / "pointsman-demo"
        self.aws_port, self.listen_port = free_port(), free_port()
        while self.listen_port == self.aws_port:
            self.listen_port = free_port()
        # The shell a reader has: no AWS or Pointsman settings of the test's own environment.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POINTSMAN_"))}
        self.env[STATUS_URL_ENV] = f"http://127.0.0.1:{self.listen_port}"
        self.demos: list[Demo] = []

    @property
    def repo(self) -> Path:
        return self.workdir / "repo"

    def head(self) -> str:
        return subprocess.run(["git", "-C", str(self.repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True, timeout=30).stdout.strip()

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.listen_port}{path}", timeout=5) as response:
            return json.loads(response.read())

    def no_run_due(self, within: float) -> None:
        """Until no reconcile runs or starts within ``within`` seconds."""

        def quiet() -> bool:
            status = self.get_json("/api/status")
            return not status.get("running") and (status.get("next_run_in_s") or 0) >= within

        wait_for(quiet, 30, f"no reconcile running or due within {within} s", every=0.2)

    def substitute(self, line: str) -> str:
        for old, new in substitutions(self.workdir, self.aws_port):
            line = line.replace(old, new)
        return line

    def run(self, command: Command) -> Ran:
        script = "\n".join([*map(self.substitute, self.walkthrough.setup), self.substitute(command.line)])
        proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        return Ran(command, proc.returncode, proc.stdout, proc.stderr)

    def start_demo(self, line: str) -> Demo:
        log = self.tmp_path / f"demo-{len(self.demos)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", demo_command(line, self.workdir, self.aws_port, self.listen_port)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        demo = Demo(process, self.listen_port, log)
        self.demos.append(demo)
        return demo

    def wait_until_up(self, demo: Demo) -> dict[str, Any]:
        """What a reader waits for before the second terminal: the demo's first run has finished."""

        def first_run_finished() -> dict[str, Any] | None:
            assert demo.process.poll() is None, f"the demo exited {demo.process.returncode}:\n{demo.logs()}"
            with urllib.request.urlopen(demo.url + "/api/status", timeout=5) as response:
                status: dict[str, Any] = json.loads(response.read())
            return status if (status.get("last_run") or {}).get("finished") else None

        try:
            return wait_for(first_run_finished, START_TIMEOUT, "the demo's first finished run", every=0.25)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{demo.logs()}") from None

    def close(self) -> None:
        """Kill the demos still running (a test that failed half-way)."""
        for demo in self.demos:
            if demo.process.poll() is None:
                demo.process.kill()
                demo.process.wait(10)


def expect(ran: Ran, code: int = 0, *texts: str) -> None:
    assert ran.returncode == code, str(ran)
    for text in texts:
        assert text in ran.stdout, f"{text!r} not in the output:\n{ran}"
    # The README's comment lines under a command are lines it prints.
    printed = [line.strip() for line in ran.stdout.splitlines()]
    for line in ran.command.output:
        assert line in printed, f"the README says this prints {line!r}:\n{ran}"
