"""PostgreSQL prediction store: the scale-out path (``postgresql://user@host:port/db``)."""

from __future__ import annotations

from typing import Any

from mlops_actions.monitoring.store._sql import INSERT_COLUMNS, SqlStore
from mlops_actions.monitoring.store.interface import StoreError

__all__ = ["PostgresStore"]


class PostgresStore(SqlStore):
    """One psycopg2 connection under a lock; bulk inserts with ``execute_values``."""

    ph = "%s"

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        super().__init__()
        try:
            import psycopg2
            import psycopg2.extras
        except ImportError as exc:  # pragma: no cover - dependency is declared as an extra
            raise StoreError("the PostgreSQL prediction store needs psycopg2",
                             hint="pip install 'mlops-actions[postgres]'") from exc
        self._extras = psycopg2.extras
        self.errors = (psycopg2.Error,)
        self.url = url
        try:
            self._conn = psycopg2.connect(url, connect_timeout=connect_timeout)
        except psycopg2.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL prediction store {self._describe()}: "
                             f"{str(exc).strip()}",
                             hint="check host, port, database name and credentials in the URL; "
                                  "the database must exist") from exc
        self._init_schema()

    def _describe(self) -> str:
        # never print a password
        head, sep, tail = self.url.partition("@")
        if sep and ":" in head.split("//", 1)[-1]:
            scheme, _, userinfo = head.partition("//")
            return f"{scheme}//{userinfo.split(':', 1)[0]}:***@{tail}"
        return self.url

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> int:
        new = self._extras.execute_values(
            cur, f"INSERT INTO predictions ({INSERT_COLUMNS}) VALUES %s "
                 "ON CONFLICT (request_id) DO NOTHING RETURNING 1",
            rows, page_size=1000, fetch=True)
        return len(new)
