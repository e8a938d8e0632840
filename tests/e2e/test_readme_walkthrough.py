"""The README's "Demo walkthrough", run twice in a row, as its code blocks say.

The commands come from the README itself (its ```sh blocks, trailing comments left out), so the
README cannot drift from what is tested. The test changes in them only what a test must, all in
the block "What the test changes" below: its own ports and working directory instead of the
demo's defaults, the test's interpreter's bin directory for `.venv/bin/`, and
`make demo DEMO_ARGS="X"` run as the Makefile runs it (`pointsman demo X`) on those ports. The
demo's reconcile interval stays its default (10 s): the README's timings assume it.

Round 1: start the demo (Quick start's `make demo`), steps 1 to 4, stop it (SIGINT, as Ctrl-C),
step 5 (detect mode with --keep), stop it. Round 2: start the demo again without --keep: steps 1
to 4 work again (the seds match, the commits have something to commit, the canary rolls back).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.cli.parser import _parser
from tests.e2e_support import ROOT, free_port, wait_for

pytestmark = pytest.mark.server

README = ROOT / "README.md"
SECTION = "### Demo walkthrough"
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
    setup: list[str]  # the export and REPO= lines, run before each command
    steps: list[list[Command]]  # steps 1 to 5


def read_walkthrough() -> Walkthrough:
    text = README.read_text()
    start = text.index(SECTION)
    following = re.search(r"^#{1,3} ", text[start + len(SECTION) :], re.MULTILINE)  # the next heading
    section = text[start : start + len(SECTION) + following.start()] if following else text[start:]
    setup, *steps = sh_blocks(section)
    assert len(steps) == 5, f"the walkthrough has {len(steps)} steps, the test knows 5"
    quick_start = [c.line for block in sh_blocks(text[: text.index(SECTION)]) for c in block if c.line.startswith("make demo")]
    assert quick_start == ["make demo"], quick_start
    for old, _ in substitutions(Path("/unused"), 0):
        assert old in section, f"{old!r} is no longer in the walkthrough: update the substitutions"
    return Walkthrough(quick_start[0], [c.line for c in setup], steps)


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


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session(read_walkthrough(), tmp_path)
    yield s
    for demo in s.demos:
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


def run_steps_1_to_4(s: Session) -> None:
    step1, step2, step3 = (s.walkthrough.steps[i] for i in range(3))

    # 1. Promote by commit: exactly one UpdateAlias.
    assert [c.line.split()[0] for c in step1] == ["sed", "git", ".venv/bin/pointsman", ".venv/bin/aws", ".venv/bin/pointsman"], step1
    sed, commit, wait, get_alias, history = (s.run(c) for c in step1)
    expect(sed)
    expect(commit, 0, "Promote getreport 2 to prod")  # exit 1 had the sed matched nothing
    expect(wait, 0, wait.command.comment, "Promote getreport 2 to prod")  # "in sync: live AWS matches git"
    expect(get_alias)
    assert json.loads(get_alias.stdout)["FunctionVersion"] == "2", str(get_alias)
    promoted = s.head()
    expect(
        history,
        0,
        promoted[:12],
        "~ lambda_alias/getreport/prod  [modified]",
        'version: "1" -> "2"',
        "succeeded lambda.UpdateAlias  lambda_alias/getreport/prod",
    )
    assert history.stdout.count("succeeded ") == 1, str(history)

    # 2. A console click is drift: reported and healed. As a reader does, click while no run is
    # about to start: a run that starts in the second `status --wait` does counts as new, and one
    # that read the alias just before the click would be in sync with the heal still to come.
    s.no_run_due(within=3)
    click, wait, history, routes = (s.run(c) for c in step2)
    expect(click)
    assert json.loads(click.stdout)["FunctionVersion"] == "1", str(click)
    expect(wait, 0, wait.command.comment.split(";")[0])  # "in sync: live AWS matches git"
    expect(history)  # its README comment lines: the drift and the UpdateAlias that healed it
    expect(routes, 0, routes.command.comment.split(": ", 1)[1])

    # 3. A dated version exposed on prod by a one-line commit.
    dated, default, refused, sed, commit, exposed, media = (s.run(c) for c in step3)
    expect(dated, 0, "=> 200-class: postUser:2022-05-03 -> version 2")
    expect(default, 0, "'2022-01-01' (the stage's default)", "=> 200-class: postUser:2022-01-01 -> version 1")
    expect(refused, 3, "=> 400 ", '"supported": ["2022-01-01", "2022-05-03"]')  # exit 3: the client gets an error
    expect(sed)
    expect(commit, 0, "Expose API version 2022-11-01 on prod")
    expect(exposed, 0, "=> 200-class: postUser:2022-11-01 -> $LATEST")
    # "no redeployment, only the stage's variables and one wider permission change"
    exposing = [r for r in s.get_json("/api/history?limit=20") if r["commit_sha"] == s.head() and r["status"] == "applied"]
    assert len(exposing) == 1, exposing
    operations = sorted(a["operation"] for a in exposing[0]["actions"])
    assert operations == ["apigateway.UpdateStage", "lambda.AddPermission", "lambda.RemovePermission"], exposing[0]["actions"]
    expect(media, 0, "=> 200-class: listItems:v2 -> version 2")

    # 4. A canary gated by an alarm: 20% on version 4, then the alarm rolls it back in one call.
    commands = iter(s.walkthrough.steps[3])  # one at a time: the canary is looked at between them
    expect(s.run(next(commands)))  # sed
    expect(s.run(next(commands)), 0, "Roll out getProducts 4 to prod as a canary")
    expect(s.run(next(commands)), 2, "rolling out: rolling out getProducts:prod 3 -> 4", "(20%)")
    canary = s.get_json("/api/status")["rollouts"][0]
    assert (canary["alias"], canary["stable"], canary["target"], canary["weight"]) == ("getProducts/prod", "3", "4", 20.0), canary
    expect(s.run(next(commands)))  # the alarm trips
    wait = s.run(next(commands))
    get_alias = s.run(next(commands))
    expect(wait, 2, wait.command.comment)  # the abort's run and the runs after it say so alike
    expect(get_alias)
    alias = json.loads(get_alias.stdout)
    assert alias["FunctionVersion"] == "3" and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"), str(get_alias)
    aborted = [r for r in s.get_json("/api/history?limit=20") for row in r.get("rollouts") or [] if row.get("event") == "rollout_aborted"]
    assert len(aborted) == 1 and [a["operation"] for a in aborted[0]["actions"]] == ["lambda.UpdateAlias"], aborted


def test_substitutions_replace_the_demos_defaults() -> None:
    """The walkthrough's port and directory are `pointsman demo`'s defaults, so `make demo` serves them."""
    args = _parser().parse_args(["demo"])
    assert (args.aws_port, args.workdir, args.listen) == (4599, ".pointsman-demo", "127.0.0.1:8080")
    assert "<http://127.0.0.1:8080/>" in README.read_text()


def test_readme_walkthrough_twice(session: Session) -> None:
    s = session
    step5 = s.walkthrough.steps[4]

    # Round 1: the demo from scratch, steps 1 to 4, then detect mode keeping the commits.
    demo = s.start_demo(s.walkthrough.start)
    s.wait_until_up(demo)
    run_steps_1_to_4(s)
    demo.stop()

    restart, wait = step5
    assert MAKE_DEMO.fullmatch(restart.line) and "--keep" in restart.line, restart
    detect = s.start_demo(restart.line)
    ran = s.run(wait)  # waits for the demo to answer, then for a run of its own
    expect(
        ran,
        2,
        "drifted: ",
        "mode detect",
        "Roll out getProducts 4 to prod as a canary",
        "lambda_alias/getreport/prod  [missing",
        "would do: lambda.CreateAlias (planned, not applied)",
    )
    assert "reused (--keep)" in detect.output(), detect.logs()
    detect.stop()

    # Round 2: `make demo` again, without --keep: a new repository and history, and the same steps work.
    demo = s.start_demo(s.walkthrough.start)
    status = s.wait_until_up(demo)
    assert "(new, from desired_state/;" in demo.output(), demo.logs()
    assert status["commits"]["desired"]["subject"].startswith("Example estate"), status["commits"]
    run_steps_1_to_4(s)
    demo.stop()
