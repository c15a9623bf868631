"""A prediction store written by the release before migrations opens with this one and keeps every row.

``RELEASE_N_SCHEMA`` and the inserts below are that release's own SQL (copied
from its ``monitoring/store/_sql.py``), run through the bare driver: the
database is what a user upgrading from it has on disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mlops_actions import dbschema
from mlops_actions.monitoring.store import PredictionRecord, StoreError, open_store
from mlops_actions.monitoring.store._sql import metadata
from tests.conftest import PG_ADMIN, postgres_database

RELEASE_N_SCHEMA = [
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
    "CREATE TABLE IF NOT EXISTS store_health (id INTEGER PRIMARY KEY, probed_at DOUBLE PRECISION)",
]

TABLES = {  # table -> its key, to read every row back in a stable order
    "predictions": "request_id", "pending_actuals": "request_id",
    "baselines": "model, version, kind", "store_health": "id",
}

ROWS = 500


def write_release_n(conn: Any, ph: str) -> None:
    """Release N's schema and rows of every kind, through the DB-API connection ``conn``."""
    cur = conn.cursor()
    for stmt in RELEASE_N_SCHEMA:
        cur.execute(stmt)
    cols = ("request_id, model, version, timestamp, features, output, latency_ms, status, "
            "environment, variant")
    rows = [(f"old{i}", "churn" if i % 3 else "fraud", "1.0.0" if i < ROWS // 2 else "1.1.0", 1000.0 + i,
             f'{{"x": {i}, "city": "lyon"}}', str(i % 2), float(i) / 10, 200 if i % 50 else 503,
             "production", "canary" if i % 7 == 0 else "stable") for i in range(ROWS)]
    cur.executemany(f"INSERT INTO predictions ({cols}) VALUES ({', '.join([ph] * 10)})", rows)
    cur.execute(f"UPDATE predictions SET actual = {ph}, actual_at = {ph} WHERE request_id = {ph}",
                ("1", 2000.0, "old1"))
    cur.execute(f"INSERT INTO pending_actuals (request_id, actual, received_at, batch) "
                f"VALUES ({ph}, {ph}, {ph}, {ph})", ("late-label", "0", 1500.0, "b1"))
    cur.execute(f"INSERT INTO baselines (model, version, kind, payload, updated_at) "
                f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph})",
                ("churn", "", "performance", '{"accuracy": 0.91}', 1.0))
    cur.execute(f"INSERT INTO store_health (id, probed_at) VALUES (1, {ph})", (3.0,))
    conn.commit()
    cur.close()


