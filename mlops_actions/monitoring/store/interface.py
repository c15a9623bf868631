"""The prediction store's port and value types.

Re-exports :class:`PredictionRecord` and the :class:`PredictionStore` protocol
from :mod:`mlops_actions.monitoring.interface` (the shared contract with the
gateway) and adds what every implementation here offers beyond it: actuals
with a report of unknown request ids, baselines, counts.
"""

from __future__ import annotations

import json
import math
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


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays -> plain Python, NaN -> None."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), default=_jsonable, allow_nan=False)
    except ValueError:
        # NaN/inf inside a container: replace by null rather than writing invalid JSON
        return json.dumps(_clean(value), separators=(",", ":"), default=_jsonable)


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


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def record_row(r: PredictionRecord) -> tuple[Any, ...]:
    """A record as the row the SQL stores insert (features and output as JSON text)."""
    return (r.request_id, r.model, r.version, float(r.timestamp),
            dumps(dict(r.features)) if r.features is not None else "{}", dumps(r.output),
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
