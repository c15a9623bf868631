"""The PredictionStore port, shared by the gateway (writes) and monitoring (reads).

SQLite (WAL) is the embedded default, PostgreSQL the scale-out path. Writes
are batched and idempotent: the request id is the key, so a retried batch
never duplicates a row. Late ground truth ("actuals") joins by request id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PredictionRecord", "PredictionStore"]


@dataclass(frozen=True)
class PredictionRecord:
    request_id: str
    model: str
    version: str  # semver of the version that answered
    timestamp: float  # seconds since the epoch
    features: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable
    output: Any = None  # JSON-serialisable prediction
    latency_ms: float = 0.0
    status: int = 200  # HTTP status of the answer; >= 500 counts as an error
    environment: str = ""
    variant: str = ""  # stable, canary, b, preview, shadow


class PredictionStore(Protocol):
    def write(self, records: Sequence[PredictionRecord]) -> int:
        """Insert a batch; rows whose request id exists are ignored. Returns rows new."""
        ...

    def record_actuals(self, actuals: Mapping[str, Any]) -> int:
        """Attach late labels by request id; returns how many request ids matched."""
        ...

    def query(self, model: str, *, version: str | None = None, environment: str | None = None,
              since: float | None = None, until: float | None = None,
              limit: int | None = None) -> pd.DataFrame:
        """Rows as a DataFrame: request_id, model, version, timestamp, features (dict),
        output, actual, latency_ms, status, environment, variant."""
        ...

    def purge(self, older_than: float) -> int:
        """Delete rows older than a timestamp (retention); returns rows deleted."""
        ...

    def close(self) -> None: ...
