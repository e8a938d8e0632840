"""Reconcile history in SQLite under the state dir: kept across restarts, bounded retention.

Identical consecutive runs (a detect-mode controller reporting the same drift every tick)
are folded at storage time into one entry with a count and a time range, so the history
keeps what changed instead of the same run a thousand times.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
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
    error TEXT,
    count INTEGER NOT NULL DEFAULT 1,
    last_started REAL,
    last_finished REAL,
    triggers TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    rollouts TEXT NOT NULL DEFAULT '[]'
);
-- Each alias's rollout as the last run left it (controller.rollout.RolloutRecord as JSON): a
-- restarted controller resumes every rollout at the step it was in.
CREATE TABLE IF NOT EXISTS rollouts (
    alias TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    updated REAL NOT NULL
);
"""

# Columns added after the first schema: ALTER TABLE adds them to an older database.
ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("count", "INTEGER NOT NULL DEFAULT 1"),
    ("last_started", "REAL"),
    ("last_finished", "REAL"),
    ("triggers", "TEXT"),
    ("warnings", "TEXT NOT NULL DEFAULT '[]'"),
    ("rollouts", "TEXT NOT NULL DEFAULT '[]'"),
)

# Action outcomes that mean the run changed (or tried to change) AWS: such a run is never folded.
APPLIED_OUTCOMES = frozenset({"succeeded", "failed"})


# Every time Pointsman shows or serves (/api/status, /api/history, notifications) is this form.
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso(ts: float | None) -> str | None:
    """An epoch time as ISO-8601 UTC to the second (``2026-12-02T18:40:12Z``); None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime(ISO_FORMAT)


def parse_iso(text: Any) -> float | None:
    """The epoch time of an ``iso`` string; None for None or anything else."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, ISO_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass
class RunRecord:
    started: float
    trigger: str
    mode: str
    status: str = "running"  # running | in_sync | drift | applied | failed | invalid | error | interrupted
    finished: float | None = None
    commit_sha: str | None = None  # the commit whose spec was the desired state
    head_sha: str | None = None  # the newest commit fetched (may be invalid)
    drift: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # each with its outcome
    api_calls: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    # What the plan cannot fix but someone should know (not drift): kept with the run, not only printed.
    warnings: list[str] = field(default_factory=list)
    id: int | None = None
    # Folding: identical consecutive runs are one entry. ``started``/``finished`` are the first
    # run's, ``last_started``/``last_finished`` the newest one's (None while the entry is one run).
    count: int = 1
    last_started: float | None = None
    last_finished: float | None = None
    triggers: list[str] = field(default_factory=list)  # the distinct triggers of the runs folded in
    # The rollouts the run drove: each alias's step, the line people read, the gate readings.
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    # The target whose run this is (a spec split into targets; not stored: each target has a history of its own).
    target: str | None = None
    # Another replica's run of the target (from the shared state): that replica and its run's id
    # there (``id`` is None: this replica's history has no such run).
    replica: str | None = None
    replica_run: int | None = None

    @property
    def drift_count(self) -> int:
        return len(self.drift)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drift_count"] = self.drift_count
        for key in ("target", "replica", "replica_run"):
            if out[key] is None:
                del out[key]
        return out

    def as_json(self) -> dict[str, Any]:
        """``as_dict`` with times as ISO-8601 UTC strings, plus ``duration_s`` (of the first run)."""
        out = self.as_dict()
        for key in ("started", "finished", "last_started", "last_finished"):
            out[key] = iso(out[key])
        out["duration_s"] = round(self.finished - self.started, 2) if self.finished is not None else None
        out["count"] = self.count
        return out


COLUMNS = ("id", "started", "finished", "trigger", "mode", "commit_sha", "head_sha", "status", "drift_count", "drift", "actions", "api_calls", "error")

_SELECT = (
    "SELECT id, started, finished, trigger, mode, commit_sha, head_sha, status, drift, actions, api_calls, error,"
    " count, last_started, last_finished, triggers, warnings, rollouts FROM runs"
)


class HistoryError(Exception):
    """The history database cannot be used (not SQLite, another schema, unopenable); one line."""


def _record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        id=row[0],
        started=row[1],
        finished=row[2],
        trigger=row[3],
        mode=row[4],
        commit_sha=row[5],
        head_sha=row[6],
        status=row[7],
        drift=json.loads(row[8]),
        actions=json.loads(row[9]),
        api_calls=json.loads(row[10]),
        error=row[11],
        count=row[12] if row[12] is not None else 1,
        last_started=row[13],
        last_finished=row[14],
        triggers=json.loads(row[15]) if row[15] else [row[3]],
        warnings=json.loads(row[16]) if row[16] else [],
        rollouts=json.loads(row[17]) if row[17] else [],
    )


