"""Breaker state on disk (SQLite, WAL): tripped stops survive a restart of the risk process.

Tables::

    trips(stop_id PK, breaker, scope, scope_value, reason, at_ns,
          active, resumed_at_ns, resumed_by, resume_reason)   -- the audit trail, never deleted
    kv(key PK, value)   -- next_stop_id, execution_seq (the last applied execution-relay
                           sequence) and the engine snapshot (daily P&L, failure windows),
                           written in one transaction per execution message

``execution_seq`` lets a restarted risk process resume the execution relay exactly where it
was, so results (and operator Resumes) that arrived while it was down are applied once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocol.system import StopScope
from runtime.files import open_sqlite

from .engine import Trip

SCHEMA = """
CREATE TABLE IF NOT EXISTS trips (
    stop_id INTEGER PRIMARY KEY,
    breaker TEXT NOT NULL,
    scope INTEGER NOT NULL,
    scope_value INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at_ns INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    resumed_at_ns INTEGER,
    resumed_by TEXT,
    resume_reason TEXT
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class RiskState:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = open_sqlite(self.path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def active_trips(self) -> list[Trip]:
        rows = self.db.execute(
            "SELECT stop_id, breaker, scope, scope_value, reason, at_ns FROM trips WHERE active = 1 ORDER BY stop_id"
        ).fetchall()
        return [Trip(stop_id=r[0], breaker=r[1], scope=StopScope(r[2]), scope_value=r[3], reason=r[4], at_ns=r[5])
                for r in rows]

    def all_trips(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM trips ORDER BY stop_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def _put(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def record_trip(self, trip: Trip, next_stop_id: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR IGNORE INTO trips(stop_id, breaker, scope, scope_value, reason, at_ns) VALUES (?,?,?,?,?,?)",
                (trip.stop_id, trip.breaker, int(trip.scope), trip.scope_value, trip.reason, trip.at_ns),
            )
            self._put("next_stop_id", next_stop_id)

    def record_resume(self, cleared: list[Trip], at_ns: int, by: str, reason: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for t in cleared:
                self.db.execute(
                    "UPDATE trips SET active = 0, resumed_at_ns = ?, resumed_by = ?, resume_reason = ? WHERE stop_id = ?",
                    (at_ns, by, reason, t.stop_id),
                )

    def record_execution(self, seq: int, snapshot: dict[str, Any]) -> None:
        """The last applied execution-relay sequence and the state it produced, atomically."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self._put("execution_seq", seq)
            self._put("snapshot", snapshot)
