"""What the SQLite and PostgreSQL stores share: schema, queries, actuals, baselines.

Both speak the same SQL (``ON CONFLICT DO NOTHING``, ``UPDATE ... FROM``); they
differ in the placeholder, the connection and the bulk insert. Every method
holds one lock around the connection, so a gateway thread can write while the
monitor reads through the same store object.

A store whose connection can break (PostgreSQL) reconnects and runs the
transaction again, ``retries`` times at most: every method is safe to repeat
(predictions are keyed by request id, labels and baselines are upserts), so a
transaction that committed just before its answer was lost changes nothing the
second time.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import pandas as pd

from mlops_actions.monitoring.store.interface import (
    COLUMNS,
    ActualsResult,
    PredictionRecord,
    StoreError,
    dumps,
    empty_frame,
    loads,
    record_row,
    rows_frame,
    validate_records,
)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS predictions (
        request_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        timestamp DOUBLE PRECISION NOT NULL,
        features TEXT,
        output TEXT,
        latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
        status INTEGER NOT NULL DEFAULT 200,
        environment TEXT NOT NULL DEFAULT '',
        variant TEXT NOT NULL DEFAULT '',
        actual TEXT,
        actual_at DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS predictions_model_ts ON predictions (model, timestamp)",
    """CREATE TABLE IF NOT EXISTS pending_actuals (
        request_id TEXT PRIMARY KEY,
        actual TEXT,
        received_at DOUBLE PRECISION NOT NULL,
        batch TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS baselines (
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model, version, kind))""",
    # one row rewritten by probe(): does a write reach the disk again after a failure?
    "CREATE TABLE IF NOT EXISTS store_health (id INTEGER PRIMARY KEY, probed_at DOUBLE PRECISION)",
]

INSERT_COLUMNS = ("request_id, model, version, timestamp, features, output, latency_ms, status, "
                  "environment, variant")

APPLY_PENDING = [
    "UPDATE predictions SET actual = q.actual, actual_at = q.received_at FROM pending_actuals q "
    "WHERE predictions.request_id = q.request_id",
    "DELETE FROM pending_actuals WHERE EXISTS "
    "(SELECT 1 FROM predictions p WHERE p.request_id = pending_actuals.request_id)",
]


P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound="SqlStore")


def reconnecting(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Run a store method again on a fresh connection when the connection broke under it."""

    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._retrying(method.__name__, lambda: method(self, *args, **kwargs))

    return cast(Callable[Concatenate[S, P], T], wrapper)  # functools.wraps' _Wrapped, under --strict


