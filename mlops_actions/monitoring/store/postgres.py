"""PostgreSQL prediction store: the scale-out path (``postgresql://user@host:port/db``)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from mlops_actions.errors import scrub_credentials
from mlops_actions.monitoring.store._sql import INSERT_COLUMNS, SqlStore
from mlops_actions.monitoring.store.interface import StoreError

__all__ = ["PostgresStore"]


class PostgresStore(SqlStore):
    """One psycopg2 connection under a lock; bulk inserts with ``execute_values``.

    A connection that breaks (server restarted, network reset, answer cut) is
    replaced and the transaction run again, ``retries`` times after waits of
    ``retry_wait``, 2 x ``retry_wait``...; then one :class:`StoreError` without
    the password. A server that accepts and never answers is bounded too: libpq has
    no client-side read timeout, so a watchdog shuts the connection's socket down
    when a transaction outlives ``op_timeout`` seconds; libpq's wait then fails, and
    the broken connection is replaced like any other.
    """

    ph = "%s"

    def __init__(self, url: str, *, connect_timeout: int = 10, retries: int = 2,
                 retry_wait: float = 0.5, op_timeout: float = 60.0) -> None:
        super().__init__()
        self.connect_timeout = connect_timeout
        self.op_timeout = op_timeout
        self.retries = retries
        self.retry_wait = retry_wait
        try:
            import psycopg2
            import psycopg2.extras
        except ImportError as exc:  # pragma: no cover - dependency is declared as an extra
            raise StoreError("the PostgreSQL prediction store needs psycopg2",
                             hint="pip install 'mlops-actions[postgres]'") from exc
        self._extras = psycopg2.extras
        self._psycopg2 = psycopg2
        self.errors = (psycopg2.Error,)
        self.url = url
        self._conn = self._connect()
        self._init_schema()

    def _connect(self) -> Any:
        try:
            return self._psycopg2.connect(self.url, connect_timeout=self.connect_timeout)
        except self._psycopg2.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL prediction store {self._describe()}: "
                             f"{self._scrub(str(exc))}",
                             hint="check host, port, database name and credentials in the URL; "
                                  "the database must exist") from exc

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """The base transaction, under a deadline of ``op_timeout`` seconds."""
        with self._lock:
            fired = threading.Event()
            timer = threading.Timer(self.op_timeout, self._cut, args=(self._conn, fired))
            timer.daemon = True
            timer.start()
            try:
                with super()._tx() as cur:
                    yield cur
            except StoreError as exc:
                if not fired.is_set():
                    raise
                raise StoreError(f"prediction store {self._describe()}: no answer within "
                                 f"{self.op_timeout:g} s", hint="check that the database server is up "
                                 "and not blocked") from exc.__cause__
            finally:
                timer.cancel()

    @staticmethod
    def _cut(conn: Any, fired: threading.Event) -> None:
        """Shut the socket under ``conn`` down (on a duplicate of its descriptor): libpq's wait
        for an answer returns with an error, and psycopg2 marks the connection broken."""
        fired.set()
        with contextlib.suppress(Exception):
            sock = socket.socket(fileno=os.dup(conn.fileno()))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()

    def _lost_connection(self, exc: BaseException) -> bool:
        # psycopg2 marks a connection that broke under a query as closed (2); later calls on it
        # raise InterfaceError. Other errors (a constraint, a syntax error) are not retried.
        return isinstance(exc, self._psycopg2.InterfaceError) or \
            (isinstance(exc, self._psycopg2.OperationalError) and bool(self._conn.closed))

    def _reconnect(self) -> None:
        with self._lock:
            with contextlib.suppress(self._psycopg2.Error):
                self._conn.close()
            self._conn = self._connect()

    def _scrub(self, text: str) -> str:
        password = urlsplit(self.url).password
        text = text.strip()
        return text.replace(password, "***") if password else text

    def _describe(self) -> str:
        return scrub_credentials(self.url)  # never print a password

    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> int:
        new = self._extras.execute_values(
            cur, f"INSERT INTO predictions ({INSERT_COLUMNS}) VALUES %s "
                 "ON CONFLICT (request_id) DO NOTHING RETURNING 1",
            rows, page_size=1000, fetch=True)
        return len(new)
