"""In-memory prediction store for unit tests and the Python API's quick start."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mlops_actions.monitoring.store.interface import (
    COLUMNS,
    ActualsResult,
    PredictionRecord,
    StoreError,
    dumps,
    empty_frame,
    loads,
    rows_frame,
    validate_records,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """Same behaviour as the SQL stores (JSON round trip included), kept in dicts."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, tuple[Any, float, str]] = {}
        self._baselines: dict[tuple[str, str, str], str] = {}
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise StoreError("the in-memory prediction store is closed")

    def write(self, records: Sequence[PredictionRecord]) -> int:
        validate_records(records)
        new = 0
        with self._lock:
            self._check()
            for r in records:
                if r.request_id in self._rows:
                    continue
                self._rows[r.request_id] = {
                    "request_id": r.request_id, "model": r.model, "version": r.version,
                    "timestamp": float(r.timestamp), "features": dumps(dict(r.features)),
                    "output": dumps(r.output), "actual": None, "latency_ms": float(r.latency_ms),
                    "status": int(r.status), "environment": r.environment, "variant": r.variant}
                new += 1
            self._apply_pending()
        return new

    def _apply_pending(self) -> None:
        for rid in [k for k in self._pending if k in self._rows]:
            self._rows[rid]["actual"] = self._pending.pop(rid)[0]

    def record_actuals(self, actuals: Mapping[str, Any]) -> int:
        return self.attach_actuals(actuals).matched

    def attach_actuals(self, actuals: Mapping[str, Any]) -> ActualsResult:
        batch = uuid.uuid4().hex
        now = time.time()
        with self._lock:
            self._check()
            for k, v in actuals.items():
                self._pending[str(k)] = (dumps(v), now, batch)
            self._apply_pending()
            unknown = sum(1 for _, _, b in self._pending.values() if b == batch)
            return ActualsResult(len(actuals), len(actuals) - unknown, unknown, len(self._pending))

    def pending_actuals(self) -> int:
        with self._lock:
            return len(self._pending)

    def query(self, model: str, *, version: str | None = None, environment: str | None = None,
              since: float | None = None, until: float | None = None,
              limit: int | None = None) -> pd.DataFrame:
        with self._lock:
            self._check()
            rows = [dict(r) for r in self._rows.values() if r["model"] == model
                    and (version is None or r["version"] == version)
                    and (environment is None or r["environment"] == environment)
                    and (since is None or r["timestamp"] >= since)
                    and (until is None or r["timestamp"] < until)]
        rows.sort(key=lambda r: r["timestamp"])
        if limit is not None:
            rows = rows[-int(limit):] if limit > 0 else []
        if not rows:
            return empty_frame()
        return rows_frame([tuple(r[c] for c in COLUMNS) for r in rows])

    def count(self, model: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._rows.values() if model is None or r["model"] == model)

    def models(self) -> list[str]:
        with self._lock:
            return sorted({r["model"] for r in self._rows.values()})

    def purge(self, older_than: float) -> int:
        with self._lock:
            self._check()
            old = [k for k, r in self._rows.items() if r["timestamp"] < older_than]
            for k in old:
                del self._rows[k]
            for k in [k for k, p in self._pending.items() if p[1] < older_than]:
                del self._pending[k]
        return len(old)

    def set_baseline(self, model: str, values: Mapping[str, Any], *, version: str | None = None,
                     kind: str = "performance") -> None:
        with self._lock:
            self._check()
            self._baselines[(model, version or "", kind)] = dumps(dict(values)) or "{}"

    def get_baseline(self, model: str, *, version: str | None = None,
                     kind: str = "performance") -> dict[str, Any] | None:
        with self._lock:
            for v in ([version] if version else []) + [""]:
                if (model, v, kind) in self._baselines:
                    value = loads(self._baselines[(model, v, kind)])
                    return dict(value) if isinstance(value, dict) else None
        return None

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
