"""The gateway's own measurements: Prometheus metrics and the windows analysis reads.

Prometheus metrics live in the gateway's own ``CollectorRegistry`` (several
gateways can run in one test process). ``TrafficStats`` keeps, per model and
version, recent (time, latency, error) samples that the rollout controller
reads for error rate and latency percentiles over an analysis window.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics", "TrafficStats", "WindowStats"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlops_gateway_requests_total",
            "Scoring requests answered, by model, version, variant and status",
            ["environment", "model", "version", "variant", "status"], registry=self.registry)
        self.errors = Counter(
            "mlops_gateway_errors_total", "Scoring requests that failed (5xx), by model and version",
            ["environment", "model", "version"], registry=self.registry)
        self.latency = Histogram(
            "mlops_gateway_request_duration_seconds", "Scoring latency in the gateway, by model and version",
            ["environment", "model", "version"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.log_rejected = Counter(
            "mlops_gateway_prediction_log_rejected_total",
            "Requests answered 503 because the prediction log queue was full", registry=self.registry)
        self.log_queue = Gauge(
            "mlops_gateway_prediction_log_queue_depth", "Predictions waiting to be written",
            registry=self.registry)
        self.weight = Gauge(
            "mlops_rollout_canary_weight", "Percent of traffic routed to the candidate version",
            ["environment", "model"], registry=self.registry)
        self.phase = Gauge(
            "mlops_rollout_phase", "1 for the current phase of a model's rollout",
            ["environment", "model", "phase"], registry=self.registry)


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

    def window(self, model: str, version: str, since: float, until: float | None = None) -> WindowStats:
        end = time.time() if until is None else until
        samples = [s for s in list(self._samples.get((model, version), ())) if since <= s[0] < end]
        lat = sorted(s[1] for s in samples)
        return WindowStats(len(samples), sum(1 for s in samples if s[2]),
                           _percentile(lat, 0.95), _percentile(lat, 0.99))
