"""History folding: identical consecutive runs are one entry (count + time range), the
--resource filter, ISO times in JSON, the schema migration of older databases, retention,
and what `pointsman history` prints for all of it."""

from __future__ import annotations

import copy
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.cli.main import main
from controller.loop.history import History, HistoryError, RunRecord, iso

T0 = datetime(2026, 12, 2, 18, 40, 12, tzinfo=UTC).timestamp()
SHA = "a" * 40

DRIFT: list[dict[str, Any]] = [
    {
        "resource": "lambda_alias/getProducts/prod",
        "kind": "lambda_alias",
        "status": "modified",
        "changes": [{"field": "version", "live": "1", "desired": "3"}],
    },
    {
        "resource": "rest_stage/products-v1/prod",
        "kind": "rest_stage",
        "status": "modified",
        "changes": [{"field": "variables", "live": {"alias": "blue"}, "desired": None}],
    },
]
OPERATIONS = [
    ("lambda.UpdateAlias", "lambda_alias/getProducts/prod"),
    ("lambda.AddPermission", "lambda_permission/getProducts/prod/products-v1"),
    ("apigateway.UpdateStage", "rest_stage/products-v1/prod"),
    ("apigateway.CreateDeployment", "rest_deployment/products-v1"),
    ("lambda.PublishVersion", "lambda_version/getProducts/sha256:abc"),
    ("apigateway.PutMethod", "rest_method/products-v1/GET /products"),
    ("apigateway.CreateBasePathMapping", "base_path_mapping/api.example.com/products"),
]


def actions(outcome: str = "planned") -> list[dict[str, Any]]:
    return [{"resource": r, "operation": op, "reason": "differs", "outcome": outcome} for op, r in OPERATIONS]


def run(
    history: History,
    started: float,
    *,
    mode: str = "detect",
    commit: str | None = SHA,
    status: str = "drift",
    drift: list[dict[str, Any]] | None = None,
    acts: list[dict[str, Any]] | None = None,
    error: str | None = None,
    trigger: str = "schedule",
    took: float = 0.4,
    warnings: list[str] | None = None,
) -> RunRecord:
    """One run as the runner records it: start, then finish with its results."""
    record = history.start(RunRecord(started=started, trigger=trigger, mode=mode))
    record.finished = started + took
    record.commit_sha = record.head_sha = commit
    record.status = status
    record.drift = copy.deepcopy(DRIFT if drift is None else drift)
    record.actions = actions() if acts is None else acts
    record.api_calls = {"lambda.GetAlias": 3}
    record.error = error
    record.warnings = list(warnings or [])
    history.finish(record)
    return record


@pytest.fixture
def history(tmp_path: Path):
    h = History(tmp_path / "state" / "history.sqlite3")
    yield h
    h.close()