class SqlStore:
    """Base of :class:`SQLiteStore` and :class:`PostgresStore`."""

    ph = "?"  # DB-API placeholder
    errors: tuple[type[BaseException], ...] = ()
    retries = 0  # times a transaction is run again after its connection broke (PostgreSQL: 2)
    retry_wait = 0.5  # seconds before the first reconnect; doubled each time

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._conn: Any = None
        self._closed = False

    # ------------------------------------------------------------------ to implement
    def _insert(self, cur: Any, rows: list[tuple[Any, ...]]) -> int:
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction under the lock; database errors become :class:`StoreError`."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the prediction store {self._describe()} is closed")
            try:
                cur = self._conn.cursor()
            except self.errors as exc:  # the connection is already closed
                raise StoreError(f"prediction store {self._describe()} failed: {self._scrub(str(exc))}",
                                 hint="check that the database is reachable and writable") from exc
            try:
                self._begin(cur)
                yield cur
                self._conn.commit()
            except self.errors as exc:
                self._rollback()
                raise StoreError(f"prediction store {self._describe()} failed: {self._scrub(str(exc))}",
                                 hint="check that the database is reachable and writable") from exc
            except BaseException:
                self._rollback()
                raise
            finally:
                cur.close()

    def _lost_connection(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is gone (so a new one may succeed)."""
        return False

    def _reconnect(self) -> None:
        raise NotImplementedError

    def _retrying(self, what: str, run: Callable[[], T]) -> T:
        """``run()``; when its connection broke, reconnect and run it again (``retries`` times)."""
        attempt = 0
        reconnect_error = ""  # why the last reconnect failed: the more telling reason at the end
        while True:
            try:
                return run()
            except StoreError as exc:
                cause = exc.__cause__
                if cause is None or not self._lost_connection(cause):
                    raise
                if attempt >= self.retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise StoreError(
                        f"prediction store {self._describe()}: connection lost during {what}{tries}: "
                        f"{reconnect_error or self._scrub(str(cause))}",
                        hint="check that the database server is up and reachable; the gateway keeps "
                             "predictions queued and writes them when it is back") from None
            attempt += 1
            time.sleep(self.retry_wait * 2 ** (attempt - 1))
            try:
                self._reconnect()
            except StoreError as exc:  # a failed reconnect: the next attempt fails on the closed connection
                reconnect_error = self._scrub(str(exc.__cause__ or exc.message))

    def _scrub(self, text: str) -> str:
        """``text`` without the connection's password (drivers may echo the DSN)."""
        return text.strip()

    def _begin(self, cur: Any) -> None:  # SQLite starts its transaction explicitly
        return None

    def _rollback(self) -> None:
        with suppress(*self.errors):
            self._conn.rollback()

    def _q(self, sql: str) -> str:
        return sql if self.ph == "?" else sql.replace("?", self.ph)

    def _init_schema(self) -> None:
        with self._tx() as cur:
            for stmt in SCHEMA:
                cur.execute(stmt)

    # ------------------------------------------------------------------ the port
    @reconnecting
    def write(self, records: Sequence[PredictionRecord]) -> int:
        if not records:
            return 0
        validate_records(records)
        rows = sorted((record_row(r) for r in records), key=lambda row: row[0])  # PK order: one pass
        with self._tx() as cur:
            new = self._insert(cur, rows)
            cur.execute("SELECT 1 FROM pending_actuals LIMIT 1")
            if cur.fetchone() is not None:  # labels that overtook their predictions
                for stmt in APPLY_PENDING:
                    cur.execute(stmt)
        return new

    def probe(self) -> None:
        """Commit one tiny write; raises :class:`StoreError` while writes fail (disk full, I/O
        error, database down). The gateway calls it to notice by itself that writes work again."""
        with self._tx() as cur:
            cur.execute(self._q("INSERT INTO store_health (id, probed_at) VALUES (1, ?) ON CONFLICT (id) "
                                "DO UPDATE SET probed_at = excluded.probed_at"), (time.time(),))

    def record_actuals(self, actuals: Mapping[str, Any]) -> int:
        return self.attach_actuals(actuals).matched

    @reconnecting
    def attach_actuals(self, actuals: Mapping[str, Any]) -> ActualsResult:
        if not actuals:
            return ActualsResult(0, 0, 0, self.pending_actuals())
        batch = uuid.uuid4().hex
        now = time.time()
        rows = [(str(k), dumps(v), now, batch) for k, v in actuals.items()]
        with self._tx() as cur:
            cur.executemany(self._q(
                "INSERT INTO pending_actuals (request_id, actual, received_at, batch) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (request_id) DO UPDATE SET actual = excluded.actual, "
                "received_at = excluded.received_at, batch = excluded.batch"), rows)
            for stmt in APPLY_PENDING:
                cur.execute(stmt)
            cur.execute(self._q("SELECT COUNT(*) FROM pending_actuals WHERE batch = ?"), (batch,))
            unknown = int(cur.fetchone()[0])
            cur.execute("SELECT COUNT(*) FROM pending_actuals")
            pending = int(cur.fetchone()[0])
        return ActualsResult(received=len(rows), matched=len(rows) - unknown, unknown=unknown,
                             pending=pending)

    @reconnecting
    def pending_actuals(self) -> int:
        with self._tx() as cur:
            cur.execute("SELECT COUNT(*) FROM pending_actuals")
            return int(cur.fetchone()[0])

    @reconnecting
    def query(self, model: str, *, version: str | None = None, environment: str | None = None,
              since: float | None = None, until: float | None = None,
              limit: int | None = None) -> pd.DataFrame:
        """Rows in time order; ``since`` inclusive, ``until`` exclusive; ``limit``: the newest N."""
        where = ["model = ?"]
        params: list[Any] = [model]
        for column, op, value in (("version", "=", version), ("environment", "=", environment),
                                  ("timestamp", ">=", since), ("timestamp", "<", until)):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        sql = f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE {' AND '.join(where)}"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY timestamp DESC LIMIT {int(limit)}) t"
        sql += " ORDER BY timestamp"
        with self._tx() as cur:
            cur.execute(self._q(sql), params)
            rows = cur.fetchall()
        if not rows:
            return empty_frame()
        return rows_frame(rows)

    @reconnecting
    def count(self, model: str | None = None) -> int:
        with self._tx() as cur:
            if model is None:
                cur.execute("SELECT COUNT(*) FROM predictions")
            else:
                cur.execute(self._q("SELECT COUNT(*) FROM predictions WHERE model = ?"), (model,))
            return int(cur.fetchone()[0])

    @reconnecting
    def models(self) -> list[str]:
        with self._tx() as cur:
            cur.execute("SELECT DISTINCT model FROM predictions ORDER BY model")
            return [str(r[0]) for r in cur.fetchall()]

    @reconnecting
    def purge(self, older_than: float) -> int:
        with self._tx() as cur:
            cur.execute(self._q("DELETE FROM predictions WHERE timestamp < ?"), (older_than,))
            deleted = int(cur.rowcount)
            cur.execute(self._q("DELETE FROM pending_actuals WHERE received_at < ?"), (older_than,))
        return deleted

    # ------------------------------------------------------------------ baselines
    @reconnecting
    def set_baseline(self, model: str, values: Mapping[str, Any], *, version: str | None = None,
                     kind: str = "performance") -> None:
        payload = dumps(dict(values))
        with self._tx() as cur:
            cur.execute(self._q(
                "INSERT INTO baselines (model, version, kind, payload, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (model, version, kind) DO UPDATE SET payload = excluded.payload, "
                "updated_at = excluded.updated_at"), (model, version or "", kind, payload, time.time()))

    @reconnecting
    def get_baseline(self, model: str, *, version: str | None = None,
                     kind: str = "performance") -> dict[str, Any] | None:
        """The version's own baseline, else the model-wide one, else None."""
        with self._tx() as cur:
            for v in ([version] if version else []) + [""]:
                cur.execute(self._q("SELECT payload FROM baselines WHERE model = ? AND version = ? "
                                    "AND kind = ?"), (model, v, kind))
                row = cur.fetchone()
                if row is not None:
                    value = loads(row[0])
                    return dict(value) if isinstance(value, dict) else None
        return None

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                with suppress(*self.errors):
                    self._conn.close()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
