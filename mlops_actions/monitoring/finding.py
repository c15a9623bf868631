"""One check's outcome, flat: what monitoring's checks, the A/B analysis, reports and alert
sinks share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_actions.verdict import Verdict

__all__ = ["Finding"]


@dataclass(frozen=True)
class Finding:
    """One check's outcome, flat, for alert sinks and reports. ``key`` is stable across runs
    (dedup: the same key firing again is the same alert; absent later = resolved)."""

    model: str
    environment: str
    kind: str  # performance, data_drift, prediction_drift, quality
    name: str  # metric or column ("*" for the dataset)
    verdict: Verdict
    message: str
    value: float | None = None
    limit: float | None = None
    version: str | None = None
    variant: str = ""  # the gateway variant (stable, canary, b) when checks run per variant

    @property
    def key(self) -> str:
        return f"{self.environment}/{self.model}/{self.kind}/{self.name}" + (
            f"@{self.variant}" if self.variant else "")

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "model": self.model, "version": self.version,
                "environment": self.environment, "variant": self.variant, "kind": self.kind,
                "name": self.name,
                "verdict": self.verdict.value, "message": self.message, "value": self.value,
                "limit": self.limit}