def _fold_key(
    mode: str,
    commit_sha: str | None,
    status: str,
    drift: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    error: str | None,
    warnings: list[str],
    rollouts: list[dict[str, Any]] | None = None,
) -> str | None:
    """What two runs must share to be folded; None for a run that is never folded (one that
    changed AWS, or moved a rollout: the polls of one step fold, each step stays its own)."""
    if status == "running" or any(a.get("outcome") in APPLIED_OUTCOMES for a in actions):
        return None
    if any(r.get("event") for r in rollouts or []):
        return None
    steps = sorted(json.dumps([r.get("alias"), r.get("status"), r.get("step")]) for r in rollouts or [])
    drifts = sorted(json.dumps([d.get("resource"), d.get("kind"), d.get("status"), d.get("changes") or []], sort_keys=True) for d in drift)
    planned = sorted(json.dumps([a.get("resource"), a.get("operation"), a.get("outcome")]) for a in actions)
    return json.dumps([mode, commit_sha, status, error, drifts, planned, sorted(warnings), steps])


def _names(resource_id: str, query: str) -> bool:
    """Does ``resource_id`` (``kind/key``) name ``query``: the id or its key, exactly or as a
    prefix followed by ``:`` or ``/`` (``lambda_alias/getProducts`` and ``getProducts`` both
    name ``lambda_alias/getProducts/prod``)?"""
    candidates = [resource_id]
    if "/" in resource_id:
        candidates.append(resource_id.split("/", 1)[1])
    return any(c == query or c.startswith(query + ":") or c.startswith(query + "/") for c in candidates)


def names_resource(record: RunRecord, resource: str) -> bool:
    """Does the run's drift or one of its actions name ``resource`` (see ``History.recent``)?"""
    return any(
        isinstance(entry, dict) and isinstance(entry.get("resource"), str) and _names(entry["resource"], resource) for entry in [*record.drift, *record.actions]
    )


