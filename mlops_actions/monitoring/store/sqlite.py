"""SQLite (WAL) prediction store: the embedded default at ``.mlops/predictions.db``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from mlops_actions.dbschema import sqlite_engine
from mlops_actions.monitoring.store._sql import ANY_PENDING, INSERT_COLUMNS, SqlStore, predictions
from mlops_actions.monitoring.store.interface import PredictionRecord

__all__ = ["CHECKPOINT_SECONDS", "SQLiteStore"]

#: how often a writing store copies the WAL back into the database (see SQLiteStore)
CHECKPOINT_SECONDS = 1.0


def _compiled_insert() -> str:
    """``INSERT ... ON CONFLICT (request_id) DO NOTHING`` with ``?`` placeholders in
    :data:`INSERT_COLUMNS` order, rendered once by SQLAlchemy's SQLite dialect."""
    stmt = sqlite.insert(predictions).values({c: sa.bindparam(c) for c in INSERT_COLUMNS})
    compiled = stmt.on_conflict_do_nothing(index_elements=["request_id"]).compile(dialect=sqlite.dialect())
    if tuple(compiled.positiontup or ()) != INSERT_COLUMNS:  # pragma: no cover - a bug, caught by any test
        raise RuntimeError(f"insert placeholders in order {compiled.positiontup}, expected {INSERT_COLUMNS}")
    return str(compiled)


INSERT_SQL = _compiled_insert()
ANY_PENDING_SQL = str(ANY_PENDING.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


class SQLiteStore(SqlStore):
    """One connection shared by threads under a lock; WAL lets other processes read meanwhile.

    Batches go in as one ``executemany`` of :data:`INSERT_SQL` (compiled once by
    SQLAlchemy) on the driver's connection, inside the SQLAlchemy transaction:
    SQLAlchemy's own ``execute(insert, rows)`` would build one dict per row, and its
    execution context per statement doubled the CPU of writing a small batch, on the
    hot path of the gateway's logging.

    Checkpoints happen beside the writes, not inside them: by default SQLite checkpoints the
    WAL within the commit that takes it past 1,000 pages, copying them back and syncing the
    database file while every request whose prediction is in that batch waits (the gateway
    answers after the commit). Measured at 16 connections, the gateway's p99 grew with the
    table, 20 -> 51 ms over four rounds (22 s at worst), and not with ``memory://``. So the
    writing connection turns automatic checkpoints off and, from its first write on, a thread
    with its own connection runs a PASSIVE checkpoint every :data:`CHECKPOINT_SECONDS` (it
    never waits for the writer, and the writer never waits for it). The WAL is reset once a
    checkpoint has copied all of it; the last connection to close checkpoints as always.
    """

    errors = (sqlite3.Error, sa.exc.SQLAlchemyError)

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._checkpointer: threading.Thread | None = None
        self._stop = threading.Event()
        self._open(sqlite_engine(self.path))

    def _connected(self) -> None:
        if self.path != ":memory:":
            self._conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")

    def write(self, records: Sequence[PredictionRecord]) -> int:
        if self._checkpointer is None and self.path != ":memory:":
            with self._lock:
                if self._checkpointer is None and not self._closed:
                    self._checkpointer = threading.Thread(target=self._checkpoint_loop, daemon=True,
                                                          name="mlops-sqlite-checkpoint")
                    self._checkpointer.start()
        return super().write(records)

    def _checkpoint_loop(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        except sqlite3.Error:
            return  # the writer reports the database's problems; SQLite checkpoints on close
        try:
            while not self._stop.wait(CHECKPOINT_SECONDS):
                with suppress(sqlite3.Error):  # busy or locked: the next round tries again
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=5)
        super().close()

    def _describe(self) -> str:
        return f"sqlite:///{self.path}"

    def _upsert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def _insert(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> int:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        before = raw.total_changes
        cur = raw.cursor()
        try:
            cur.executemany(INSERT_SQL, rows)
        finally:
            cur.close()
        return int(raw.total_changes - before)

    def _any_pending(self, conn: sa.Connection) -> bool:
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        return raw.execute(ANY_PENDING_SQL).fetchone() is not None
