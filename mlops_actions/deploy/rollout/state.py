"""The gateway's own database (``.mlops/gateway.db``): routes, rollouts, analysis, history.

SQLite in WAL mode through SQLAlchemy Core (the tables are :data:`metadata`); the
schema is created and upgraded on open by the alembic migrations in
``deploy/migrations/`` (:mod:`mlops_actions.dbschema`). Every write commits at once
(outside :meth:`StateDB.atomic`), so a SIGKILL loses at
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

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError

from mlops_actions import dbschema
from mlops_actions.deploy.rollout.record import Measurement, Rollout, Route
from mlops_actions.errors import TargetError

__all__ = ["StateDB", "metadata"]

metadata = sa.MetaData()

routes = sa.Table(
    "routes", metadata,
    sa.Column("environment", sa.Text, primary_key=True),
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("data", sa.Text),
    sa.Column("updated_at", sa.REAL),
)

rollouts = sa.Table(
    "rollouts", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("environment", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("data", sa.Text),
    sa.Column("phase", sa.Text),
    sa.Column("created_at", sa.REAL),
    sa.Column("updated_at", sa.REAL),
    sa.Index("rollouts_model", "environment", "model", "created_at"),
)

analysis_runs = sa.Table(
    "analysis_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("rollout_id", sa.Text),
    sa.Column("step", sa.Integer),
    sa.Column("data", sa.Text),
    sa.Column("at", sa.REAL),
    sqlite_autoincrement=True,
)

history = sa.Table(
    "history", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("environment", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("version", sa.Text),
    sa.Column("event", sa.Text),
    sa.Column("actor", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("at", sa.REAL),
    sqlite_autoincrement=True,
)

HISTORY_KEYS = ("environment", "model", "version", "event", "actor", "detail", "at")


def _replace(table: sa.Table) -> Any:
    """``INSERT ... ON CONFLICT (primary key) DO UPDATE`` every other column: what ``INSERT OR
    REPLACE`` did, without deleting the row first."""
    stmt = sqlite.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=others)


SAVE_ROUTE = _replace(routes)
SAVE_ROLLOUT = _replace(rollouts)


class StateDB:
    """The gateway's state: one SQLite connection (through SQLAlchemy Core) under a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._group = 0  # > 0 inside atomic(): writes wait for its single commit
        # deferred BEGIN as sqlite3 did: readers and the gateway share the file
        self._engine = dbschema.sqlite_engine(str(self.path), begin="BEGIN")
        try:
            self._db = self._engine.connect()
        except (sqlite3.Error, SQLAlchemyError) as exc:
            raise TargetError(f"cannot open the gateway database {self.path}: {dbschema.driver_message(exc)}",
                              hint="check the directory is writable and not on a network share") from None
        # the upgrade takes the write lock first, so two processes opening at once upgrade once
        self._db.info["sqlite_begin"] = "BEGIN IMMEDIATE"
        try:
            dbschema.upgrade(self._db, dbschema.GATEWAY, where=str(self.path), error=TargetError)
        except BaseException:
            self._db.close()
            self._engine.dispose()
            raise
        self._db.info.pop("sqlite_begin")

    def _exec(self, stmt: Any, params: Any = None) -> list[Any]:
        with self._lock:
            result = self._db.execute(stmt, params)
            rows = list(result.all()) if result.returns_rows else []
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
        self._exec(SAVE_ROUTE, {"environment": environment, "model": route.model,
                                "data": json.dumps(route.to_dict()), "updated_at": time.time()})

    def routes(self, environment: str) -> dict[str, Route]:
        rows = self._exec(sa.select(routes.c.model, routes.c.data)
                          .where(routes.c.environment == environment).order_by(routes.c.model))
        return {m: Route.from_dict(json.loads(d)) for m, d in rows}

    # rollouts
    def save_rollout(self, rollout: Rollout) -> None:
        self._exec(SAVE_ROLLOUT, {"id": rollout.id, "environment": rollout.environment,
                                  "model": rollout.model, "data": json.dumps(rollout.to_dict()),
                                  "phase": rollout.phase.value, "created_at": rollout.created_at,
                                  "updated_at": rollout.updated_at})

    def latest_rollouts(self, environment: str) -> dict[str, Rollout]:
        r = rollouts.alias("r")
        newest = (sa.select(sa.func.max(rollouts.c.created_at))
                  .where(rollouts.c.environment == r.c.environment, rollouts.c.model == r.c.model)
                  .scalar_subquery())
        rows = self._exec(sa.select(r.c.model, r.c.data)
                          .where(r.c.environment == environment, r.c.created_at == newest))
        return {m: Rollout.from_dict(json.loads(d)) for m, d in rows}

    def add_measurement(self, rollout_id: str, step: int, measurement: Measurement) -> None:
        self._exec(analysis_runs.insert(), {"rollout_id": rollout_id, "step": step,
                                            "data": json.dumps(measurement.to_dict()), "at": measurement.at})

    def measurements(self, rollout_id: str) -> list[Measurement]:
        rows = self._exec(sa.select(analysis_runs.c.data).where(analysis_runs.c.rollout_id == rollout_id)
                          .order_by(analysis_runs.c.id))
        return [Measurement.from_dict(json.loads(d)) for (d,) in rows]

    # history
    def add_history(self, environment: str, model: str, version: str, event: str, actor: str,
                    detail: str = "") -> None:
        self._exec(history.insert(), {"environment": environment, "model": model, "version": version,
                                      "event": event, "actor": actor, "detail": detail, "at": time.time()})

    def history(self, environment: str, model: str | None = None) -> list[dict[str, Any]]:
        h = history.c
        stmt = sa.select(*(h[k] for k in HISTORY_KEYS)).where(h.environment == environment)
        if model is not None:
            stmt = stmt.where(h.model == model)
        rows = self._exec(stmt.order_by(h.id))
        return [dict(zip(HISTORY_KEYS, r, strict=True)) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._engine.dispose()

