"""SQLite (WAL) prediction store: the embedded default at ``.mlops/predictions.db``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from mlops_actions.dbschema import sqlite_engine
from mlops_actions.monitoring.store._sql import ANY_PENDING, INSERT_COLUMNS, SqlStore, predictions

__all__ = ["SQLiteStore"]


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
    """

    errors = (sqlite3.Error, sa.exc.SQLAlchemyError)

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._open(sqlite_engine(self.path))

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
