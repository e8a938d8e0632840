"""The README's "Demo walkthrough", run twice in a row, as its code blocks say.

The commands come from the README itself (tests/readme_support.py: its ```sh blocks, trailing
comments left out), so the README cannot drift from what is tested. The test changes in them
only what a test must, all in that module's block "What the test changes": its own ports and
working directory instead of the demo's defaults, the test's interpreter's bin directory for
`.venv/bin/`, and `make demo DEMO_ARGS="X"` run as the Makefile runs it (`pointsman demo X`) on
those ports. The demo's reconcile interval stays its default (10 s): the README's timings assume it.

Round 1: start the demo (Quick start's `make demo`), steps 1 to 4, stop it (SIGINT, as Ctrl-C),
step 5 (detect mode with --keep), stop it. Round 2: start the demo again without --keep: steps 1
to 4 work again (the seds match, the commits have something to commit, the canary rolls back).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli.parser import _parser
from tests.readme_support import MAKE_DEMO, README, Session, Walkthrough, check_substitutions, expect, quick_start, section, sh_blocks

pytestmark = pytest.mark.server

SECTION = "### Demo walkthrough"


def read_walkthrough() -> Walkthrough:
    text = README.read_text()
    walkthrough = section(text, SECTION)
    setup, *steps = sh_blocks(walkthrough)
    assert len(steps) == 5, f"the walkthrough has {len(steps)} steps, the test knows 5"
    check_substitutions(walkthrough)
    return Walkthrough(quick_start(text), [c.line for c in setup], steps)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session(read_walkthrough(), tmp_path)
    yield s
    s.close()


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
