"""The gateway's state database of the release before migrations opens with this one, every row kept.

``RELEASE_N_SCHEMA`` and the inserts are that release's own SQL (``deploy/rollout/state.py``),
run through the bare sqlite3 driver as it did.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mlops_actions import dbschema
from mlops_actions.deploy.interface import Measurement, Route
from mlops_actions.deploy.rollout.state import StateDB, metadata
from mlops_actions.errors import TargetError
from mlops_actions.verdict import Verdict

RELEASE_N_SCHEMA = """
CREATE TABLE IF NOT EXISTS routes (environment TEXT, model TEXT, data TEXT, updated_at REAL,
                                   PRIMARY KEY (environment, model));
CREATE TABLE IF NOT EXISTS rollouts (id TEXT PRIMARY KEY, environment TEXT, model TEXT, data TEXT,
                                     phase TEXT, created_at REAL, updated_at REAL);
CREATE INDEX IF NOT EXISTS rollouts_model ON rollouts(environment, model, created_at);
CREATE TABLE IF NOT EXISTS analysis_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT,
                                          step INTEGER, data TEXT, at REAL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, environment TEXT, model TEXT,
                                    version TEXT, event TEXT, actor TEXT, detail TEXT, at REAL);
"""

TABLES = ("routes", "rollouts", "analysis_runs", "history")


def route(model: str, weight: int) -> Route:
    return Route(model=model, stable="1.0.0", stable_uri=f"models:/{model}/1", candidate="1.1.0",
                 candidate_uri=f"models:/{model}/2", mode="canary", weight=weight)


def write_release_n(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(RELEASE_N_SCHEMA)
    for i, model in enumerate(("churn", "fraud")):
        db.execute("INSERT OR REPLACE INTO routes VALUES (?,?,?,?)",
                   ("production", model, json.dumps(route(model, 10 * (i + 1)).to_dict()), 100.0 + i))
        for n in range(2):  # an older and a newer rollout per model
            data = {"id": f"{model}-{n}", "model": model, "phase": "Healthy" if n == 0 else "Paused"}
            db.execute("INSERT OR REPLACE INTO rollouts VALUES (?,?,?,?,?,?,?)",
                       (f"{model}-{n}", "production", model, json.dumps(data), data["phase"], 10.0 * n,
                        10.0 * n + 1))
    for step in range(3):
        m = Measurement("error_rate", Verdict.PASSED, 0.01 * step, 100, "ok", 50.0 + step)
        db.execute("INSERT INTO analysis_runs (rollout_id, step, data, at) VALUES (?,?,?,?)",
                   ("churn-1", step, json.dumps(m.to_dict()), m.at))
    for i in range(5):
        db.execute("INSERT INTO history (environment, model, version, event, actor, detail, at) "
                   "VALUES (?,?,?,?,?,?,?)",
                   ("production", "churn", f"1.{i}.0", "promoted", "ci", "", 60.0 + i))
    db.execute("DELETE FROM history WHERE id = 5")  # AUTOINCREMENT: id 5 is never given again
    db.commit()
    db.close()


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    out = {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    db.close()
    return out


def test_state_db_of_release_n_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    write_release_n(path)
    before = dump(path)

    state = StateDB(path)
    assert dump(path) == before  # every row of every table, unchanged
    assert set(state.routes("production")) == {"churn", "fraud"}
    assert state.routes("production")["fraud"] == route("fraud", 20)
    assert [m.value for m in state.measurements("churn-1")] == [0.0, 0.01, 0.02]
    versions = [h["version"] for h in state.history("production", "churn")]
    assert versions == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    latest = state._exec(sa.text("SELECT id FROM rollouts ORDER BY created_at DESC LIMIT 2"))
    assert sorted(r[0] for r in latest) == ["churn-1", "fraud-1"]

    # new writes, grouped and single, beside the old rows
    with state.atomic():
        state.save_route("production", route("churn", 50))
        state.add_history("production", "churn", "2.0.0", "canary", "ci", "step 2")
    assert state.routes("production")["churn"].weight == 50
    state.close()

    after = dump(path)
    assert after["routes"][1] == before["routes"][1]  # fraud's route untouched
    assert after["rollouts"] == before["rollouts"] and after["analysis_runs"] == before["analysis_runs"]
    assert after["history"][:4] == before["history"]
    assert after["history"][4][0] == 6  # AUTOINCREMENT kept its counter across the upgrade
    db = sqlite3.connect(path)
    assert db.execute(f"SELECT version_num FROM {dbschema.GATEWAY.version_table}").fetchall() == \
        [(dbschema.GATEWAY.head,)]
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_new_state_db_matches_the_tables_the_code_uses(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    StateDB(tmp_path / "gateway.db").close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": dbschema.GATEWAY.version_table, "compare_server_default": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_two_processes_opening_at_once_upgrade_once(tmp_path: Path) -> None:
    """Two gateways (threads here, each its own connection) open a release-N file together."""
    path = tmp_path / "gateway.db"
    write_release_n(path)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        try:
            start.wait()
            StateDB(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert dump(path)["history"][-1][3] == "1.3.0"


def test_a_state_db_from_a_newer_release_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    StateDB(path).close()
    db = sqlite3.connect(path)
    db.execute(f"UPDATE {dbschema.GATEWAY.version_table} SET version_num = 'f00d'")
    db.commit()
    db.close()
    with pytest.raises(TargetError) as info:
        StateDB(path)
    assert f"gateway state database {path} is at schema revision 'f00d'" in str(info.value)
    assert "upgrade mlops-actions" in str(info.value)


def test_a_failed_upgrade_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    """A state database altered by hand: the baseline cannot build its index on rollouts."""
    path = tmp_path / "gateway.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE rollouts (id TEXT PRIMARY KEY, data TEXT)")
    db.execute("INSERT INTO rollouts VALUES ('r1', '{}')")
    db.commit()
    with pytest.raises(TargetError) as info:
        StateDB(path)
    text = str(info.value)
    assert (f"cannot upgrade the gateway state database {path} from the schema of a release before "
            "migrations to revision '0001': no such column: environment") in text
    assert "rolled back" in text and "Traceback" not in text
    assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("rollouts",)]
    assert db.execute("SELECT * FROM rollouts").fetchall() == [("r1", "{}")]
    db.close()
