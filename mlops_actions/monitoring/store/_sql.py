"""What the SQLite and PostgreSQL stores share: the tables, the queries, actuals, baselines.

The tables are one :class:`sqlalchemy.MetaData` (:data:`metadata`); queries are
SQLAlchemy Core statements, and the dialect (SQLite, PostgreSQL) renders the
differences: placeholders, upserts (``INSERT ... ON CONFLICT``), ``UPDATE ...
FROM``. The schema is created and upgraded by the alembic migrations in
``migrations/`` (:mod:`mlops_actions.dbschema`), never by ``create_all``.

Each store holds one connection; every method holds one lock around it, so a
gateway thread can write while the monitor reads through the same store object.
The hot path, inserting a batch of predictions, is one ``executemany`` per
batch; each store says how in ``_insert``.

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
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from mlops_actions import dbschema
from mlops_actions.dbschema import driver_message as reason
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

DOUBLE: sa.DOUBLE_PRECISION[float] = sa.DOUBLE_PRECISION()

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions", metadata,
    sa.Column("request_id", sa.Text, primary_key=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("timestamp", DOUBLE, nullable=False),
    sa.Column("features", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("latency_ms", DOUBLE, nullable=False, server_default=sa.text("0")),
    sa.Column("status", sa.Integer, nullable=False, server_default=sa.text("200")),
    sa.Column("environment", sa.Text, nullable=False, server_default=sa.text("''")),
    sa.Column("variant", sa.Text, nullable=False, server_default=sa.text("''")),
    sa.Column("actual", sa.Text),
    sa.Column("actual_at", DOUBLE),
    sa.Index("predictions_model_ts", "model", "timestamp"),
)

# labels whose prediction is not (yet) in the store
pending_actuals = sa.Table(
    "pending_actuals", metadata,
    sa.Column("request_id", sa.Text, primary_key=True),
    sa.Column("actual", sa.Text),
    sa.Column("received_at", DOUBLE, nullable=False),
    sa.Column("batch", sa.Text, nullable=False),
)

baselines = sa.Table(
    "baselines", metadata,
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("updated_at", DOUBLE, nullable=False),
)

# one row rewritten by probe(): does a write reach the disk again after a failure?
store_health = sa.Table(
    "store_health", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("probed_at", DOUBLE),
)

# the order of record_row()'s tuple
INSERT_COLUMNS = ("request_id", "model", "version", "timestamp", "features", "output", "latency_ms",
                  "status", "environment", "variant")

APPLY_PENDING = [
    sa.update(predictions)
    .values(actual=pending_actuals.c.actual, actual_at=pending_actuals.c.received_at)
    .where(predictions.c.request_id == pending_actuals.c.request_id),
    sa.delete(pending_actuals)
    .where(sa.exists().where(predictions.c.request_id == pending_actuals.c.request_id)),
]

ANY_PENDING = sa.select(sa.literal(1)).select_from(pending_actuals).limit(1)
COUNT_PENDING = sa.select(sa.func.count()).select_from(pending_actuals)


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

    errors: tuple[type[BaseException], ...] = (SQLAlchemyError,)
    retries = 0  # times a transaction is run again after its connection broke (PostgreSQL: 2)
    retry_wait = 0.5  # seconds before the first reconnect; doubled each time

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._engine: sa.Engine | None = None
        self._conn: Any = None  # sa.Connection once open
        self._closed = False

    # ------------------------------------------------------------------ to implement
    def _insert(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> int:
        """Insert rows (in :data:`INSERT_COLUMNS` order), skipping known request ids; the number new."""
        raise NotImplementedError

    def _any_pending(self, conn: sa.Connection) -> bool:
        """Whether labels wait for their predictions (asked once per :meth:`write`)."""
        return conn.execute(ANY_PENDING).first() is not None

    def _upsert(self, table: sa.Table) -> Any:
        """The dialect's ``INSERT`` construct (it has ``on_conflict_do_update``)."""
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    def _open_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the prediction store {self._describe()}: {self._scrub(reason(exc))}",
                          hint="check that the directory exists and is writable")

    # ------------------------------------------------------------------ plumbing
    def _open(self, engine: sa.Engine) -> None:
        """Connect, then bring the schema to this release's revision (alembic; see dbschema)."""
        self._engine = engine
        try:
            self._conn = engine.connect()
        except self.errors as exc:
            raise self._open_error(exc) from exc
        self._connected()
        try:
            self._migrate()
        except StoreError as exc:
            with suppress(Exception):
                self._conn.close()
            raise StoreError(self._scrub(exc.message), hint=exc.hint) from None  # a driver may echo the DSN
        except BaseException:
            with suppress(Exception):
                self._conn.close()
            raise

    def _connected(self) -> None:
        """Called after each new connection."""

    def _migrate(self) -> None:
        dbschema.upgrade(self._conn, dbschema.PREDICTIONS, where=self._describe(), error=StoreError)

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        """One transaction under the lock; database errors become :class:`StoreError`."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the prediction store {self._describe()} is closed")
            conn = self._conn
            try:
                trans = conn.begin()
            except self.errors as exc:  # the connection is already closed
                raise StoreError(f"prediction store {self._describe()} failed: {self._scrub(reason(exc))}",
                                 hint="check that the database is reachable and writable") from exc
            try:
                yield conn
                trans.commit()
            except self.errors as exc:
                with suppress(Exception):
                    trans.rollback()
                raise StoreError(f"prediction store {self._describe()} failed: {self._scrub(reason(exc))}",
                                 hint="check that the database is reachable and writable") from exc
            except BaseException:
                with suppress(Exception):
                    trans.rollback()
                raise

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
                        f"{reconnect_error or self._scrub(reason(cause))}",
                        hint="check that the database server is up and reachable; the gateway keeps "
                             "predictions queued and writes them when it is back") from None
            attempt += 1
            time.sleep(self.retry_wait * 2 ** (attempt - 1))
            try:
                self._reconnect()
            except StoreError as exc:  # a failed reconnect: the next attempt fails on the closed connection
                reconnect_error = self._scrub(reason(exc.__cause__) if exc.__cause__ else exc.message)

    def _scrub(self, text: str) -> str:
        """``text`` without the connection's password (drivers may echo the DSN)."""
        return text.strip()

    # ------------------------------------------------------------------ the port
    @reconnecting
    def write(self, records: Sequence[PredictionRecord]) -> int:
        if not records:
            return 0
        validate_records(records)
        rows = sorted((record_row(r) for r in records), key=lambda row: row[0])  # PK order: one pass
        with self._tx() as conn:
            new = self._insert(conn, rows)
            if self._any_pending(conn):  # labels that overtook their predictions
                for stmt in APPLY_PENDING:
                    conn.execute(stmt)
        return new

    def probe(self) -> None:
        """Commit one tiny write; raises :class:`StoreError` while writes fail (disk full, I/O
        error, database down). The gateway calls it to notice by itself that writes work again."""
        stmt = self._upsert(store_health).values(id=1, probed_at=time.time())
        with self._tx() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"],
                                                    set_={"probed_at": stmt.excluded.probed_at}))

    def record_actuals(self, actuals: Mapping[str, Any]) -> int:
        return self.attach_actuals(actuals).matched

    @reconnecting
    def attach_actuals(self, actuals: Mapping[str, Any]) -> ActualsResult:
        if not actuals:
            return ActualsResult(0, 0, 0, self.pending_actuals())
        batch = uuid.uuid4().hex
        now = time.time()
        rows = [{"request_id": str(k), "actual": dumps(v), "received_at": now, "batch": batch}
                for k, v in actuals.items()]
        stmt = self._upsert(pending_actuals)
        stmt = stmt.on_conflict_do_update(
            index_elements=["request_id"],
            set_={"actual": stmt.excluded.actual, "received_at": stmt.excluded.received_at,
                  "batch": stmt.excluded.batch})
        with self._tx() as conn:
            conn.execute(stmt, rows)
            for apply in APPLY_PENDING:
                conn.execute(apply)
            unknown = int(conn.execute(COUNT_PENDING.where(pending_actuals.c.batch == batch)).scalar_one())
            pending = int(conn.execute(COUNT_PENDING).scalar_one())
        return ActualsResult(received=len(rows), matched=len(rows) - unknown, unknown=unknown,
                             pending=pending)

    @reconnecting
    def pending_actuals(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(COUNT_PENDING).scalar_one())

    @reconnecting
    def query(self, model: str, *, version: str | None = None, environment: str | None = None,
              since: float | None = None, until: float | None = None,
              limit: int | None = None) -> pd.DataFrame:
        """Rows in time order; ``since`` inclusive, ``until`` exclusive; ``limit``: the newest N."""
        p = predictions.c
        stmt = sa.select(*(p[c] for c in COLUMNS)).where(p.model == model)
        if version is not None:
            stmt = stmt.where(p.version == version)
        if environment is not None:
            stmt = stmt.where(p.environment == environment)
        if since is not None:
            stmt = stmt.where(p.timestamp >= since)
        if until is not None:
            stmt = stmt.where(p.timestamp < until)
        if limit is not None:
            newest = stmt.order_by(p.timestamp.desc()).limit(int(limit)).subquery("t")
            stmt = sa.select(*(newest.c[c] for c in COLUMNS)).order_by(newest.c.timestamp)
        else:
            stmt = stmt.order_by(p.timestamp)
        with self._tx() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return empty_frame()
        return rows_frame(rows)

    @reconnecting
    def count(self, model: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(predictions)
        if model is not None:
            stmt = stmt.where(predictions.c.model == model)
        with self._tx() as conn:
            return int(conn.execute(stmt).scalar_one())

    @reconnecting
    def models(self) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(predictions.c.model).distinct().order_by(predictions.c.model))
            return [str(r[0]) for r in rows]

    @reconnecting
    def purge(self, older_than: float) -> int:
        with self._tx() as conn:
            deleted = conn.execute(sa.delete(predictions).where(predictions.c.timestamp < older_than))
            conn.execute(sa.delete(pending_actuals).where(pending_actuals.c.received_at < older_than))
        return int(deleted.rowcount)

    # ------------------------------------------------------------------ baselines
    @reconnecting
    def set_baseline(self, model: str, values: Mapping[str, Any], *, version: str | None = None,
                     kind: str = "performance") -> None:
        stmt = self._upsert(baselines).values(model=model, version=version or "", kind=kind,
                                              payload=dumps(dict(values)), updated_at=time.time())
        stmt = stmt.on_conflict_do_update(
            index_elements=["model", "version", "kind"],
            set_={"payload": stmt.excluded.payload, "updated_at": stmt.excluded.updated_at})
        with self._tx() as conn:
            conn.execute(stmt)

    @reconnecting
    def get_baseline(self, model: str, *, version: str | None = None,
                     kind: str = "performance") -> dict[str, Any] | None:
        """The version's own baseline, else the model-wide one, else None."""
        b = baselines.c
        with self._tx() as conn:
            for v in ([version] if version else []) + [""]:
                payload = conn.execute(sa.select(b.payload).where(b.model == model, b.version == v,
                                                                  b.kind == kind)).scalar()
                if payload is not None:
                    value = loads(payload)
                    return dict(value) if isinstance(value, dict) else None
        return None

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                with suppress(Exception):
                    self._conn.close()
                if self._engine is not None:
                    self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
