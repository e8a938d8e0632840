"""The README's "Walkthrough: adopting the demo's hand-built API", run against the demo as written.

The commands come from the README (tests/readme_support.py reads its ```sh blocks and changes
only the demo's ports, working directory and `.venv/bin/`). The demo starts as Quick start's
`make demo`; once its first run has finished, the steps run one command at a time: import
inventory-api (in no spec) into a new directory, in sync at once (plan exits 0, apply writes
nothing), a console
`update-alias` reported as drift against the imported spec and healed by apply, and a re-import
over the first that leaves every byte as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.readme_support import README, Session, Walkthrough, check_substitutions, expect, quick_start, section, sh_blocks

pytestmark = pytest.mark.server

PARENT = "### Adopting an existing estate"
SECTION = "#### Walkthrough: adopting the demo's hand-built API"


def read_walkthrough() -> Walkthrough:
    text = README.read_text()
    assert SECTION in section(text, PARENT), f"{SECTION!r} is not in {PARENT!r}"
    walkthrough = section(text, SECTION)
    setup, *steps = sh_blocks(walkthrough)
    assert len(steps) == 3, f"the walkthrough has {len(steps)} steps, the test knows 3"
    check_substitutions(walkthrough)
    return Walkthrough(quick_start(text), [c.line for c in setup], steps)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session(read_walkthrough(), tmp_path)
    yield s
    s.close()


def test_readme_adopt_walkthrough(session: Session) -> None:
    s = session
    s.wait_until_up(s.start_demo(s.walkthrough.start))
    step1, step2, step3 = s.walkthrough.steps
    adopted = s.workdir / "adopted"

    # 1. Import: the console's statements cover the routes, so it is in sync at once.
    assert [c.line.split()[:2] for c in step1] == [[".venv/bin/pointsman", "import"], ["cat", ".pointsman-demo/adopted/inventory-api.yaml"]] + [
        [".venv/bin/pointsman", verb] for verb in ("plan", "apply")
    ], step1
    imported, cat, plan, apply = (s.run(c) for c in step1)
    expect(imported, 0, f"wrote {adopted}/domains.yaml", f"wrote {adopted}/inventory-api.yaml", "nothing left out")
    assert sorted(p.name for p in adopted.iterdir()) == ["domains.yaml", "inventory-api.yaml"]
    assert "v1: {api: inventory-api, stage: prod}" in (adopted / "domains.yaml").read_text()
    expect(cat)  # its README comment lines: the weighted alias and the stage
    expect(plan, 0, "In sync: live AWS matches the spec.")
    expect(apply, 0, "In sync")
    assert "succeeded" not in apply.stdout, str(apply)

    # 2. A console click on the hand-built API's prod alias: drift, healed by apply.
    click, plan, apply, again = (s.run(c) for c in step2)
    expect(click)
    expect(plan, 2, "Drift (1):")  # its README comment lines: the alias and its version
    expect(apply, 0, "Apply: 1/1 succeeded", "succeeded lambda.UpdateAlias  lambda_alias/listOrders/prod")
    expect(again, 0, "In sync: live AWS matches the spec.")

    # 3. A re-import over the first (--force) is the same bytes.
    copy, reimport, diff = (s.run(c) for c in step3)
    expect(copy)
    first = {p.name: p.read_bytes() for p in (s.workdir / "adopted.first").iterdir()}
    assert sorted(first) == ["domains.yaml", "inventory-api.yaml"]
    expect(reimport, 0, f"wrote {adopted}/inventory-api.yaml")
    assert "--force" in reimport.command.line
    expect(diff, 0)
    assert diff.stdout == "", str(diff)
    assert {p.name: p.read_bytes() for p in adopted.iterdir()} == first
