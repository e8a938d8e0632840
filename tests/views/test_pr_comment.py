"""The PR plan comment: `pointsman plan --format markdown [--base REV]`, and the example CI
workflow's own command line (examples/pr-plan-comment.yaml) run as the workflow runs it, against
moto's server on 127.0.0.1 and a local git repository with a base branch and a PR branch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.cli.main import main
from tests.e2e_support import ROOT, converged_estate, git

pytestmark = pytest.mark.server
WORKFLOW = ROOT / "examples" / "pr-plan-comment.yaml"


@pytest.fixture
def pr(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """main: the example estate, converged in AWS; branch promote: getProducts prod 3 -> 2."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    repo = tmp_path / "repo"
    clients, base = converged_estate(moto_server, repo)
    git("checkout", "-q", "-b", "promote", cwd=repo)
    spec = repo / "desired_state" / "products.yaml"
    spec.write_text(spec.read_text().replace('prod: {version: 3, description: "v1 production"}', 'prod: {version: 2, description: "v1 production"}'))
    git("commit", "-qam", "Roll products v1 prod back to version 2", cwd=repo)
    yield {"repo": repo, "base": base, "head": git("rev-parse", "HEAD", cwd=repo), "endpoint": moto_server}


def test_the_markdown_plan_is_a_ready_pr_comment(pr: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pr["repo"])
    code = main(["plan", "--spec", "desired_state", "--base", "main", "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 2, out
    lines = out.splitlines()
    assert lines[2] == f"📝 **1 to change, 0 to add, 0 to delete against account 123456789012/us-east-1 at {pr['head'][:12]}**"
    assert f"#### What this change edits in git, against `main` ({pr['base'][:12]})" in out
    assert '| ✏️ | `getProducts` | aliases.prod.version | "3" | "2" | desired_state/products.yaml:7 |' in out
    assert "<details open><summary>functions (1)</summary>" in out
    assert "#### What apply would change in AWS" in out
    assert '| `lambda_alias/getProducts/prod` | modified | version | "3" | "2" | `lambda.UpdateAlias` |' in out
    # What a client would notice: both the custom domain and the stage itself.
    routing = out[out.index("#### Routing changes") :]
    assert "`myapi.com/v1`" in routing and "`products-v1/prod`" in routing and "version 3" in routing
    assert "getProductsV2" not in routing
    assert lines[-1] == "<!-- pointsman-plan -->"


def test_without_a_base_the_plan_says_only_what_differs_from_live(pr: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    git("checkout", "-q", "main", cwd=pr["repo"])
    code = main(["plan", "--spec", str(pr["repo"] / "desired_state"), "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"✅ **0 to change, 0 to add, 0 to delete against account 123456789012/us-east-1 at {pr['base'][:12]}**: live AWS matches the spec." in out
    assert "What this change edits in git" not in out


def test_base_spec_and_text_output_show_the_spec_changes(pr: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = tmp_path / "base"
    git("worktree", "add", "-q", str(base), "main", cwd=pr["repo"])
    code = main(["plan", "--spec", str(pr["repo"] / "desired_state"), "--base-spec", str(base / "desired_state")])
    out = capsys.readouterr().out
    assert code == 2
    assert out.startswith(
        f'Spec changes against --base-spec {base / "desired_state"} (1):\n  ~ functions.getProducts.aliases.prod.version: "3" -> "2"  ({pr["repo"] / "desired_state"}/products.yaml:7)\n'
    )


def test_the_text_plan_shows_the_routing_changes_as_the_markdown_does(pr: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(pr["repo"] / "desired_state")
    assert main(["plan", "--spec", spec]) == 2
    out = capsys.readouterr().out
    routing = out[out.index("\nRouting changes") : out.index("\nAWS calls:")].strip("\n").splitlines()
    assert routing == [
        "Routing changes (2; what clients get):",
        "  ~ myapi.com/v1: products-v1/prod -> getProducts:prod",
        "      now (live): version 3",
        "      after apply (git): version 2",
        "  ~ products-v1/prod: lambdaAlias=prod -> getProducts:prod",
        "      now (live): version 3",
        "      after apply (git): version 2",
    ]
    assert out.index("Plan (1 action, in order):") < out.index("Routing changes")
    # The same routes, and the same values, as the markdown plan's table.
    assert main(["plan", "--spec", spec, "--format", "markdown"]) == 2
    markdown = capsys.readouterr().out
    table = markdown[markdown.index("#### Routing changes") :].split("\n\n")[1].splitlines()[2:]
    assert table == [
        "| `myapi.com/v1` | products-v1/prod -> getProducts:prod | version 3 | version 2 |",
        "| `products-v1/prod` | lambdaAlias=prod -> getProducts:prod | version 3 | version 2 |",
    ]


def test_an_in_sync_text_plan_has_no_routing_section(pr: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    git("checkout", "-q", "main", cwd=pr["repo"])
    assert main(["plan", "--spec", str(pr["repo"] / "desired_state")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("In sync: live AWS matches the spec.\n\nAWS calls: ") and len(out.strip().splitlines()) == 3
    assert "Routing" not in out


def test_a_change_no_client_notices_adds_no_routing_section(pr: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    git("checkout", "-q", "main", cwd=pr["repo"])
    spec = pr["repo"] / "desired_state" / "products.yaml"
    spec.write_text(spec.read_text().replace('description: "v1 production"', 'description: "v1, production"'))
    assert main(["plan", "--spec", str(spec.parent)]) == 2
    out = capsys.readouterr().out
    assert 'description: "v1 production" -> "v1, production"' in out
    assert "Routing" not in out


def test_an_unknown_base_is_one_line(pr: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--spec", str(pr["repo"] / "desired_state"), "--base", "no-such-branch"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: --base no-such-branch: no such revision in {pr['repo'].resolve()} (fetch it first, e.g. git fetch origin main)"
    ]


def _plan_step() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    return next(step for step in job["steps"] if step.get("name") == "Plan")


def _run_plan_step(pr: dict[str, Any], tmp_path: Path, base_ref: str) -> tuple[str, str]:
    output = tmp_path / "github-output"
    output.write_text("")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEC": "desired_state",
        "BASE_REF": base_ref,
        "GITHUB_OUTPUT": str(output),
        "AWS_ENDPOINT_URL": pr["endpoint"],
    }
    proc = subprocess.run(["bash", "-e", "-c", _plan_step()["run"]], cwd=pr["repo"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return (pr["repo"] / "plan.md").read_text(), output.read_text()


def test_the_example_workflow_plan_step_writes_the_comment(pr: dict[str, Any], tmp_path: Path) -> None:
    comment, outputs = _run_plan_step(pr, tmp_path, "main")
    assert outputs.strip() == "exit=2", comment
    assert "1 to change, 0 to add, 0 to delete" in comment
    assert "aliases.prod.version" in comment
    assert comment.rstrip().endswith("<!-- pointsman-plan -->")
    # The step that finds the comment to update looks for that marker.
    workflow = WORKFLOW.read_text()
    assert workflow.count("<!-- pointsman-plan -->") == 2


def test_the_example_workflow_posts_a_plan_error_as_the_comment(pr: dict[str, Any], tmp_path: Path) -> None:
    comment, outputs = _run_plan_step(pr, tmp_path, "origin/no-such-branch")
    assert outputs.strip() == "exit=1", comment
    assert "error: --base origin/no-such-branch: no such revision" in comment
    assert comment.rstrip().endswith("<!-- pointsman-plan -->")