def dump(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    cur = conn.cursor()
    out = {}
    for table, key in TABLES.items():
        cur.execute(f"SELECT * FROM {table} ORDER BY {key}")
        out[table] = [tuple(r) for r in cur.fetchall()]
    cur.close()
    conn.commit()
    return out


def check_upgrade(url: str, connect: Callable[[], Any], ph: str) -> None:
    raw = connect()
    write_release_n(raw, ph)
    before = dump(raw)
    assert len(before["predictions"]) == ROWS

    store = open_store(url)
    after = dump(raw)
    assert after == before  # every row of every table, every column, unchanged
    engine_url = url if url.startswith("sqlite") else url.replace("postgresql://", "postgresql+psycopg2://")
    engine = sa.create_engine(engine_url)
    with engine.connect() as conn:
        assert dbschema.current_revision(conn, dbschema.PREDICTIONS) == dbschema.PREDICTIONS.head
    engine.dispose()

    # the old rows read through the new code, and new writes work beside them
    assert store.count() == ROWS
    old = store.query("churn").set_index("request_id")
    assert old.loc["old1", "actual"] == 1 and old.loc["old1", "features"] == {"x": 1, "city": "lyon"}
    assert store.get_baseline("churn") == {"accuracy": 0.91}
    assert store.pending_actuals() == 1
    new = [PredictionRecord(f"new{i}", "churn", "2.0.0", 5000.0 + i, {"x": i}, i % 2) for i in range(10)]
    new.append(PredictionRecord("late-label", "churn", "2.0.0", 6000.0, {"x": -1}, 1))
    assert store.write([*new, PredictionRecord("old2", "churn", "1.0.0", 1.0, {}, 0)]) == 11  # old2 known
    assert store.pending_actuals() == 0  # release N's pending label met its prediction
    assert store.query("churn", version="2.0.0").set_index("request_id").loc["late-label", "actual"] == 0
    assert store.attach_actuals({"old4": 1, "new3": 0}).matched == 2
    store.set_baseline("churn", {"accuracy": 0.95})
    assert store.get_baseline("churn") == {"accuracy": 0.95}
    store.probe()
    assert store.count() == ROWS + 11
    store.close()

    # and it opens again (already at head: no migration) with everything
    again = open_store(url)
    assert again.count() == ROWS + 11
    again.close()
    final = dump(raw)
    assert {r for r in before["predictions"] if r[0] != "old4"} <= set(final["predictions"])  # old4: labelled
    raw.close()


def test_sqlite_store_of_release_n_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    check_upgrade(f"sqlite:///{path}", lambda: sqlite3.connect(path), "?")


@pytest.fixture
def pg_database() -> Iterator[str]:
    with postgres_database("mlops_upgrade") as name:
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


@pytest.mark.postgres
def test_postgres_store_of_release_n_is_upgraded_in_place(pg_database: str) -> None:
    import psycopg2

    check_upgrade(pg_database, lambda: psycopg2.connect(pg_database, connect_timeout=5), "%s")


@pytest.mark.postgres
def test_postgres_store_keeps_its_revision_apart_from_an_applications_alembic_version(
        pg_database: str) -> None:
    import psycopg2

    raw = psycopg2.connect(pg_database, connect_timeout=5)
    with raw.cursor() as cur:  # the database also holds some application migrated by alembic
        cur.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        cur.execute("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
    raw.commit()
    open_store(pg_database).close()
    with raw.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchall() == [("ae1027a6acf",)]
        cur.execute(f"SELECT version_num FROM {dbschema.PREDICTIONS.version_table}")
        assert cur.fetchall() == [(dbschema.PREDICTIONS.head,)]
    raw.close()


def schema_diff(url: str) -> list[Any]:
    """What alembic's autogenerate would change to make the database match ``metadata``.

    Types are compared on PostgreSQL only: SQLite reflects every floating type as REAL."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": dbschema.PREDICTIONS.version_table, "compare_server_default": True,
            "compare_type": engine.dialect.name != "sqlite"})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    return list(diff)


def test_migrations_build_exactly_the_tables_the_code_uses(tmp_path: Path) -> None:
    """A new database (migrated from nothing) and an upgraded one both match ``metadata``."""
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    open_store(fresh).close()
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    write_release_n(conn, "?")
    conn.close()
    open_store(f"sqlite:///{old}").close()
    assert schema_diff(fresh) == []
    # one difference is release N's and harmless: its primary keys were declared without NOT NULL,
    # which SQLite reflects as nullable (and, but for INTEGER keys, allows; the store never writes a
    # NULL key); rebuilding a large prediction log to add the constraint is not worth it
    diff = [d for group in schema_diff(f"sqlite:///{old}") for d in group]
    assert {(d[0], d[2], d[3]) for d in diff} <= {
        ("modify_nullable", table, column) for table, column in (
            ("predictions", "request_id"), ("pending_actuals", "request_id"), ("baselines", "model"),
            ("baselines", "version"), ("baselines", "kind"), ("store_health", "id"))}, diff


@pytest.mark.postgres
def test_postgres_migrations_build_exactly_the_tables_the_code_uses(pg_database: str) -> None:
    open_store(pg_database).close()
    assert schema_diff(pg_database) == []


def test_a_database_from_a_newer_release_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "predictions.db"
    open_store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE {dbschema.PREDICTIONS.version_table} SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        open_store(f"sqlite:///{path}")
    text = str(info.value)
    assert f"prediction store sqlite:///{path} is at schema revision '9999'" in text
    assert "upgrade mlops-actions" in text and "Traceback" not in text


def test_a_failed_upgrade_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    """A release-N database someone altered by hand: the baseline cannot add its index."""
    path = tmp_path / "predictions.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE predictions (request_id TEXT PRIMARY KEY, payload TEXT)")
    conn.execute("INSERT INTO predictions VALUES ('r1', 'kept')")
    conn.commit()
    with pytest.raises(StoreError) as info:
        open_store(f"sqlite:///{path}")
    text = str(info.value)
    assert (f"cannot upgrade the prediction store sqlite:///{path} from the schema of a release before "
            "migrations to revision '0001'") in text
    assert "no such column: model" in text
    assert "rolled back" in text and "migrations" in text and "Traceback" not in text
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"predictions"}  # no version table, no half-built schema
    assert conn.execute("SELECT * FROM predictions").fetchall() == [("r1", "kept")]
    conn.close()


def test_chain_heads_match_the_revision_files() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    for chain in (dbschema.PREDICTIONS, dbschema.GATEWAY):
        config = Config()
        config.set_main_option("script_location", str(chain.script_location))
        assert ScriptDirectory.from_config(config).get_heads() == [chain.head], chain.name


def test_opening_a_database_at_head_does_not_load_alembic(tmp_path: Path) -> None:
    """Every start but the first after an upgrade: one SELECT, no alembic import (startup time)."""
    import subprocess
    import sys

    store_url = f"sqlite:///{tmp_path / 'predictions.db'}"
    code = ("import sys\n"
            "from mlops_actions.monitoring.store import open_store\n"
            "from mlops_actions.deploy.rollout.state import StateDB\n"
            f"open_store({store_url!r}).close()\n"
            f"StateDB({str(tmp_path / 'gateway.db')!r}).close()\n"
            "print('alembic' in sys.modules)\n")

    def run() -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[2]).stdout.strip()

    assert run() == "True"  # new databases: migrated from nothing
    assert run() == "False"  # both at head now
