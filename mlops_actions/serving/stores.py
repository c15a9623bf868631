"""Prediction stores the gateway can write to, by URL.

``memory://`` keeps rows in the process (tests, benchmarks without a disk);
``sqlite:///path.db`` is a small WAL SQLite store. When the monitoring
package's store is available (``mlops_actions.monitoring.store.open_store``),
it is used for every URL, so the gateway and ``monitor`` share one format.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_actions.errors import ConfigError, MonitoringError
from mlops_actions.monitoring.interface import PredictionRecord, PredictionStore

__all__ = ["MemoryPredictionStore", "SqlitePredictionStore", "open_store"]

COLUMNS = ["request_id", "model", "version", "timestamp", "features", "output", "actual",
           "latency_ms", "status", "environment", "variant"]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


class MemoryPredictionStore:
    """The PredictionStore port in memory."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def write(self, records: Sequence[PredictionRecord]) -> int:
        new = 0
        with self._lock:
            for r in records:
                if r.request_id not in self._rows:
                    self._rows[r.request_id] = {
                        "request_id": r.request_id, "model": r.model, "version": r.version,
                        "timestamp": r.timestamp, "features": dict(r.features), "output": r.output,
                        "actual": None, "latency_ms": r.latency_ms, "status": r.status,
                        "environment": r.environment, "variant": r.variant}
                    new += 1
        return new

    def record_actuals(self, actuals: Mapping[str, Any]) -> int:
        matched = 0
        with self._lock:
            for rid, value in actuals.items():
                if rid in self._rows:
                    self._rows[rid]["actual"] = value
                    matched += 1
        return matched

    def query(self, model: str, *, version: str | None = None, environment: str | None = None,
              since: float | None = None, until: float | None = None,
              limit: int | None = None) -> pd.DataFrame:
        with self._lock:
            rows = [dict(r) for r in self._rows.values() if r["model"] == model
                    and (version is None or r["version"] == version)
                    and (environment is None or r["environment"] == environment)
                    and (since is None or r["timestamp"] >= since)
                    and (until is None or r["timestamp"] < until)]
        rows.sort(key=lambda r: r["timestamp"])
        return _frame(rows[-limit:] if limit else rows)

    def purge(self, older_than: float) -> int:
        with self._lock:
            old = [k for k, r in self._rows.items() if r["timestamp"] < older_than]
            for k in old:
                del self._rows[k]
        return len(old)

    def close(self) -> None:
        return None


class SqlitePredictionStore:
    """A small SQLite (WAL) store; the request id is the primary key."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS predictions (request_id TEXT PRIMARY KEY, model TEXT, "
                "version TEXT, timestamp REAL, features TEXT, output TEXT, actual TEXT, "
                "latency_ms REAL, status INTEGER, environment TEXT, variant TEXT)")
            self._db.execute("CREATE INDEX IF NOT EXISTS predictions_model_ts "
                             "ON predictions(model, timestamp)")
            self._db.commit()
        except sqlite3.Error as exc:
            raise MonitoringError(f"cannot open prediction store {self.path}: {exc}") from None

    def write(self, records: Sequence[PredictionRecord]) -> int:
        rows = [(r.request_id, r.model, r.version, r.timestamp, json.dumps(dict(r.features), default=str),
                 json.dumps(r.output, default=str), None, r.latency_ms, r.status, r.environment, r.variant)
                for r in records]
        with self._lock:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self._db.commit()
            return self._db.total_changes - before

    def record_actuals(self, actuals: Mapping[str, Any]) -> int:
        with self._lock:
            before = self._db.total_changes
            self._db.executemany("UPDATE predictions SET actual=? WHERE request_id=?",
                                 [(json.dumps(v), k) for k, v in actuals.items()])
            self._db.commit()
            return self._db.total_changes - before

    def query(self, model: str, *, version: str | None = None, environment: str | None = None,
              since: float | None = None, until: float | None = None,
              limit: int | None = None) -> pd.DataFrame:
        sql = "SELECT * FROM predictions WHERE model=?"
        params: list[Any] = [model]
        for column, op, value in (("version", "=", version), ("environment", "=", environment),
                                  ("timestamp", ">=", since), ("timestamp", "<", until)):
            if value is not None:
                sql += f" AND {column}{op}?"
                params.append(value)
        sql += " ORDER BY timestamp"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        if limit:
            rows = rows[-limit:]
        out = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
        for r in out:
            r["features"] = json.loads(r["features"])
            r["output"] = json.loads(r["output"])
            r["actual"] = json.loads(r["actual"]) if r["actual"] is not None else None
        return _frame(out)

    def purge(self, older_than: float) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM predictions WHERE timestamp < ?", (older_than,))
            self._db.commit()
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(url: str) -> PredictionStore:
    """``memory://`` or ``sqlite:///path``; the monitoring package's factory when it exists."""
    try:
        from mlops_actions.monitoring import store as monitoring_store  # type: ignore[attr-defined]
    except ImportError:
        monitoring_store = None
    if monitoring_store is not None and hasattr(monitoring_store, "open_store"):
        result: PredictionStore = monitoring_store.open_store(url)
        return result
    if url == "memory://":
        return MemoryPredictionStore()
    if url.startswith("sqlite:///"):
        return SqlitePredictionStore(url[len("sqlite:///"):])
    raise ConfigError(f"prediction store URL {url!r} is not supported",
                      hint="use memory:// or sqlite:///path/to/predictions.db")

