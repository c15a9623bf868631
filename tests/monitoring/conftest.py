"""Fixtures of the monitoring tests: one store of each kind, PostgreSQL in a database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.monitoring.store import MonitoringStore, open_store
from tests.conftest import PG_ADMIN, postgres_database


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    with postgres_database("mlops_monitoring") as name:
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


def _fresh_pg(url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        # every table of the store and its schema revision: the next open migrates from nothing
        cur.execute("DROP TABLE IF EXISTS predictions, pending_actuals, baselines, store_health, "
                    "mlops_predictions_schema")
    conn.close()


@pytest.fixture(params=["sqlite", "memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MonitoringStore]:
    kind = request.param
    if kind == "sqlite":
        s = open_store(None, repo_root=tmp_path)
    elif kind == "memory":
        s = open_store("memory://")
    else:
        url = request.getfixturevalue("pg_url")
        _fresh_pg(url)
        s = open_store(url)
    yield s
    s.close()
