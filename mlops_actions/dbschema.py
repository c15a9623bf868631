"""Schema migrations of the toolkit's own databases, run by alembic in code when a database opens.

Two databases have a schema of their own: the prediction store (SQLite or
PostgreSQL, ``mlops_actions/monitoring/store/migrations/``) and the gateway's
state database (SQLite, ``mlops_actions/deploy/migrations/``). Each keeps its
revision in a version table of its own (:data:`PREDICTIONS` / :data:`GATEWAY`),
so both can live in one PostgreSQL database beside an application's own
``alembic_version``.

:func:`upgrade` is called on every open. It reads the version table and, when
the revision is the newest this release knows (the usual case), returns without
importing alembic. Otherwise it runs ``alembic upgrade head`` on the open
connection, with a :class:`alembic.config.Config` built here (users need no
``alembic.ini``), inside one transaction that holds the database's write lock
(SQLite ``BEGIN IMMEDIATE``; a PostgreSQL advisory lock), so two processes that
open the same database at once upgrade it once; a failed upgrade rolls back
and leaves the database as it was.

The first revision of each chain (``0001``) is the schema every release before
migrations wrote with ``CREATE TABLE IF NOT EXISTS``: it creates only what is
missing, so a database written by such a release (no version table) is
upgraded in place and keeps every row.

New schema change: add a revision file next to the others (``down_revision``
= the previous head), make the :class:`sqlalchemy.MetaData` in the store's
module match, and bump the ``head`` of the :class:`Chain` below;
``tests/test_dbschema.py`` checks the three agree.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from mlops_actions.errors import MlopsActionsError

__all__ = ["GATEWAY", "PREDICTIONS", "Chain", "current_revision", "driver_message", "sqlite_engine",
           "upgrade"]

_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Chain:
    """One database's migrations: where the revision files are, where the revision is kept."""

    name: str  # what the database is, for messages ("prediction store")
    script_location: Path
    version_table: str
    head: str  # the newest revision in script_location (checked by a test)

    @property
    def lock_key(self) -> int:
        """PostgreSQL advisory lock id: stable across processes and releases."""
        return zlib.crc32(self.version_table.encode())


PREDICTIONS = Chain("prediction store", _PACKAGE / "monitoring" / "store" / "migrations",
                    "mlops_predictions_schema", head="0001")
GATEWAY = Chain("gateway state database", _PACKAGE / "deploy" / "migrations",
                "mlops_gateway_schema", head="0001")


def sqlite_engine(path: str, *, begin: str = "BEGIN IMMEDIATE") -> sa.Engine:
    """An engine for one SQLite file in WAL mode whose transactions start with ``begin``.

    pysqlite's own transaction handling is turned off (``isolation_level=None``) and
    SQLAlchemy emits ``begin`` itself: SQLAlchemy's documented recipe, so that a
    transaction that will write takes the write lock at its start (``IMMEDIATE``)
    and waits ``busy_timeout`` for it, instead of failing on upgrade from a read lock.
    """
    url = sa.URL.create("sqlite", database=path)
    engine = sa.create_engine(url, poolclass=NullPool,
                              connect_args={"timeout": 30.0, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # on the driver's connection: exec_driver_sql would cost a SQLAlchemy execution context
        # per transaction, a third of the CPU of writing a small batch
        conn.connection.driver_connection.execute(conn.info.get("sqlite_begin", begin))  # type: ignore[union-attr]

    return engine


def driver_message(exc: BaseException) -> str:
    """The database driver's own message: SQLAlchemy's wrapper adds the SQL and its parameters
    (whole batches of features, say), which an error message must not carry."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return str(orig if orig is not None else exc).strip()


def current_revision(connection: sa.Connection, chain: Chain) -> str | None:
    """The revision the database is at; None when it has no version table (new, or written
    by a release before migrations)."""
    if not sa.inspect(connection).has_table(chain.version_table):
        return None
    row = connection.execute(sa.text(f"SELECT version_num FROM {chain.version_table}")).first()
    return None if row is None else str(row[0])


def upgrade(connection: sa.Connection, chain: Chain, *, where: str,
            error: type[MlopsActionsError]) -> None:
    """Bring the database behind ``connection`` (idle: no transaction open) to ``chain.head``.

    ``where`` names the database in messages (a path or a URL without password);
    a failure raises ``error`` saying which database, from which revision, and
    what to do: never a traceback, and the database is left unchanged.
    """
    current: str | None = None
    try:
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": chain.lock_key})
            current = current_revision(connection, chain)
            if current == chain.head:
                return
            _run_alembic(connection, chain)
    except MlopsActionsError:
        raise
    except Exception as exc:
        raise _failure(chain, where, current, exc, error) from None


def _run_alembic(connection: sa.Connection, chain: Chain) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(chain.script_location))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = chain.version_table
    current = current_revision(connection, chain)
    if current is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(current)
        except Exception:
            raise NewerSchema(current) from None
    command.upgrade(config, "head")


class NewerSchema(Exception):
    """The database is at a revision this release does not know."""


def _failure(chain: Chain, where: str, current: str | None, exc: BaseException,
             error: type[MlopsActionsError]) -> MlopsActionsError:
    text = driver_message(exc)
    reason = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, NewerSchema):
        return error(
            f"the {chain.name} {where} is at schema revision {current!r}, which this release of "
            f"mlops-actions does not know (it knows up to {chain.head!r}): a newer release wrote it",
            hint="upgrade mlops-actions to the release that wrote it, or restore the backup taken "
                 "before that upgrade (docs/reliability.md, 'Upgrading')")
    start = f"revision {current!r}" if current else "the schema of a release before migrations"
    return error(
        f"cannot upgrade the {chain.name} {where} from {start} to revision {chain.head!r}: {reason}",
        hint="the upgrade ran in one transaction and was rolled back, so the database is unchanged; "
             "check that it is writable and not in use by an older release, then start again, or "
             f"restore a backup (docs/reliability.md, 'Upgrading'); migrations: {chain.script_location}")


def run_env() -> None:
    """The body of each chain's ``env.py``: migrate the connection :func:`upgrade` passed in."""
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only reached by the alembic CLI, which we do not use
        raise RuntimeError("these migrations run from mlops_actions.dbschema.upgrade, not the alembic CLI")
    context.configure(connection=connection, version_table=config.attributes["version_table"],
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