def cli(capsys: pytest.CaptureFixture[str], state: Path, *extra: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main(["history", "--state-dir", str(state), *extra])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# ------------------------------------------------------------------ folding


def test_twenty_identical_detect_runs_are_one_entry(history: History) -> None:
    first = run(history, T0)
    first_id = first.id
    assert (first.count, first.last_started, first.triggers) == (1, None, ["schedule"])
    for n in range(1, 20):
        record = run(history, T0 + 60 * n, trigger="event" if n == 5 else "schedule")
        # the caller (status page, /runs/<id>) is pointed at the folded entry
        assert record.id == first_id
        assert record.count == n + 1
        assert (record.last_started, record.last_finished) == (T0 + 60 * n, T0 + 60 * n + 0.4)
    [entry] = history.recent(limit=100)
    assert entry.id == first_id
    assert entry.count == 20
    assert entry.started == T0 and entry.finished == T0 + 0.4
    assert entry.last_started == T0 + 19 * 60 and entry.last_finished == T0 + 19 * 60 + 0.4
    assert entry.triggers == ["schedule", "event"]
    assert entry.drift == DRIFT and entry.actions == actions()
    assert first_id is not None and history.get(first_id) == entry
    # only one row is left in the database
    assert history._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_history_prints_a_folded_entry_in_a_handful_of_lines(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(20):
        run(history, T0 + 60 * n)
    code, lines, err = cli(capsys, tmp_path / "state")
    assert code == 0 and err == ""
    assert len(lines) <= 8, lines  # not 20 x (1 + 7 actions) = 160+
    head = lines[0]
    assert head.startswith("#1 2026-12-02 18:40:12Z") and "drift  " not in head[:10]
    assert "x20 (18:40:12\u201318:59:12Z)" in head
    assert "2 drifted resources, 7 actions" in head
    text = "\n".join(lines)
    assert "~ lambda_alias/getProducts/prod  [modified]" in text
    assert 'version: "1" -> "3"' in text  # strings as JSON, like the plan prints them
    assert 'variables: {"alias": "blue"} -> (none)' in text  # dicts as JSON, None as (none)
    assert "7 actions planned, not applied" in text
    assert "lambda.UpdateAlias" not in text  # no full action list for a detect run


def test_single_run_has_no_range_and_shows_error(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(history, T0, error="newest commit bbbb is invalid")
    code, lines, _ = cli(capsys, tmp_path / "state")
    assert code == 0
    assert " x1" not in lines[0] and "\u2013" not in lines[0]
    assert lines[-1] == "      error: newest commit bbbb is invalid"


def test_range_over_midnight_shows_dates(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late = datetime(2026, 12, 2, 23, 59, 0, tzinfo=UTC).timestamp()
    run(history, late)
    run(history, late + 120)
    _, lines, _ = cli(capsys, tmp_path / "state")
    assert "x2 (2026-12-02 23:59:00\u20132026-12-03 00:01:00Z)" in lines[0]


@pytest.mark.parametrize(
    "change",
    [
        {"drift": [{**DRIFT[0], "changes": [{"field": "version", "live": "2", "desired": "3"}]}, DRIFT[1]]},  # a field change
        {"drift": DRIFT[:1]},  # a resource fewer
        {"drift": [{**DRIFT[0], "status": "missing"}, DRIFT[1]]},  # drift status
        {"drift": [{**DRIFT[0], "kind": "lambda_version"}, DRIFT[1]]},  # kind
        {"commit": "b" * 40},
        {"status": "error", "error": "AWS said no"},
        {"error": "newest commit bbbb is invalid"},
        {"mode": "apply"},
        {"acts": actions()[:3]},
        {"warnings": ["getProductsV2: alias prod serves version 2, whose environment differs from the declared one"]},
    ],
    ids=["field-change", "fewer-resources", "drift-status", "kind", "commit", "status", "error", "mode", "actions", "warnings"],
)
def test_a_difference_breaks_the_fold(history: History, change: dict[str, Any]) -> None:
    run(history, T0)
    run(history, T0 + 60)
    other = run(history, T0 + 120, **change)
    assert other.count == 1
    again = run(history, T0 + 180)  # back to the first state: a new entry, not the old one
    assert again.id != 1 and again.count == 1
    assert [r.count for r in history.recent()] == [1, 1, 2]
    assert [r.id for r in history.recent()] == [again.id, other.id, 1]


def test_applied_run_breaks_the_fold_and_is_never_folded(history: History) -> None:
    run(history, T0)
    run(history, T0 + 60)
    applied = [run(history, T0 + 120 + n, mode="apply", status="applied", acts=actions("succeeded")) for n in range(2)]
    assert [r.count for r in applied] == [1, 1]
    assert applied[0].id != applied[1].id
    failed = [run(history, T0 + 200 + n, mode="apply", status="failed", acts=actions("failed"), error="x: boom") for n in range(2)]
    assert [r.count for r in failed] == [1, 1]
    after = run(history, T0 + 300)
    assert after.count == 1  # not folded over the applied runs into the first entry
    assert [r.count for r in history.recent()] == [1, 1, 1, 1, 1, 2]


def test_one_applied_action_among_planned_ones_is_not_folded(history: History) -> None:
    mixed = actions()
    mixed[0]["outcome"] = "succeeded"
    a = run(history, T0, mode="apply", status="interrupted", acts=mixed, error="stopped on request")
    b = run(history, T0 + 1, mode="apply", status="interrupted", acts=copy.deepcopy(mixed), error="stopped on request")
    assert (a.count, b.count) == (1, 1) and a.id != b.id


def test_in_sync_runs_fold_too(history: History) -> None:
    for n in range(5):
        run(history, T0 + n, mode="apply", status="in_sync", drift=[], acts=[])
    [entry] = history.recent()
    assert entry.count == 5 and entry.status == "in_sync"


def test_interrupted_previous_run_breaks_the_fold(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    crashed = History(path)
    run(crashed, T0)
    crashed.start(RunRecord(started=T0 + 60, trigger="schedule", mode="detect"))  # the process dies here
    crashed.close()
    history = History(path)
    try:
        assert history.mark_unfinished_as_interrupted() == 1
        after = run(history, T0 + 120)
        assert after.count == 1
        assert [(r.status, r.count) for r in history.recent()] == [("drift", 1), ("interrupted", 1), ("drift", 1)]
    finally:
        history.close()


def test_unfinished_previous_entry_is_not_folded_into(history: History) -> None:
    first = run(history, T0)
    history._db.execute("UPDATE runs SET finished=NULL WHERE id=?", (first.id,))
    assert run(history, T0 + 60).count == 1
    assert len(history.recent()) == 2


def test_last_good_commit_after_folding(history: History) -> None:
    for n in range(3):
        run(history, T0 + n)
    assert history.last_good_commit() == SHA


# ------------------------------------------------------------------ --resource, get()


def test_recent_filters_by_resource(history: History) -> None:
    alias = run(history, T0, drift=DRIFT[:1], acts=actions()[:1])
    stage = run(history, T0 + 1, drift=DRIFT[1:], acts=[])
    version = run(history, T0 + 2, drift=[], acts=[actions()[4]])  # named by an action only
    none = run(history, T0 + 3, status="in_sync", drift=[], acts=[])

    def ids(resource: str) -> list[int | None]:
        return [r.id for r in history.recent(resource=resource)]

    assert ids("lambda_alias/getProducts/prod") == [alias.id]  # exact id
    assert ids("lambda_alias/getProducts") == [alias.id]  # prefix up to '/'
    assert ids("lambda_alias") == [alias.id]
    assert ids("getProducts/prod") == [alias.id]  # the key, without the kind
    assert ids("products-v1/prod") == [stage.id]
    assert ids("getProducts") == [version.id, alias.id]  # alias key and version key; newest first
    assert ids("lambda_version/getProducts/sha256") == [version.id]  # prefix up to ':'
    assert ids("getProducts/sha256:abc") == [version.id]
    assert ids("getProd") == []  # a prefix must end at ':' or '/'
    assert ids("lambda_alias/getProducts/pro") == []
    assert ids("LAMBDA_ALIAS/getProducts/prod") == []  # ids are case-sensitive
    assert ids("prod") == []
    assert none.id not in ids("getProducts")
    assert [r.id for r in history.recent(limit=1, resource="getProducts")] == [version.id]


def test_resource_filter_reads_beyond_the_newest_entries(history: History) -> None:
    old = run(history, T0, drift=DRIFT[:1], acts=[])
    # newer runs whose JSON contains the text "getProducts" but name another resource
    lookalike = [{**DRIFT[0], "resource": "lambda_alias/getProductsV2/prod"}]
    for n in range(1, 60):
        run(history, T0 + n, commit=f"{n:040x}", drift=lookalike, acts=[])
    assert [r.id for r in history.recent(limit=5, resource="getProducts")] == [old.id]
    assert len(history.recent(limit=100, resource="getProductsV2")) == 59


def test_get(history: History) -> None:
    first = run(history, T0)
    second = run(history, T0 + 60)  # folded: its own row is gone
    assert second.id == first.id
    got = history.get(first.id or 0)
    assert got is not None and got.count == 2
    assert history.get(first.id or 0) == history.recent()[0]
    assert history.get(9999) is None
    other = run(history, T0 + 120, commit="c" * 40)
    assert other.id is not None and other.id > 2  # the folded run's id was used, and not reused
    assert history.get(2) is None


def test_cli_resource_filter(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(history, T0, drift=DRIFT[:1], acts=[])
    run(history, T0 + 1, commit="b" * 40, drift=DRIFT[1:], acts=[])
    code, lines, _ = cli(capsys, tmp_path / "state", "--resource", "products-v1/prod")
    assert code == 0
    assert [line.split()[0] for line in lines if line.startswith("#")] == ["#2"]
    assert "rest_stage/products-v1/prod" in "\n".join(lines) and "getProducts" not in "\n".join(lines)
    code, lines, _ = cli(capsys, tmp_path / "state", "--resource", "nothing/here", "--format", "json")
    assert code == 0 and json.loads("\n".join(lines)) == []
    code, lines, _ = cli(capsys, tmp_path / "state", "--resource", "nothing/here")
    assert code == 0 and lines == ["no recorded runs name nothing/here"]
    code, lines, err = cli(capsys, tmp_path / "state", "--resource", " ")
    assert code == 1 and err.startswith("error: --resource")


# ------------------------------------------------------------------ JSON


def test_iso() -> None:
    assert iso(T0) == "2026-12-02T18:40:12Z"
    assert iso(T0 + 0.999) == "2026-12-02T18:40:12Z"
    assert iso(None) is None


def test_as_json(history: History) -> None:
    run(history, T0, took=1.23456)
    run(history, T0 + 60, took=2.0)
    [entry] = history.recent()
    out = entry.as_json()
    assert set(entry.as_dict()) <= set(out)
    assert out["started"] == "2026-12-02T18:40:12Z"
    assert out["finished"] == "2026-12-02T18:40:13Z"
    assert out["last_started"] == "2026-12-02T18:41:12Z"
    assert out["last_finished"] == "2026-12-02T18:41:14Z"
    assert out["duration_s"] == 1.23
    assert out["count"] == 2
    assert out["drift_count"] == 2 and out["drift"] == DRIFT and out["commit_sha"] == SHA
    assert out["triggers"] == ["schedule"]
    json.dumps(out)  # plain JSON, nothing that needs default=str

    running = RunRecord(started=T0, trigger="schedule", mode="detect")
    assert running.as_json()["finished"] is None and running.as_json()["duration_s"] is None
    assert running.as_json()["last_started"] is None and running.as_json()["count"] == 1


def test_as_dict_keeps_epoch_times(history: History) -> None:
    record = run(history, T0)
    out = record.as_dict()
    assert out["started"] == T0 and out["finished"] == T0 + 0.4 and out["drift_count"] == 2
    assert out["count"] == 1 and out["last_started"] is None


def test_cli_json_has_iso_times(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        run(history, T0 + 60 * n)
    code, lines, _ = cli(capsys, tmp_path / "state", "--format", "json")
    assert code == 0
    [entry] = json.loads("\n".join(lines))
    assert entry["started"] == "2026-12-02T18:40:12Z"
    assert entry["last_started"] == "2026-12-02T18:42:12Z"
    assert entry["count"] == 3 and entry["duration_s"] == 0.4 and entry["id"] == 1


# ------------------------------------------------------------------ text output of applied runs


def test_cli_lists_actions_when_something_was_applied(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    acts = actions("succeeded")
    acts[2] = {**acts[2], "outcome": "failed", "error": "TooManyRequests"}
    run(history, T0, mode="apply", status="failed", acts=acts, error="rest_stage/products-v1/prod: TooManyRequests")
    _, lines, _ = cli(capsys, tmp_path / "state")
    text = "\n".join(lines)
    assert "      succeeded lambda.UpdateAlias  lambda_alias/getProducts/prod" in text
    assert "      failed    apigateway.UpdateStage  rest_stage/products-v1/prod: TooManyRequests" in text
    assert "planned, not applied" not in text
    assert lines[-1] == "      error: rest_stage/products-v1/prod: TooManyRequests"


def test_cli_summarises_held_and_planned(history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    acts = actions()[:2] + [{"resource": "rest_stage/x/old", "operation": "apigateway.DeleteStage", "outcome": "held", "error": "held back: in use"}]
    run(history, T0, acts=acts)
    _, lines, _ = cli(capsys, tmp_path / "state")
    assert "      3 actions not applied (1 held, 2 planned)" in lines


def test_cli_empty_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    History(tmp_path / "state" / "history.sqlite3").close()
    code, lines, _ = cli(capsys, tmp_path / "state")
    assert (code, lines) == (0, ["no runs recorded yet"])
    code, lines, err = cli(capsys, tmp_path / "nowhere")
    assert code == 1 and err.startswith("error: no history at ")
    (tmp_path / "a-file").write_text("x")
    code, lines, err = cli(capsys, tmp_path / "a-file")
    assert code == 1 and "is not a directory" in err


# ------------------------------------------------------------------ migration, retention

OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    trigger TEXT NOT NULL,
    mode TEXT NOT NULL,
    commit_sha TEXT,
    head_sha TEXT,
    status TEXT NOT NULL,
    drift_count INTEGER NOT NULL DEFAULT 0,
    drift TEXT NOT NULL DEFAULT '[]',
    actions TEXT NOT NULL DEFAULT '[]',
    api_calls TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
"""


def old_database(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path))
    db.executescript(OLD_SCHEMA)
    db.execute(
        "INSERT INTO runs (started, finished, trigger, mode, commit_sha, head_sha, status, drift_count, drift, actions, api_calls, error)"
        " VALUES (?, ?, 'webhook:github', 'detect', ?, ?, 'drift', 2, ?, ?, '{}', NULL)",
        (T0, T0 + 0.4, SHA, SHA, json.dumps(DRIFT), json.dumps(actions())),
    )
    db.commit()
    db.close()


def test_migration_of_an_old_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state" / "history.sqlite3"
    old_database(path)
    history = History(path)
    try:
        [old] = history.recent()
        assert (old.id, old.count, old.last_started, old.last_finished) == (1, 1, None, None)
        assert old.triggers == ["webhook:github"] and old.drift == DRIFT and old.warnings == []
        # a new identical run folds into the old row
        new = run(history, T0 + 60)
        assert (new.id, new.count) == (1, 2)
        [entry] = history.recent()
        assert entry.count == 2 and entry.triggers == ["webhook:github", "schedule"]
        different = run(history, T0 + 120, commit="c" * 40)
        assert different.count == 1 and different.id == 3
    finally:
        history.close()
    columns = {row[1] for row in sqlite3.connect(str(path)).execute("PRAGMA table_info(runs)")}
    assert {"count", "last_started", "last_finished", "triggers", "warnings"} <= columns
    History(path).close()  # opening a migrated database again changes nothing
    code, lines, _ = cli(capsys, tmp_path / "state")
    assert code == 0 and "x2 (18:40:12\u201318:41:12Z)" in "\n".join(lines)


def test_old_database_opened_by_the_cli_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_database(tmp_path / "state" / "history.sqlite3")
    code, lines, _ = cli(capsys, tmp_path / "state", "--format", "json")
    assert code == 0
    [entry] = json.loads("\n".join(lines))
    assert entry["count"] == 1 and entry["started"] == "2026-12-02T18:40:12Z" and entry["last_started"] is None


def test_foreign_schema_is_still_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state" / "history.sqlite3"
    path.parent.mkdir()
    db = sqlite3.connect(str(path))
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, note TEXT)")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="table runs has no column started"):
        History(path)
    # and it was left as it was: no column added to somebody else's table
    assert {row[1] for row in sqlite3.connect(str(path)).execute("PRAGMA table_info(runs)")} == {"id", "note"}
    code, _, err = cli(capsys, tmp_path / "state")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "is not a Pointsman history database" in err


def test_retention_counts_entries(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3", keep=3)
    try:
        for n in range(10):  # one entry of 10 runs
            run(history, T0 + n)
        for n in range(2):
            run(history, T0 + 100 + n, commit=f"{n + 1:040x}")
        # 12 runs, 3 entries: all kept
        assert [r.count for r in history.recent(limit=100)] == [1, 1, 10]
        run(history, T0 + 200, commit="f" * 40)
        runs = history.recent(limit=100)
        assert [r.count for r in runs] == [1, 1, 1]
        assert [r.commit_sha for r in runs] == ["f" * 40, f"{2:040x}", f"{1:040x}"]
        for n in range(5):  # folding into the newest entry drops nothing more
            run(history, T0 + 300 + n, commit="f" * 40)
        assert [r.count for r in history.recent(limit=100)] == [6, 1, 1]
    finally:
        history.close()
