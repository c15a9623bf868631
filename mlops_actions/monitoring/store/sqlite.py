"""SQLite (WAL) prediction store: the embedded default at ``.mlops/predictions.db``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from mlops_actions.monitoring.store._sql import INSERT_COLUMNS, SqlStore
from mlops_actions.monitoring.store.interface import StoreError

__all__ = ["SQLiteStore"]


class SQLiteStore(SqlStore):
    """One connection shared by threads under a lock; WAL lets other processes read meanwhile."""

    ph = "?"
    errors = (sqlite3.Error,)

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite prediction store {self.path}: {exc}",
                             hint="check that the directory exists and is writable") from exc
        self._init_schema()

    def _describe(self) -> str:
        return f"sqlite:///{self.path}"

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> int:
        before = self._conn.total_changes
        cur.executemany(f"INSERT INTO predictions ({INSERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) "
                        "ON CONFLICT (request_id) DO NOTHING", rows)
        return int(self._conn.total_changes - before)
