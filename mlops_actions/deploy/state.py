"""The gateway's own database (``.mlops/gateway.db``): routes, rollouts, analysis, history.

Plain SQLite in WAL mode; every write commits at once, so a SIGKILL loses at
most the step being taken, which the controller redoes (its steps are
idempotent). The writes of one step (route, history entry, rollout) are grouped
into one commit with :meth:`StateDB.atomic`: a SIGKILL between them would
otherwise leave a history entry whose step is redone after the restart, and the
history would record it twice.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_actions.deploy.interface import Measurement, Rollout, Route
from mlops_actions.errors import TargetError

__all__ = ["StateDB"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS routes (environment TEXT, model TEXT, data TEXT, updated_at REAL,
                                   PRIMARY KEY (environment, model));
CREATE TABLE IF NOT EXISTS rollouts (id TEXT PRIMARY KEY, environment TEXT, model TEXT, data TEXT,
                                     phase TEXT, created_at REAL, updated_at REAL);
CREATE INDEX IF NOT EXISTS rollouts_model ON rollouts(environment, model, created_at);
CREATE TABLE IF NOT EXISTS analysis_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT,
                                          step INTEGER, data TEXT, at REAL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, environment TEXT, model TEXT,
                                    version TEXT, event TEXT, actor TEXT, detail TEXT, at REAL);
"""


class StateDB:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._group = 0  # > 0 inside atomic(): writes wait for its single commit
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            self._db.commit()
        except sqlite3.Error as exc:
            raise TargetError(f"cannot open the gateway database {self.path}: {exc}",
                              hint="check the directory is writable and not on a network share") from None

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
            if not self._group:
                self._db.commit()
            return rows

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Commit every write made inside as one transaction (nested: the outermost commits).

        Meant for synchronous sections (one controller step, one admin call): other threads
        wait on the lock meanwhile. It commits even when the body raises, as single writes
        would have, so memory and database never disagree about what was done.
        """
        with self._lock:
            self._group += 1
            try:
                yield
            finally:
                self._group -= 1
                if not self._group:
                    self._db.commit()

    # routes
    def save_route(self, environment: str, route: Route) -> None:
        self._exec("INSERT OR REPLACE INTO routes VALUES (?,?,?,?)",
                   (environment, route.model, json.dumps(route.to_dict()), time.time()))

    def routes(self, environment: str) -> dict[str, Route]:
        rows = self._exec("SELECT model, data FROM routes WHERE environment=? ORDER BY model", (environment,))
        return {m: Route.from_dict(json.loads(d)) for m, d in rows}

    # rollouts
    def save_rollout(self, rollout: Rollout) -> None:
        self._exec("INSERT OR REPLACE INTO rollouts VALUES (?,?,?,?,?,?,?)",
                   (rollout.id, rollout.environment, rollout.model, json.dumps(rollout.to_dict()),
                    rollout.phase.value, rollout.created_at, rollout.updated_at))

    def latest_rollouts(self, environment: str) -> dict[str, Rollout]:
        rows = self._exec(
            "SELECT model, data FROM rollouts r WHERE environment=? AND created_at = "
            "(SELECT MAX(created_at) FROM rollouts WHERE environment=r.environment AND model=r.model)",
            (environment,))
        return {m: Rollout.from_dict(json.loads(d)) for m, d in rows}

    def add_measurement(self, rollout_id: str, step: int, measurement: Measurement) -> None:
        self._exec("INSERT INTO analysis_runs (rollout_id, step, data, at) VALUES (?,?,?,?)",
                   (rollout_id, step, json.dumps(measurement.to_dict()), measurement.at))

    def measurements(self, rollout_id: str) -> list[Measurement]:
        rows = self._exec("SELECT data FROM analysis_runs WHERE rollout_id=? ORDER BY id", (rollout_id,))
        return [Measurement.from_dict(json.loads(d)) for (d,) in rows]

    # history
    def add_history(self, environment: str, model: str, version: str, event: str, actor: str,
                    detail: str = "") -> None:
        self._exec("INSERT INTO history (environment, model, version, event, actor, detail, at) "
                   "VALUES (?,?,?,?,?,?,?)", (environment, model, version, event, actor, detail, time.time()))

    def history(self, environment: str, model: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT environment, model, version, event, actor, detail, at FROM history WHERE environment=?"
        params: tuple[Any, ...] = (environment,)
        if model is not None:
            sql += " AND model=?"
            params += (model,)
        rows = self._exec(sql + " ORDER BY id", params)
        keys = ("environment", "model", "version", "event", "actor", "detail", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
