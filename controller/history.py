"""Reconcile history in SQLite under the state dir: kept across restarts, bounded retention."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
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
    error TEXT
);
"""


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
    id: int | None = None

    @property
    def drift_count(self) -> int:
        return len(self.drift)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drift_count"] = self.drift_count
        return out


COLUMNS = ("id", "started", "finished", "trigger", "mode", "commit_sha", "head_sha", "status", "drift_count", "drift", "actions", "api_calls", "error")


class HistoryError(Exception):
    """The history database cannot be used (not SQLite, another schema, unopenable); one line."""


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
            raise HistoryError(
                f"{path} is not a Pointsman history database (table runs has no column {', '.join(missing)})"
            )

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
        with self._lock:
            self._db.execute(
                "UPDATE runs SET finished=?, commit_sha=?, head_sha=?, status=?, drift_count=?, drift=?, actions=?,"
                " api_calls=?, error=? WHERE id=?",
                (
                    record.finished,
                    record.commit_sha,
                    record.head_sha,
                    record.status,
                    record.drift_count,
                    json.dumps(record.drift),
                    json.dumps(record.actions),
                    json.dumps(record.api_calls),
                    record.error,
                    record.id,
                ),
            )
            self._db.execute(
                "DELETE FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?)", (self.keep,)
            )

    def recent(self, limit: int = 20) -> list[RunRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, started, finished, trigger, mode, commit_sha, head_sha, status, drift, actions, api_calls, error"
                " FROM runs ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            RunRecord(
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
            )
            for row in rows
        ]

    def last_good_commit(self) -> str | None:
        """The newest commit that was reconciled as desired state (survives restarts)."""
        with self._lock:
            row = self._db.execute(
                "SELECT commit_sha FROM runs WHERE commit_sha IS NOT NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return row[0] if row else None

    def mark_unfinished_as_interrupted(self) -> int:
        """Runs left 'running' by a crash are closed as interrupted on the next start."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE runs SET status='interrupted', error=COALESCE(error, 'process ended during the run')"
                " WHERE status='running'"
            )
            return cur.rowcount
