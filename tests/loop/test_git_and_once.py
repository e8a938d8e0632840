"""GitSource against local repositories (and a closed port on 127.0.0.1), and
`pointsman reconcile --once` / `pointsman history` in-process against moto in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients, write_calls
from controller.loop.gitsource import GitSource, GitSourceError
from controller.loop.history import History
from tests.conftest import EXAMPLE_SPEC, cli, free_port
from tests.e2e_support import git, make_repo


def commit(repo: Path, message: str, relative: str, old: str, new: str) -> str:
    file = repo / relative
    text = file.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    git("commit", "-am", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


# =========================================================================== GitSource


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "origin"
    return repo, make_repo(repo)


def test_fetch_returns_branch_commit(origin: tuple[Path, str], tmp_path: Path) -> None:
    repo, first = origin
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    assert source.fetch() == first
    assert (tmp_path / "mirror.git" / "HEAD").exists()
    second = commit(repo, "prod to 2", "desired_state/getreport.yaml", 'prod: {version: "1"', 'prod: {version: "2"')
    assert second != first
    assert source.fetch() == second
    assert source.commit_summary(second) == "prod to 2"


def test_remote_head(origin: tuple[Path, str], tmp_path: Path) -> None:
    repo, first = origin
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    assert source.remote_head() == first
    second = commit(repo, "dev description", "desired_state/getreport.yaml", "description: development}", "description: dev}")
    assert source.remote_head() == second
    assert GitSource(url=str(repo), branch="no-such-branch", workdir=tmp_path / "m2.git").remote_head() is None


def test_export_writes_the_spec_at_each_commit(origin: tuple[Path, str], tmp_path: Path) -> None:
    repo, first = origin
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    source.fetch()
    specs = tmp_path / "specs"
    exported = source.export(first, "desired_state", specs)
    assert exported.parent.name.startswith(first + "-") and exported.name == "desired_state" and exported.parent.parent == specs
    assert sorted(p.name for p in exported.iterdir()) == sorted(p.name for p in EXAMPLE_SPEC.iterdir())
    for original in EXAMPLE_SPEC.iterdir():
        assert (exported / original.name).read_text(encoding="utf-8") == original.read_text(encoding="utf-8")

    second = commit(repo, "prod to 2", "desired_state/getreport.yaml", 'prod: {version: "1"', 'prod: {version: "2"')
    assert source.fetch() == second
    later = source.export(second, "desired_state", specs)
    assert later.parent.name.startswith(second + "-") and later.name == "desired_state"
    assert 'prod: {version: "2"' in (later / "getreport.yaml").read_text(encoding="utf-8")
    # the earlier export still shows the earlier commit
    assert 'prod: {version: "1"' in (exported / "getreport.yaml").read_text(encoding="utf-8")
    assert (later / "products.yaml").read_text() == (exported / "products.yaml").read_text()
    assert not list(specs.glob(".*.tmp"))

    source.prune_exports(specs, keep={second})
    assert [p.name.split("-")[0] for p in specs.iterdir()] == [second]


def test_export_of_an_absent_path(origin: tuple[Path, str], tmp_path: Path) -> None:
    repo, first = origin
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    source.fetch()
    missing = source.export(first, "no/such/dir", tmp_path / "specs")
    assert missing.parent.parent.parent.name.startswith(first + "-") and str(missing).endswith("/no/such/dir")
    assert not missing.exists()


def test_export_cache_is_per_path(origin: tuple[Path, str], tmp_path: Path) -> None:
    repo, first = origin
    source = GitSource(url=str(repo), branch="main", workdir=tmp_path / "mirror.git")
    source.fetch()
    assert not source.export(first, "wrong-path", tmp_path / "specs").exists()
    right = source.export(first, "desired_state", tmp_path / "specs")
    assert (right / "getreport.yaml").is_file()


def test_changed_url_with_same_workdir_fetches_the_new_remote(tmp_path: Path) -> None:
    first = make_repo(tmp_path / "a")
    b = tmp_path / "b"
    make_repo(b)
    other = commit(b, "different", "desired_state/getreport.yaml", 'prod: {version: "1"', 'prod: {version: "2"')
    assert GitSource(url=str(tmp_path / "a"), branch="main", workdir=tmp_path / "mirror.git").fetch() == first
    assert GitSource(url=str(b), branch="main", workdir=tmp_path / "mirror.git").fetch() == other


def test_fetch_missing_repository_is_a_one_line_error(tmp_path: Path) -> None:
    url = str(tmp_path / "nothing-here")
    source = GitSource(url=url, branch="main", workdir=tmp_path / "mirror.git", timeout=20)
    with pytest.raises(GitSourceError) as info:
        source.fetch()
    message = str(info.value)
    assert message.startswith(f"git fetch {url} failed: ")
    assert "\n" not in message


def test_fetch_error_names_the_cause(tmp_path: Path) -> None:
    url = str(tmp_path / "nothing-here")
    with pytest.raises(GitSourceError) as info:
        GitSource(url=url, branch="main", workdir=tmp_path / "mirror.git", timeout=20).fetch()
    assert "does not appear to be a git repository" in str(info.value)


def test_fetch_missing_branch(origin: tuple[Path, str], tmp_path: Path) -> None:
    repo, _ = origin
    with pytest.raises(GitSourceError) as info:
        GitSource(url=str(repo), branch="nope", workdir=tmp_path / "mirror.git").fetch()
    message = str(info.value)
    assert message.startswith(f"git fetch {repo} failed: ")
    assert "refs/heads/nope" in message and "\n" not in message


def test_token_never_in_error(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: fails at once
    url = f"https://127.0.0.1:{port}/x.git"
    source = GitSource(url=url, branch="main", workdir=tmp_path / "mirror.git", token="supersecret", timeout=20)
    for call, verb in ((source.fetch, "fetch"), (source.remote_head, "ls-remote")):
        with pytest.raises(GitSourceError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"git {verb} {url} failed: ")
        assert "\n" not in message
        assert "supersecret" not in message
        assert f"127.0.0.1 port {port}" in message or f"127.0.0.1:{port}" in message
    # Nor is it written into the mirror's configuration.
    assert "supersecret" not in (tmp_path / "mirror.git" / "config").read_text()


def test_token_in_url_is_redacted_in_error(tmp_path: Path) -> None:
    port = free_port()
    url = f"https://user:supersecret@127.0.0.1:{port}/x.git"
    source = GitSource(url=url, branch="main", workdir=tmp_path / "mirror.git", timeout=20)
    with pytest.raises(GitSourceError) as info:
        source.fetch()
    message = str(info.value)
    assert message.startswith(f"git fetch https://127.0.0.1:{port}/x.git failed: ")
    assert "supersecret" not in message
    assert "user:" not in message


# =========================================================================== reconcile --once


def once(capsys: pytest.CaptureFixture[str], repo: Path, state: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli(capsys, "reconcile", "--once", "--repo", str(repo), "--state-dir", str(state), "--poll-interval", "0", *extra)
    return code, json.loads(out), err


def alias_version(clients: AwsClients, function: str, alias: str) -> str:
    return clients.lambda_.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]


def newest_run(state: Path):
    history = History(state / "history.sqlite3")
    try:
        return history.recent()[0]
    finally:
        history.close()


@pytest.fixture
def spec_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "estate-repo"
    return repo, make_repo(repo)


def test_once_applies_then_is_in_sync_then_history(
    estate: dict[str, Any], clients: AwsClients, spec_repo: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, sha = spec_repo
    state = tmp_path / "state"

    code, doc, err = once(capsys, repo, state)
    assert code == 2, err
    assert doc["status"] == "applied"
    assert doc["commit_sha"] == sha and doc["head_sha"] == sha
    assert doc["trigger"] == "once" and doc["mode"] == "apply"
    assert doc["drift_count"] > 0 and doc["actions"]
    assert all(a["outcome"] == "succeeded" for a in doc["actions"]), doc["actions"]
    assert "api_calls" not in doc
    assert alias_version(clients, "getreport", "prod") == "1"
    assert alias_version(clients, "getProducts", "prod") == "3"
    first = newest_run(state)
    assert write_calls(first.api_calls), first.api_calls

    code, doc, err = once(capsys, repo, state)
    assert code == 0, err
    assert doc["status"] == "in_sync"
    assert doc["drift_count"] == 0 and doc["actions"] == [] and doc["error"] is None
    run = newest_run(state)
    assert run.status == "in_sync"
    assert run.api_calls, "reads are recorded"
    assert write_calls(run.api_calls) == {}

    code, out, err = cli(capsys, "history", "--state-dir", str(state))
    assert code == 0, err
    runs = [line for line in out.splitlines() if line.startswith("#")]
    assert len(runs) == 2
    assert runs[0].startswith("#2 ") and " in sync " in runs[0] and sha[:12] in runs[0]
    assert runs[1].startswith("#1 ") and " healed " in runs[1]

    code, out, err = cli(capsys, "history", "--state-dir", str(state), "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [(r["id"], r["status"], r["commit_sha"]) for r in listed] == [(2, "in_sync", sha), (1, "applied", sha)]
    assert listed[1]["drift_count"] == len(listed[1]["drift"]) > 0


def test_history_of_an_empty_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = cli(capsys, "history", "--state-dir", str(empty))
    assert code == 1
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"error: no history at {empty / 'history.sqlite3'}")


def test_once_detect_mode_reports_console_change_without_writing(
    estate: dict[str, Any], clients: AwsClients, spec_repo: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = spec_repo
    state = tmp_path / "state"
    assert once(capsys, repo, state)[0] == 2  # converge first
    clients.lambda_.update_alias(FunctionName="getreport", Name="prod", FunctionVersion="2")

    code, doc, err = once(capsys, repo, state, "--mode", "detect")
    assert code == 2, err
    assert doc["status"] == "drift" and doc["mode"] == "detect"
    assert [d["resource"] for d in doc["drift"]] == ["lambda_alias/getreport/prod"]
    assert [a["outcome"] for a in doc["actions"]] == ["planned"]
    assert alias_version(clients, "getreport", "prod") == "2"
    assert write_calls(newest_run(state).api_calls) == {}

    # apply mode heals it
    code, doc, err = once(capsys, repo, state)
    assert code == 2 and doc["status"] == "applied", err
    assert alias_version(clients, "getreport", "prod") == "1"


def test_once_invalid_commit_changes_nothing(
    estate: dict[str, Any], clients: AwsClients, spec_repo: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, good = spec_repo
    state = tmp_path / "state"
    assert once(capsys, repo, state)[0] == 2
    # Moves prod to 2 *and* breaks the spec: nothing of it may be applied.
    bad = commit(
        repo, "broken", "desired_state/getreport.yaml", 'prod: {version: "1", description: stable}', 'prod: {version: "2", description: stable, colour: red}'
    )

    code, doc, err = once(capsys, repo, state)
    assert code == 1
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, err
    assert bad[:12] in error_lines[0] and "invalid" in error_lines[0]
    assert doc["head_sha"] == bad
    assert doc["commit_sha"] == good  # reconciled against the last good commit
    assert alias_version(clients, "getreport", "prod") == "1"
    assert write_calls(newest_run(state).api_calls) == {}

    # A console change while head is invalid is reported but not healed.
    clients.lambda_.update_alias(FunctionName="getreport", Name="prod", FunctionVersion="2")
    code, doc, err = once(capsys, repo, state)
    assert code == 1, err
    assert [d["resource"] for d in doc["drift"]] == ["lambda_alias/getreport/prod"]
    assert alias_version(clients, "getreport", "prod") == "2"


def test_a_run_is_logged_under_one_id_even_when_it_folds(
    estate: dict[str, Any],
    clients: AwsClients,
    spec_repo: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, _ = spec_repo
    state = tmp_path / "state"
    monkeypatch.setenv("POINTSMAN_LOG_LEVEL", "info")
    logs = []
    for _ in range(3):  # detect mode, nothing changes: the second and third runs fold into the first
        _, _, err = once(capsys, repo, state, "--mode", "detect")
        logs += [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    started = [entry["run"] for entry in logs if entry["event"] == "reconcile started"]
    finished = [entry for entry in logs if entry["event"] == "reconcile finished"]
    assert started == [entry["run"] for entry in finished] == [1, 2, 3]
    assert "folded_into" not in finished[0]
    assert [(entry["folded_into"], entry["count"]) for entry in finished[1:]] == [(1, 2), (1, 3)]
