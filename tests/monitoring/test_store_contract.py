"""One contract, three stores: SQLite (file, WAL), in-memory, PostgreSQL (real server)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.errors import ConfigError
from mlops_actions.monitoring.store import (
    BatchWriter,
    MonitoringStore,
    PredictionRecord,
    StoreError,
    features_frame,
    open_store,
)


def rec(i: int, *, model: str = "churn", version: str = "1.0.0", ts: float = 1000.0,
        **kw: object) -> PredictionRecord:
    return PredictionRecord(request_id=f"r{i}", model=model, version=version, timestamp=ts + i,
                            features={"x": float(i), "city": "paris" if i % 2 else "lyon"},
                            output=i % 2, latency_ms=float(i), **kw)  # type: ignore[arg-type]


def test_write_is_idempotent_and_counts_new_rows(store: MonitoringStore) -> None:
    assert store.write([rec(i) for i in range(10)]) == 10
    assert store.write([rec(i) for i in range(5, 15)]) == 5  # 5..9 already there
    assert store.count("churn") == 15
    assert store.write([]) == 0


def test_query_round_trips_every_field_in_time_order(store: MonitoringStore) -> None:
    store.write([rec(3, status=503, environment="production", variant="canary"), rec(1), rec(2)])
    df = store.query("churn")
    assert list(df["request_id"]) == ["r1", "r2", "r3"]
    row = df.iloc[-1]
    assert row["features"] == {"x": 3.0, "city": "paris"}
    assert row["output"] == 1 and row["actual"] is None
    assert row["status"] == 503 and row["environment"] == "production" and row["variant"] == "canary"
    assert row["latency_ms"] == 3.0 and row["timestamp"] == 1003.0
    wide = features_frame(df)
    assert list(wide.columns) == ["x", "city"] and wide["x"].tolist() == [1.0, 2.0, 3.0]


def test_query_filters(store: MonitoringStore) -> None:
    store.write([rec(i, version="1.0.0" if i < 5 else "1.1.0") for i in range(10)]
                + [rec(100, model="other")])
    assert len(store.query("churn", version="1.1.0")) == 5
    assert len(store.query("churn", since=1002.0, until=1004.0)) == 2  # since inclusive, until exclusive
    newest = store.query("churn", limit=3)
    assert list(newest["request_id"]) == ["r7", "r8", "r9"]
    assert store.query("nobody").empty
    assert store.models() == ["churn", "other"]


def test_actuals_join_by_request_id_and_unknown_ids_are_kept(store: MonitoringStore) -> None:
    store.write([rec(i) for i in range(4)])
    result = store.attach_actuals({"r0": 1, "r1": 0, "ghost": 1})
    assert (result.received, result.matched, result.unknown, result.pending) == (3, 2, 1, 1)
    assert "unknown request ids" in result.summary()
    df = store.query("churn").set_index("request_id")
    assert df.loc["r0", "actual"] == 1 and df.loc["r1", "actual"] == 0 and df.loc["r2", "actual"] is None
    # the label overtook its prediction: attached when the prediction arrives, not lost
    store.write([PredictionRecord("ghost", "churn", "1.0.0", 2000.0, {"x": 1.0}, 0)])
    assert store.pending_actuals() == 0
    assert store.query("churn").set_index("request_id").loc["ghost", "actual"] == 1
    assert store.record_actuals({"r2": 1}) == 1  # the port's narrow form


def test_purge_by_age(store: MonitoringStore) -> None:
    store.write([rec(i) for i in range(10)])
    assert store.purge(older_than=1005.0) == 5
    assert store.query("churn")["request_id"].tolist() == [f"r{i}" for i in range(5, 10)]


def test_baselines_version_then_model_wide(store: MonitoringStore) -> None:
    assert store.get_baseline("churn") is None
    store.set_baseline("churn", {"accuracy": 0.9})
    store.set_baseline("churn", {"accuracy": 0.95}, version="2.0.0")
    assert store.get_baseline("churn") == {"accuracy": 0.9}
    assert store.get_baseline("churn", version="2.0.0") == {"accuracy": 0.95}
    assert store.get_baseline("churn", version="3.0.0") == {"accuracy": 0.9}
    store.set_baseline("churn", {"accuracy": 0.8})  # overwrite
    assert store.get_baseline("churn") == {"accuracy": 0.8}
    assert store.get_baseline("churn", kind="prediction") is None


def test_nan_and_numpy_values_are_stored_as_json(store: MonitoringStore) -> None:
    np = pytest.importorskip("numpy")
    store.write([PredictionRecord("n", "m", "1.0.0", 1.0, {"a": float("nan"), "b": np.float32(2.5)},
                                  np.array([0.1, 0.9]))])
    row = store.query("m").iloc[0]
    assert row["features"] == {"a": None, "b": 2.5}
    assert row["output"] == pytest.approx([0.1, 0.9])


def test_concurrent_writers_and_readers_lose_nothing(store: MonitoringStore) -> None:
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for b in range(10):
                store.write([rec(w * 10_000 + b * 100 + i) for i in range(100)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(10):
                store.query("churn", limit=50)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)] + \
              [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert store.count("churn") == 3000


def test_batch_writer_flushes_everything_on_close(store: MonitoringStore) -> None:
    writer = BatchWriter(store, batch_size=64, interval=0.01)
    for i in range(1000):
        assert writer.submit(rec(i))
    writer.submit(rec(5))  # duplicate request id: ignored by the store
    stats = writer.close()
    assert stats.written == 1000 and stats.pending == 0 and stats.dropped == 0
    assert store.count("churn") == 1000


def test_closed_store_says_so(store: MonitoringStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.write([rec(1)])


def test_batch_writer_keeps_failed_batches_and_bounds_memory() -> None:
    class Down:
        def __init__(self) -> None:
            self.up = False
            self.rows: dict[str, PredictionRecord] = {}

        def write(self, records: list[PredictionRecord]) -> int:
            if not self.up:
                raise StoreError("database down")
            new = [r for r in records if r.request_id not in self.rows]
            self.rows.update({r.request_id: r for r in new})
            return len(new)

    down = Down()
    writer = BatchWriter(down, batch_size=10, interval=0.01, max_pending=50)  # type: ignore[arg-type]
    accepted = sum(writer.submit(rec(i)) for i in range(60))
    assert writer.flush() == 0  # the database is down: nothing written, the batch kept
    stats = writer.stats()
    assert stats.failures >= 1 and stats.last_error == "database down"
    down.up = True
    final = writer.close()
    assert final.dropped == 60 - accepted and final.dropped >= 10
    assert len(down.rows) == accepted and final.pending == 0


def test_open_store_urls(tmp_path: Path) -> None:
    s = open_store("sqlite:///sub/p.db", repo_root=tmp_path)
    s.close()
    assert (tmp_path / "sub" / "p.db").exists()
    s = open_store(f"sqlite:///{tmp_path / 'abs.db'}")
    s.close()
    assert (tmp_path / "abs.db").exists()
    with pytest.raises(ConfigError, match=r"valid schemes: sqlite:///, postgresql://"):
        open_store("mysql://x/y")
    with pytest.raises(ConfigError, match="names no file"):
        open_store("sqlite:///")


def test_default_store_honours_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_PREDICTION_STORE", "memory://")
    s = open_store(None, repo_root=tmp_path)
    assert type(s).__name__ == "MemoryStore"
    monkeypatch.delenv("MLOPS_PREDICTION_STORE")
    s = open_store(None, repo_root=tmp_path)
    s.close()
    assert (tmp_path / ".mlops" / "predictions.db").exists()


@pytest.mark.postgres
def test_postgres_unreachable_is_a_store_error() -> None:
    from mlops_actions.errors import EXIT_EXTERNAL

    with pytest.raises(StoreError) as info:
        open_store("postgresql://postgres:secret@127.0.0.1:1/nodb")
    assert exit_code_for(info.value) == EXIT_EXTERNAL
    assert "secret" not in str(info.value)


def test_duplicate_ids_within_one_batch_keep_the_first(store: MonitoringStore) -> None:
    first = PredictionRecord("dup", "m", "1.0.0", 1.0, {"x": 1}, output=None)
    second = PredictionRecord("dup", "m", "1.0.0", 1.0, {"x": 1}, output="later")
    assert store.write([first, rec(1), second]) == 2
    assert store.query("m").iloc[0]["output"] is None


def test_sqlite_checkpoints_beside_the_writes_not_inside_them(tmp_path: Path) -> None:
    """The commit that crosses SQLite's automatic checkpoint stalled every request waiting for
    it (the gateway answers after the commit): the writer turns automatic checkpoints off and a
    thread copies the WAL back into the database on its own connection."""
    import sqlite3
    import time

    from mlops_actions.monitoring.store.sqlite import SQLiteStore

    db = tmp_path / "p.db"
    store = SQLiteStore(db)
    try:
        raw = store._conn.connection.driver_connection
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        empty = db.stat().st_size
        # ~2 MB of rows: under the 1,000-page (4 MB) mark where SQLite would checkpoint itself
        for batch in range(20):
            store.write([PredictionRecord(f"r{batch}-{i}", "churn", "1.0.0", 1000.0 + i,
                                          {"text": "x" * 1000}, 0) for i in range(100)])
        deadline = time.monotonic() + 20
        while db.stat().st_size < empty + 1_000_000:  # the pages reach the database file
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            time.sleep(0.05)
        reader = sqlite3.connect(db)
        assert reader.execute("SELECT count(*) FROM predictions").fetchone()[0] == 2000
        reader.close()
    finally:
        store.close()
    assert store._checkpointer is not None and not store._checkpointer.is_alive()
