"""The prediction store's port and value types.

Re-exports :class:`PredictionRecord` and the :class:`PredictionStore` protocol
from :mod:`mlops_actions.monitoring.interface` (the shared contract with the
gateway) and adds what every implementation here offers beyond it: actuals
with a report of unknown request ids, baselines, counts.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mlops_actions.errors import MonitoringError
from mlops_actions.monitoring.interface import PredictionRecord, PredictionStore

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "ActualsResult",
    "MonitoringStore",
    "PredictionRecord",
    "PredictionStore",
    "StoreError",
    "features_frame",
    "new_request_id",
    "rows_frame",
]

#: Columns of :meth:`PredictionStore.query`, in order.
COLUMNS = ["request_id", "model", "version", "timestamp", "features", "output", "actual",
           "latency_ms", "status", "environment", "variant"]


class StoreError(MonitoringError):
    """The prediction store (SQLite file, PostgreSQL server) failed."""


@dataclass(frozen=True)
class ActualsResult:
    """What happened to a batch of late labels.

    ``unknown`` labels name request ids the store has not seen (yet): they are
    kept in a pending table and attached when the prediction arrives, so a
    label that overtakes its prediction is not lost. ``pending`` is the total
    still waiting in the store.
    """

    received: int
    matched: int
    unknown: int
    pending: int

    def summary(self) -> str:
        text = f"{self.matched} of {self.received} label(s) matched a logged prediction"
        if self.unknown:
            text += (f"; {self.unknown} name unknown request ids (kept as pending, {self.pending} "
                     "pending in total: check that the gateway logs predictions and that the "
                     "label feed uses the gateway's request ids)")
        return text


class MonitoringStore(PredictionStore, Protocol):
    """The port plus what monitoring needs: actuals report, baselines, counts."""

    def attach_actuals(self, actuals: Mapping[str, Any]) -> ActualsResult: ...

    def pending_actuals(self) -> int: ...

    def count(self, model: str | None = None) -> int: ...

    def set_baseline(self, model: str, values: Mapping[str, Any], *, version: str | None = None,
                     kind: str = "performance") -> None: ...

    def get_baseline(self, model: str, *, version: str | None = None,
                     kind: str = "performance") -> dict[str, Any] | None: ...

    def models(self) -> list[str]: ...


def new_request_id() -> str:
    """A time-ordered request id (UUID version 7 layout: 48-bit milliseconds, then random bits).

    Random ids (uuid4) land all over the store's primary-key index, so every
    batch dirties hundreds of pages; time-ordered ids append at its end, which
    makes logging 1.5-2x cheaper on SQLite (see docs/monitoring.md).
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 \
        | 0b10 << 62 | rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays -> plain Python, NaN -> None."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps_std(value: Any) -> str:
    try:
        return _STD_ENCODE(value)
    except ValueError:
        # NaN/inf inside a container: null rather than invalid JSON
        return _STD_ENCODE(_clean(value))


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    return value


_STD_ENCODE = json.JSONEncoder(separators=(",", ":"), default=_jsonable, allow_nan=False).encode

try:  # orjson is ~10x faster: it is what lets logging pass 50,000 rows/s
    import orjson

    _ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    def _dumps_fast(value: Any) -> str:
        try:
            return orjson.dumps(value, default=_jsonable, option=_ORJSON_OPTS).decode()
        except TypeError:  # e.g. an integer beyond 64 bits: the standard library copes
            return _dumps_std(value)

    _dumps = _dumps_fast
    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _dumps = _dumps_std
    _loads = json.loads


def dumps(value: Any) -> str | None:
    """JSON text of a value (numpy converted, NaN/inf as null); None stays None (SQL NULL)."""
    return None if value is None else _dumps(value)


def loads(text: str | None) -> Any:
    return None if text is None else _loads(text)


def record_row(r: PredictionRecord) -> tuple[Any, ...]:
    """A record as the row the SQL stores insert (features and output as JSON text)."""
    return (r.request_id, r.model, r.version, float(r.timestamp),
            _dumps(r.features) if r.features is not None else "{}", dumps(r.output),
            float(r.latency_ms), int(r.status), r.environment, r.variant)


def validate_records(records: Sequence[PredictionRecord]) -> None:
    for r in records:
        if not isinstance(r, PredictionRecord):
            raise TypeError(f"expected PredictionRecord, got {type(r).__name__}")
        if not r.request_id:
            raise StoreError("a prediction record has an empty request_id",
                             hint="the request id is the key of the store; give every request one")


def empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS}).astype(
        {"timestamp": float, "latency_ms": float, "status": "int64"})


def rows_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Raw rows in :data:`COLUMNS` order (JSON text in features/output/actual) -> the query frame.

    Columns are built by hand: pandas 3 would turn a text column with NULLs into
    a string dtype with NaN before the JSON could be decoded.
    """
    import pandas as pd

    cols = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    data: dict[str, Any] = {}
    for name, values in zip(COLUMNS, cols, strict=True):
        if name == "features":
            data[name] = pd.Series([loads(v) or {} for v in values], dtype=object)
        elif name in ("output", "actual"):
            data[name] = pd.Series([loads(v) for v in values], dtype=object)
        elif name in ("timestamp", "latency_ms"):
            data[name] = pd.Series(values, dtype=float)
        elif name == "status":
            data[name] = pd.Series(values, dtype="int64")
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def features_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The ``features`` column of :meth:`query` as one column per feature."""
    import pandas as pd

    if rows.empty:
        return pd.DataFrame()
    return pd.DataFrame.from_records(list(rows["features"]), index=rows.index)
