"""Unit tests: webhook signatures, run settings (env twins, secrets, redaction), the CLI's
settings errors, and the SQLite reconcile history (round trip, retention, restart)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from controller.cli.main import main
from controller.loop.history import History, RunRecord
from controller.loop.settings import Mode, RunSettings, redact_url
from controller.web import webhook

SECRET = "s3cr3t-hook"
BODY = b'{"ref": "refs/heads/main", "after": "abc"}'


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# =========================================================================== webhook.verify


def test_github_signature_accepted() -> None:
    headers = {"X-Hub-Signature-256": "sha256=" + sign(SECRET, BODY)}
    assert webhook.verify(SECRET, headers, BODY) == "github"


def test_github_signature_with_wrong_secret_rejected() -> None:
    headers = {"X-Hub-Signature-256": "sha256=" + sign("other-secret", BODY)}
    assert webhook.verify(SECRET, headers, BODY) is None


def test_github_signature_of_a_different_body_rejected() -> None:
    headers = {"X-Hub-Signature-256": "sha256=" + sign(SECRET, b'{"ref": "refs/heads/evil"}')}
    assert webhook.verify(SECRET, headers, BODY) is None


def test_github_signature_garbage_rejected() -> None:
    assert webhook.verify(SECRET, {"X-Hub-Signature-256": "sha256=deadbeef"}, BODY) is None
    assert webhook.verify(SECRET, {"X-Hub-Signature-256": ""}, BODY) is None


def test_signature_without_sha256_prefix() -> None:
    digest = sign(SECRET, BODY)
    # A bare hex digest is taken as if "sha256=" were in front of it: only the right one passes.
    assert webhook.verify(SECRET, {"X-Hub-Signature-256": digest}, BODY) == "github"
    assert webhook.verify(SECRET, {"X-Pointsman-Signature-256": digest}, BODY) == "generic"
    assert webhook.verify(SECRET, {"X-Hub-Signature-256": sign("nope", BODY)}, BODY) is None
    # Another algorithm's prefix is not sha256.
    assert webhook.verify(SECRET, {"X-Hub-Signature-256": "sha1=" + digest}, BODY) is None


def test_empty_secret_rejects_everything() -> None:
    assert webhook.verify("", {"X-Hub-Signature-256": "sha256=" + sign("", BODY)}, BODY) is None
    assert webhook.verify("", {"X-Gitlab-Token": ""}, BODY) is None
    assert webhook.verify("", {"X-Pointsman-Signature-256": "sha256=" + sign("", BODY)}, BODY) is None


def test_gitlab_token() -> None:
    assert webhook.verify(SECRET, {"X-Gitlab-Token": SECRET}, BODY) == "gitlab"
    assert webhook.verify(SECRET, {"X-Gitlab-Token": SECRET + "x"}, BODY) is None
    assert webhook.verify(SECRET, {"X-Gitlab-Token": ""}, BODY) is None
    # The token is compared, not an HMAC of the body.
    assert webhook.verify(SECRET, {"X-Gitlab-Token": sign(SECRET, BODY)}, BODY) is None


def test_generic_signature() -> None:
    assert webhook.verify(SECRET, {"X-Pointsman-Signature-256": "sha256=" + sign(SECRET, BODY)}, BODY) == "generic"
    assert webhook.verify(SECRET, {"X-Pointsman-Signature-256": "sha256=" + sign(SECRET, BODY + b" ")}, BODY) is None


@pytest.mark.parametrize(
    "name, value, kind",
    [
        ("x-hub-signature-256", "sha256=" + sign(SECRET, BODY), "github"),
        ("X-HUB-SIGNATURE-256", "sha256=" + sign(SECRET, BODY), "github"),
        ("x-gitlab-token", SECRET, "gitlab"),
        ("X-GITLAB-TOKEN", SECRET, "gitlab"),
        ("x-pointsman-signature-256", "sha256=" + sign(SECRET, BODY), "generic"),
    ],
)
def test_header_names_are_case_insensitive(name: str, value: str, kind: str) -> None:
    assert webhook.verify(SECRET, {name: value}, BODY) == kind


def test_no_signature_header_rejected() -> None:
    assert webhook.verify(SECRET, {}, BODY) is None
    assert webhook.verify(SECRET, {"Content-Type": "application/json", "X-GitHub-Event": "push"}, BODY) is None


def test_a_bad_github_signature_is_not_rescued_by_another_header() -> None:
    headers = {"X-Hub-Signature-256": "sha256=" + sign("wrong", BODY), "X-Gitlab-Token": SECRET}
    assert webhook.verify(SECRET, headers, BODY) is None


@pytest.mark.parametrize("header", ["X-Hub-Signature-256", "X-Pointsman-Signature-256"])
def test_non_ascii_signature_is_rejected_not_raised(header: str) -> None:
    assert webhook.verify(SECRET, {header: "sha256=\u00e9\u00e9"}, BODY) is None


# =========================================================================== webhook.pushed_branch


def test_pushed_branch_github_payload() -> None:
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": "1" * 40, "repository": {"full_name": "o/r"}})
    assert webhook.pushed_branch(body.encode()) == "main"


def test_pushed_branch_gitlab_payload() -> None:
    body = json.dumps({"object_kind": "push", "ref": "refs/heads/release/2024", "checkout_sha": "1" * 40})
    assert webhook.pushed_branch(body.encode()) == "release/2024"


@pytest.mark.parametrize(
    "body",
    [
        b'{"ref": "refs/tags/v1.0"}',
        b'{"ref": "main"}',
        b'{"zen": "ping"}',
        b'{"ref": 42}',
        b"[1, 2]",
        b"",
        b"not json",
        b'{"ref": ',
        b"\xff\xfe",
    ],
)
def test_pushed_branch_none(body: bytes) -> None:
    assert webhook.pushed_branch(body) is None


# =========================================================================== settings


def test_defaults() -> None:
    s = RunSettings(repo="https://example.invalid/r.git")
    assert s.branch == "main"
    assert s.path == "desired_state"
    assert s.interval == 60.0
    assert s.mode is Mode.APPLY
    assert s.prune is False
    assert s.listen == "127.0.0.1:8080"
    assert s.listen_address == ("127.0.0.1", 8080)
    assert s.webhook_secret is None and s.git_token is None


def test_environment_twins_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTSMAN_REPO", "/srv/estate")
    monkeypatch.setenv("POINTSMAN_BRANCH", "prod")
    monkeypatch.setenv("POINTSMAN_INTERVAL", "7.5")
    monkeypatch.setenv("POINTSMAN_MODE", "detect")
    monkeypatch.setenv("POINTSMAN_PRUNE", "true")
    monkeypatch.setenv("POINTSMAN_LISTEN", "0.0.0.0:9123")
    s = RunSettings()
    assert s.repo == "/srv/estate"
    assert s.branch == "prod"
    assert s.interval == 7.5
    assert s.mode is Mode.DETECT
    assert s.prune is True
    assert s.listen_address == ("0.0.0.0", 9123)


def test_explicit_values_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTSMAN_REPO", "/srv/estate")
    monkeypatch.setenv("POINTSMAN_BRANCH", "prod")
    monkeypatch.setenv("POINTSMAN_INTERVAL", "7.5")
    monkeypatch.setenv("POINTSMAN_MODE", "detect")
    monkeypatch.setenv("POINTSMAN_PRUNE", "true")
    s = RunSettings(repo="/other", branch="staging", interval=3, mode="apply", prune=False)
    assert (s.repo, s.branch, s.interval, s.mode, s.prune) == ("/other", "staging", 3.0, Mode.APPLY, False)


@pytest.mark.parametrize("listen", ["nope", "127.0.0.1", "127.0.0.1:", ":http", "host:80x"])
def test_bad_listen_rejected(listen: str) -> None:
    with pytest.raises(ValidationError) as info:
        RunSettings(repo="x", listen=listen)
    assert "listen must be HOST:PORT" in str(info.value)
    assert info.value.errors()[0]["loc"] == ("listen",)


def test_listen_port_out_of_range_rejected() -> None:
    with pytest.raises(ValidationError):
        RunSettings(repo="x", listen="127.0.0.1:99999")


def test_listen_ipv6_address() -> None:
    assert RunSettings(repo="x", listen="[::1]:8081").listen_address == ("::1", 8081)
    assert RunSettings(repo="x", listen=":8082").listen_address == ("0.0.0.0", 8082)


def test_secret_files_are_read_and_never_printed(tmp_path: Path) -> None:
    hook_file = tmp_path / "hook"
    hook_file.write_text("hook-secret-123\n", encoding="utf-8")
    token_file = tmp_path / "token"
    token_file.write_text("ghp_tokentokentoken\n", encoding="utf-8")
    s = RunSettings(repo="https://example.invalid/r.git", webhook_secret_file=hook_file, git_token_file=token_file)
    assert isinstance(s.webhook_secret, SecretStr) and isinstance(s.git_token, SecretStr)
    assert s.webhook_secret.get_secret_value() == "hook-secret-123"
    assert s.git_token.get_secret_value() == "ghp_tokentokentoken"
    for text in (repr(s), str(s), s.model_dump_json(), json.dumps(s.model_dump(mode="json"))):
        assert "hook-secret-123" not in text
        assert "ghp_tokentokentoken" not in text
        assert "tokentoken" not in text


def test_secret_files_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook_file = tmp_path / "hook"
    hook_file.write_text("  from-env-file  \n", encoding="utf-8")
    monkeypatch.setenv("POINTSMAN_WEBHOOK_SECRET_FILE", str(hook_file))
    s = RunSettings(repo="x")
    assert s.webhook_secret is not None
    assert s.webhook_secret.get_secret_value() == "from-env-file"
    assert "from-env-file" not in repr(s)


def test_secret_value_wins_over_its_file(tmp_path: Path) -> None:
    hook_file = tmp_path / "hook"
    hook_file.write_text("file-value\n", encoding="utf-8")
    s = RunSettings(repo="x", webhook_secret="direct-value", webhook_secret_file=hook_file)
    assert s.webhook_secret is not None and s.webhook_secret.get_secret_value() == "direct-value"
    assert "direct-value" not in repr(s) + s.model_dump_json()


@pytest.mark.parametrize("name", ["webhook_secret_file", "git_token_file"])
def test_unreadable_secret_file_is_a_validation_error(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "does-not-exist"
    with pytest.raises(ValidationError) as info:
        RunSettings(repo="x", **{name: missing})
    message = str(info.value)
    assert f"cannot read POINTSMAN_{name.upper()} {missing}" in message
    assert "No such file or directory" in message


def test_secret_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        RunSettings(repo="x", git_token_file=tmp_path)
    assert f"cannot read POINTSMAN_GIT_TOKEN_FILE {tmp_path}" in str(info.value)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://user:supersecret@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://x-access-token:ghp_abc@git.example.com:8443/org/repo.git", "https://git.example.com:8443/org/repo.git"),
        ("https://ghp_onlytoken@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/estate", "/srv/git/estate"),
        ("./relative/estate", "./relative/estate"),
        ("git://127.0.0.1:9418/estate.git", "git://127.0.0.1:9418/estate.git"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_keeps_ipv6_brackets() -> None:
    assert redact_url("https://u:p@[::1]:8443/x.git") == "https://[::1]:8443/x.git"


def test_redact_url_never_raises_and_hides_password_with_bad_port() -> None:
    shown = redact_url("https://user:supersecret@host:abc/x.git")
    assert "supersecret" not in shown


def test_repo_display_is_redacted() -> None:
    s = RunSettings(repo="https://user:supersecret@github.com/org/repo.git")
    assert s.repo_display == "https://github.com/org/repo.git"
    assert RunSettings(repo="/srv/estate").repo_display == "/srv/estate"


# =========================================================================== CLI settings errors


def err_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_cli_run_without_repo(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main(["run"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err_lines(err) == ["error: --repo: required: pass --repo or set POINTSMAN_REPO"]


def test_cli_reconcile_without_repo(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main(["reconcile", "--once"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err_lines(err) == ["error: --repo: required: pass --repo or set POINTSMAN_REPO"]


def test_cli_run_bad_listen(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main(["run", "--repo", "x", "--listen", "nope"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: --listen: ")
    assert "'nope'" in lines[0]
    assert "Traceback" not in err


def test_cli_bad_listen_from_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTSMAN_LISTEN", "nowhere")
    capsys.readouterr()
    code = main(["run", "--repo", "x"])
    _, err = capsys.readouterr()
    assert code == 1
    lines = err_lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: --listen: ") and "'nowhere'" in lines[0], err


def test_cli_unreadable_secret_file_from_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no-secret"
    monkeypatch.setenv("POINTSMAN_WEBHOOK_SECRET_FILE", str(missing))
    capsys.readouterr()
    code = main(["run", "--repo", "x"])
    _, err = capsys.readouterr()
    assert code == 1
    lines = err_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and f"cannot read POINTSMAN_WEBHOOK_SECRET_FILE {missing}" in lines[0]


# =========================================================================== history


def finished(history: History, n: int, **fields: object) -> RunRecord:
    record = history.start(RunRecord(started=1_700_000_000.0 + n, trigger=f"t{n}", mode="apply"))
    record.finished = record.started + 0.5
    record.status = str(fields.get("status", "in_sync"))
    record.commit_sha = fields.get("commit_sha", f"{n:040x}")  # type: ignore[assignment]
    history.finish(record)
    return record


def test_history_round_trip(tmp_path: Path) -> None:
    history = History(tmp_path / "h" / "history.sqlite3")
    try:
        record = history.start(RunRecord(started=1_700_000_000.25, trigger="webhook:github", mode="detect"))
        assert record.id == 1
        [running] = history.recent()
        assert (running.id, running.status, running.finished, running.trigger, running.mode) == (1, "running", None, "webhook:github", "detect")
        record.finished = 1_700_000_003.75
        record.status = "drift"
        record.commit_sha = "a" * 40
        record.head_sha = "b" * 40
        record.drift = [{"resource": "lambda_alias/getreport/prod", "status": "modified", "changes": [{"field": "version", "live": "2", "desired": "1"}]}]
        record.actions = [{"resource": "lambda_alias/getreport/prod", "operation": "update", "reason": "version 2 -> 1", "outcome": "planned"}]
        record.api_calls = {"lambda.GetAlias": 3, "apigateway.GetStages": 2}
        record.error = "something to say"
        record.warnings = ["getreport: alias prod serves version 2, whose environment differs from the declared one (TABLE: (none) -> t)"]
        history.finish(record)
        [back] = history.recent()
        assert back == record
        assert back.as_dict() == {**record.as_dict(), "drift_count": 1}
        assert back.drift_count == 1
        assert back.drift[0]["changes"][0]["live"] == "2"
        assert back.api_calls == {"lambda.GetAlias": 3, "apigateway.GetStages": 2}
        assert back.warnings == record.warnings and back.as_json()["warnings"] == record.warnings
    finally:
        history.close()


def test_history_recent_newest_first_and_limit(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    try:
        for n in range(1, 5):
            finished(history, n)
        assert [r.trigger for r in history.recent()] == ["t4", "t3", "t2", "t1"]
        assert [r.id for r in history.recent(limit=2)] == [4, 3]
    finally:
        history.close()


def test_history_retention(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3", keep=3)
    try:
        for n in range(1, 6):
            finished(history, n)
        runs = history.recent(limit=100)
        assert [r.id for r in runs] == [5, 4, 3]
        assert [r.trigger for r in runs] == ["t5", "t4", "t3"]
    finally:
        history.close()


def test_history_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    first = History(path)
    finished(first, 1, commit_sha="c" * 40, status="applied")
    first.close()
    second = History(path)
    try:
        [run] = second.recent()
        assert (run.id, run.status, run.commit_sha, run.trigger) == (1, "applied", "c" * 40, "t1")
        assert second.last_good_commit() == "c" * 40
        # ids keep counting after a restart
        assert finished(second, 2).id == 2
    finally:
        second.close()


def test_last_good_commit(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    try:
        assert history.last_good_commit() is None
        finished(history, 1, commit_sha="1" * 40)
        finished(history, 2, commit_sha="2" * 40)
        finished(history, 3, commit_sha=None, status="error")  # git unreachable: no commit
        history.start(RunRecord(started=time.time(), trigger="running", mode="apply"))  # still running
        assert history.last_good_commit() == "2" * 40
    finally:
        history.close()


def test_mark_unfinished_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    crashed = History(path)
    finished(crashed, 1)
    crashed.start(RunRecord(started=time.time(), trigger="schedule", mode="apply"))
    crashed.close()  # the process died mid-run
    history = History(path)
    try:
        assert history.mark_unfinished_as_interrupted() == 1
        newest, oldest = history.recent()
        assert newest.status == "interrupted"
        assert newest.error == "process ended during the run"
        assert oldest.status == "in_sync" and oldest.error is None
        assert history.mark_unfinished_as_interrupted() == 0
    finally:
        history.close()
