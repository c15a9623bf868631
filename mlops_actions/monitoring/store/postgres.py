"""PostgreSQL prediction store: the scale-out path (``postgresql://user@host:port/db``)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool

from mlops_actions.dbschema import driver_message as reason
from mlops_actions.errors import scrub_credentials
from mlops_actions.monitoring.store._sql import INSERT_COLUMNS, SqlStore, predictions
from mlops_actions.monitoring.store.interface import StoreError

__all__ = ["PostgresStore"]

# one statement per batch: SQLAlchemy's "insertmanyvalues" sends the rows as multi-row VALUES
# pages of 1000 (what psycopg2's execute_values did) and RETURNING counts the rows that were new
INSERT = (postgresql.insert(predictions).on_conflict_do_nothing(index_elements=["request_id"])
          .returning(predictions.c.request_id))


class PostgresStore(SqlStore):
    """One psycopg2 connection (through SQLAlchemy) under a lock.

    A connection that breaks (server restarted, network reset, answer cut) is
    replaced and the transaction run again, ``retries`` times after waits of
    ``retry_wait``, 2 x ``retry_wait``...; then one :class:`StoreError` without
    the password. A server that accepts and never answers is bounded too: libpq has
    no client-side read timeout, so a watchdog shuts the connection's socket down
    when a transaction outlives ``op_timeout`` seconds; libpq's wait then fails, and
    the broken connection is replaced like any other.
    """

    def __init__(self, url: str, *, connect_timeout: int = 10, retries: int = 2,
                 retry_wait: float = 0.5, op_timeout: float = 60.0) -> None:
        super().__init__()
        self.connect_timeout = connect_timeout
        self.op_timeout = op_timeout
        self.retries = retries
        self.retry_wait = retry_wait
        try:
            import psycopg2
        except ImportError as exc:  # pragma: no cover - dependency is declared as an extra
            raise StoreError("the PostgreSQL prediction store needs psycopg2",
                             hint="pip install 'mlops-actions[postgres]'") from exc
        self._psycopg2 = psycopg2
        self.errors = (psycopg2.Error, sa.exc.SQLAlchemyError)
        self.url = url
        self._raw: Any = None  # the psycopg2 connection under self._conn
        # the URL goes to libpq as it is (psycopg2.connect(dsn)), as before SQLAlchemy
        engine = sa.create_engine("postgresql+psycopg2://", poolclass=NullPool,
                                  creator=lambda: psycopg2.connect(url, connect_timeout=connect_timeout))
        self._open(engine)

    def _connected(self) -> None:
        self._raw = self._conn.connection.dbapi_connection

    def _migrate(self) -> None:
        """The schema upgrade on open, under the same deadline as any transaction."""
        fired = threading.Event()
        timer = threading.Timer(self.op_timeout, self._cut, args=(self._raw, fired))
        timer.daemon = True
        timer.start()
        try:
            super()._migrate()
        except StoreError:
            if not fired.is_set():
                raise
            raise StoreError(f"PostgreSQL prediction store {self._describe()}: no answer within "
                             f"{self.op_timeout:g} s while checking its schema",
                             hint="check that the database server is up and not blocked") from None
        finally:
            timer.cancel()

    def _open_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot connect to the PostgreSQL prediction store {self._describe()}: "
                          f"{self._scrub(reason(exc))}",
                          hint="check host, port, database name and credentials in the URL; "
                               "the database must exist")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """The base transaction, under a deadline of ``op_timeout`` seconds."""
        with self._lock:
            fired = threading.Event()
            timer = threading.Timer(self.op_timeout, self._cut, args=(self._raw, fired))
            timer.daemon = True
            timer.start()
            try:
                with super()._tx() as conn:
                    yield conn
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
        # raise InterfaceError; SQLAlchemy invalidates a connection it sees disconnected. Other
        # errors (a constraint, a syntax error) are not retried.
        if isinstance(exc, sa.exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            exc = exc.orig if exc.orig is not None else exc
        elif isinstance(exc, sa.exc.SQLAlchemyError):  # e.g. a statement on an invalidated connection
            return bool(self._conn.closed or self._conn.invalidated) or \
                bool(self._raw is not None and self._raw.closed)
        return isinstance(exc, self._psycopg2.InterfaceError) or \
            (isinstance(exc, self._psycopg2.OperationalError) and bool(self._raw.closed))

    def _reconnect(self) -> None:
        with self._lock:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            with contextlib.suppress(Exception):
                self._conn.close()
            assert self._engine is not None
            try:
                self._conn = self._engine.connect()
            except self.errors as exc:
                raise self._open_error(exc) from exc
            self._connected()

    def _scrub(self, text: str) -> str:
        password = urlsplit(self.url).password
        text = text.strip()
        return text.replace(password, "***") if password else text

    def _describe(self) -> str:
        return scrub_credentials(self.url)  # never print a password

    def _upsert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def _insert(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> int:
        new = conn.execute(INSERT, [dict(zip(INSERT_COLUMNS, row, strict=True)) for row in rows])
        return len(new.all())