class History:
    def __init__(self, path: Path, keep: int = 1000) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create {path.parent} for the history database: {exc.strerror or exc}") from None
        self.path = path
        self.keep = keep
        self._lock = threading.Lock()
        if path.exists() and not path.is_file():
            raise HistoryError(f"{path} is not a Pointsman history database (not a file)")
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open history database {path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise HistoryError(f"{path} is not a Pointsman history database ({exc})") from None
            raise HistoryError(f"cannot use history database {path}: {exc}") from None
        missing = [c for c in COLUMNS if c not in have]
        if missing:
            self._db.close()
            raise HistoryError(f"{path} is not a Pointsman history database (table runs has no column {', '.join(missing)})")
        self._migrate(have)

    def _migrate(self, have: set[str]) -> None:
        """A database made before folding: add the new columns (old rows read as one run each)."""
        for name, decl in ADDED_COLUMNS:
            if name in have:
                continue
            try:
                self._db.execute(f"ALTER TABLE runs ADD COLUMN {name} {decl}")
            except sqlite3.DatabaseError as exc:
                if "duplicate column" in str(exc):  # another process migrated it meanwhile
                    continue
                self._db.close()
                raise HistoryError(f"cannot upgrade history database {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def start(self, record: RunRecord) -> RunRecord:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO runs (started, trigger, mode, status) VALUES (?, ?, ?, ?)",
                (record.started, record.trigger, record.mode, record.status),
            )
            record.id = int(cur.lastrowid or 0)
        return record

    def finish(self, record: RunRecord) -> None:
        """Store the finished run. When the newest earlier entry is an identical run (same mode,
        commit, status, drift, error and warnings, nothing applied by either), the run is folded into it:
        that entry's count and time range grow, this run's row goes, and ``record.id`` /
        ``record.count`` / ``record.last_*`` / ``record.triggers`` then describe the folded entry."""
        drift = json.dumps(record.drift)
        actions = json.dumps(record.actions)
        key = _fold_key(record.mode, record.commit_sha, record.status, json.loads(drift), json.loads(actions), record.error, record.warnings, record.rollouts)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                folded = self._fold(record, key) if key is not None and record.id is not None else False
                if not folded:
                    self._db.execute(
                        "UPDATE runs SET finished=?, commit_sha=?, head_sha=?, status=?, drift_count=?, drift=?, actions=?,"
                        " api_calls=?, error=?, count=1, last_started=NULL, last_finished=NULL, triggers=?, warnings=?, rollouts=? WHERE id=?",
                        (
                            record.finished,
                            record.commit_sha,
                            record.head_sha,
                            record.status,
                            record.drift_count,
                            drift,
                            actions,
                            json.dumps(record.api_calls),
                            record.error,
                            json.dumps([record.trigger]),
                            json.dumps(record.warnings),
                            json.dumps(record.rollouts),
                            record.id,
                        ),
                    )
                    record.count, record.last_started, record.last_finished = 1, None, None
                    record.triggers = [record.trigger]
                self._db.execute("DELETE FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?)", (self.keep,))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _fold(self, record: RunRecord, key: str) -> bool:
        """Fold ``record`` into the entry just before it when that is the same run (lock and transaction held)."""
        row = self._db.execute(_SELECT + " WHERE id < ? ORDER BY id DESC LIMIT 1", (record.id,)).fetchone()
        if row is None:
            return False
        prev = _record(row)
        if (
            prev.finished is None
            or _fold_key(prev.mode, prev.commit_sha, prev.status, prev.drift, prev.actions, prev.error, prev.warnings, prev.rollouts) != key
        ):
            return False
        triggers = list(dict.fromkeys([*prev.triggers, record.trigger]))
        self._db.execute(
            "UPDATE runs SET count=count+1, last_started=?, last_finished=?, triggers=?, head_sha=COALESCE(?, head_sha) WHERE id=?",
            (record.started, record.finished, json.dumps(triggers), record.head_sha, prev.id),
        )
        self._db.execute("DELETE FROM runs WHERE id=?", (record.id,))
        record.id, record.count, record.triggers = prev.id, prev.count + 1, triggers
        record.last_started, record.last_finished = record.started, record.finished
        return True

    def recent(self, limit: int = 20, resource: str | None = None) -> list[RunRecord]:
        """The newest ``limit`` entries, newest first. With ``resource``: only those whose drift
        or actions name it: the resource id (``lambda_alias/getProducts/prod``) or its key
        (``getProducts/prod``), exactly or as a prefix followed by ``:`` or ``/``."""
        if resource is None:
            with self._lock:
                rows = self._db.execute(_SELECT + " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            return [_record(row) for row in rows]
        # instr() on the stored JSON narrows the scan (a superset: the text appears somewhere);
        # names_resource decides on the parsed entries.
        needle = json.dumps(resource)[1:-1]
        out: list[RunRecord] = []
        with self._lock:
            cursor = self._db.execute(_SELECT + " WHERE instr(drift, ?) > 0 OR instr(actions, ?) > 0 ORDER BY id DESC", (needle, needle))
            for row in cursor:
                record = _record(row)
                if names_resource(record, resource):
                    out.append(record)
                    if len(out) >= limit:
                        break
            cursor.close()
        return out

    def get(self, run_id: int) -> RunRecord | None:
        """One entry by id (a folded entry keeps the id of its first run); None if there is none."""
        with self._lock:
            row = self._db.execute(_SELECT + " WHERE id=?", (run_id,)).fetchone()
        return _record(row) if row else None

    def load_rollouts(self) -> dict[str, dict[str, Any]]:
        """Each alias's persisted rollout record (alias -> the record as a dict)."""
        with self._lock:
            rows = self._db.execute("SELECT alias, record FROM rollouts").fetchall()
        out: dict[str, dict[str, Any]] = {}
        for alias, text in rows:
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                out[str(alias)] = value
        return out

    def save_rollouts(self, records: dict[str, dict[str, Any]]) -> None:
        """Persist rollout records (alias -> record dict), each replacing the alias's last."""
        if not records:
            return
        now = time.time()
        with self._lock:
            self._db.executemany(
                "INSERT INTO rollouts (alias, record, updated) VALUES (?, ?, ?) ON CONFLICT(alias) DO UPDATE SET record=excluded.record, updated=excluded.updated",
                [(alias, json.dumps(record), now) for alias, record in records.items()],
            )

    def replace_rollouts(self, records: dict[str, dict[str, Any]]) -> None:
        """Make ``records`` the only rollout records (another replica's, when it hands a target over)."""
        now = time.time()
        with self._lock:
            self._db.execute("DELETE FROM rollouts")
            self._db.executemany(
                "INSERT INTO rollouts (alias, record, updated) VALUES (?, ?, ?)", [(alias, json.dumps(record), now) for alias, record in records.items()]
            )

    def last_good_commit(self) -> str | None:
        """The newest commit that was reconciled as desired state (survives restarts)."""
        with self._lock:
            row = self._db.execute("SELECT commit_sha FROM runs WHERE commit_sha IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def mark_unfinished_as_interrupted(self) -> int:
        """Runs left 'running' by a crash are closed as interrupted on the next start."""
        with self._lock:
            cur = self._db.execute("UPDATE runs SET status='interrupted', error=COALESCE(error, 'process ended during the run') WHERE status='running'")
            return cur.rowcount
