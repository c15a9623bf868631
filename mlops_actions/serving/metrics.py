"""The traffic windows the rollout engine reads through the gateway plane (error rate, latency percentiles).

``TrafficStats`` keeps, per model and version, recent (time, latency, error)
samples. Prometheus metrics are ``mlops_actions.monitoring.metrics.gateway_metrics``
(names shared with alerting, dashboards and the Kubernetes AnalysisTemplates).
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass

__all__ = ["TrafficStats", "WindowStats"]

@dataclass(frozen=True)
class WindowStats:
    requests: int
    errors: int
    latency_p95_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[k]


class TrafficStats:
    """Recent samples per (model, version); bounded memory."""

    def __init__(self, max_samples: int = 200_000) -> None:
        self._samples: dict[tuple[str, str], collections.deque[tuple[float, float, bool]]] = {}
        self._max = max_samples

    def record(self, model: str, version: str, latency_ms: float, error: bool,
               at: float | None = None) -> None:
        key = (model, version)
        dq = self._samples.get(key)
        if dq is None:
            dq = self._samples[key] = collections.deque(maxlen=self._max)
        dq.append((time.time() if at is None else at, latency_ms, error))

    def samples(self, model: str, version: str, since: float,
                until: float | None = None) -> list[tuple[float, float, bool]]:
        """The (time, latency ms, error) samples of [since, until)."""
        end = time.time() if until is None else until
        return [s for s in list(self._samples.get((model, version), ())) if since <= s[0] < end]

    def window(self, model: str, version: str, since: float, until: float | None = None) -> WindowStats:
        samples = self.samples(model, version, since, until)
        lat = sorted(s[1] for s in samples)
        return WindowStats(len(samples), sum(1 for s in samples if s[2]),
                           _percentile(lat, 0.95), _percentile(lat, 0.99))
