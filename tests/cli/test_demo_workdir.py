"""The demo starts from desired_state/ each time (the emulator starts empty), unless --keep."""

from __future__ import annotations

from pathlib import Path

import git

from controller.demo.run import make_repo, prepare_workdir
from tests.e2e_support import EXAMPLE_SPEC


def _promote(repo_dir: Path) -> None:
    spec = repo_dir / "desired_state" / "getreport.yaml"
    spec.write_text(spec.read_text().replace('prod: {version: "1"', 'prod: {version: "2"'))
    repo = git.Repo(repo_dir)
    repo.index.add(["desired_state/getreport.yaml"])
    repo.index.commit("Promote getreport 2 to prod")


def test_a_second_start_makes_the_repo_and_history_afresh(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    _, created = make_repo(workdir / "repo", EXAMPLE_SPEC)
    assert created
    _promote(workdir / "repo")
    (workdir / "state").mkdir()
    (workdir / "state" / "history.sqlite3").write_text("runs of an emulator that is gone")
    (workdir / "notes.txt").write_text("the user's own file")

    prepare_workdir(workdir, keep=False)
    repo, created = make_repo(workdir / "repo", EXAMPLE_SPEC)
    assert created and len(list(repo.iter_commits())) == 1
    assert 'prod: {version: "1"' in (workdir / "repo" / "desired_state" / "getreport.yaml").read_text()  # step 1's sed matches again
    assert not (workdir / "state").exists()
    assert (workdir / "notes.txt").read_text() == "the user's own file"


def test_keep_reuses_the_repo_and_history(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    make_repo(workdir / "repo", EXAMPLE_SPEC)
    _promote(workdir / "repo")
    (workdir / "state").mkdir()
    prepare_workdir(workdir, keep=True)
    repo, created = make_repo(workdir / "repo", EXAMPLE_SPEC)
    assert not created and len(list(repo.iter_commits())) == 2
    assert (workdir / "state").is_dir()
