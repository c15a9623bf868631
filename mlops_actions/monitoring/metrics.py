"""Prometheus metric names: the shared vocabulary of the gateway, the exporter,
the alerting rules, the Grafana dashboards and the Argo AnalysisTemplates.

Every metric is created on a caller-given :class:`CollectorRegistry`, never on
prometheus-client's global one, so two gateways (or a test and a gateway) in one
process never collide. Names follow Prometheus conventions: base units
(seconds, ratios 0..1), ``_total`` on counters, and only bounded labels:

- ``model``: a model directory under ``models/`` (declared in git)
- ``version``: a semver pinned in an environment (a handful live at once)
- ``environment``: an ``environments/*.yaml`` name
- ``variant``: one of :data:`VARIANTS`
- ``code``: the HTTP status class (``2xx``, ``4xx``, ``5xx``), never the raw code
- ``feature``: a feature declared in model.yaml (``data.features`` or
  ``monitoring.drift.features``); callers must drop undeclared names
  (:func:`bounded_features` does it)
- ``metric``: one of :data:`MODEL_METRICS`
- ``method``: one of :data:`DRIFT_METHODS`

The table for humans is ``docs/metrics.md``; keep both in step.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

__all__ = [
    "DRIFT_METHODS",
    "DURATION_BUCKETS",
    "MODEL_METRICS",
    "VARIANTS",
    "GatewayMetrics",
    "MonitoringMetrics",
    "RouteMetrics",
    "bounded_features",
    "gateway_metrics",
    "monitoring_metrics",
    "process_metrics",
    "status_class",
]

#: Values of the ``variant`` label.
VARIANTS: tuple[str, ...] = ("stable", "canary", "b", "preview", "shadow")

#: Values of the ``metric`` label of ``mlops_model_metric``.
MODEL_METRICS: tuple[str, ...] = (
    "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
    "rmse", "mae", "r2", "mse",
)

#: Values of the ``method`` label of ``mlops_feature_drift_score``.
DRIFT_METHODS: tuple[str, ...] = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")

#: Latency buckets for millisecond-level serving: 0.5 ms .. 10 s.
DURATION_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

_REQ = ("model", "version", "environment", "variant")
_MV = ("model", "version", "environment")


def status_class(code: int) -> str:
    """``503`` -> ``"5xx"``: the only form of an HTTP status that goes in a label."""
    if not 100 <= code <= 599:
        return "other"
    return f"{code // 100}xx"


def bounded_features(declared: Iterable[str], seen: Iterable[str]) -> list[str]:
    """The features of ``seen`` that model.yaml declares, in ``seen``'s order.

    A ``feature`` label must never take a value that comes from request data,
    or a client could create series without bound.
    """
    allowed = set(declared)
    return [f for f in seen if f in allowed]


class RouteMetrics:
    """The children of one (model, version, environment, variant), looked up once:
    the gateway's hot path then skips prometheus-client's label lookup per request."""

    __slots__ = ("_codes", "_duration", "_errors", "_labels", "_requests")

    def __init__(self, metrics: GatewayMetrics, model: str, version: str, environment: str,
                 variant: str) -> None:
        self._labels = (model, version, environment, variant)
        self._requests = metrics.requests_total
        self._codes: dict[int, Any] = {}
        self._errors = metrics.request_errors_total.labels(*self._labels)
        self._duration = metrics.request_duration_seconds.labels(*self._labels)

    def observe(self, code: int, seconds: float) -> None:
        """Count one answered request; 5xx answers also count as errors."""
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = self._requests.labels(*self._labels, status_class(code))
        child.inc()
        self._duration.observe(seconds)
        if code >= 500:
            self._errors.inc()


@dataclass(frozen=True)
class GatewayMetrics:
    """What the serving gateway (``/metrics``) exposes."""

    requests_total: Counter
    request_errors_total: Counter
    request_duration_seconds: Histogram
    predictions_logged_total: Counter
    predictions_rejected_total: Counter
    prediction_queue_depth: Gauge
    prediction_store_failures_total: Counter
    prediction_store_up: Gauge
    deployment_info: Gauge
    traffic_weight: Gauge
    rollout_phase: Gauge
    rollout_step: Gauge

    def observe_request(self, *, model: str, version: str, environment: str, variant: str,
                        code: int, seconds: float) -> None:
        """Count one answered request; 5xx answers also count as errors."""
        self.requests_total.labels(model, version, environment, variant, status_class(code)).inc()
        self.request_duration_seconds.labels(model, version, environment, variant).observe(seconds)
        if code >= 500:
            self.request_errors_total.labels(model, version, environment, variant).inc()

    def route(self, *, model: str, version: str, environment: str, variant: str) -> RouteMetrics:
        """Bound children for one route; keep it with the route and call ``observe``."""
        return RouteMetrics(self, model, version, environment, variant)

    def set_deployment(self, *, model: str, environment: str, version: str, strategy: str,
                       phase: str, phases: Sequence[str] = ()) -> None:
        """Record the live deployment: ``deployment_info`` = 1 for exactly one
        (version, strategy, phase) of this model and environment, and the
        enum-style ``rollout_phase`` (1 for ``phase``, 0 for the other ``phases``)."""
        for labels in _label_sets(self.deployment_info):
            if labels[0] == model and labels[2] == environment:
                self.deployment_info.remove(*labels)
        self.deployment_info.labels(model, version, environment, strategy, phase).set(1)
        known = {labels[2] for labels in _label_sets(self.rollout_phase)
                 if labels[0] == model and labels[1] == environment}
        for p in sorted({*phases, *known, phase}):
            self.rollout_phase.labels(model, environment, p).set(1 if p == phase else 0)

    def set_weights(self, *, model: str, environment: str, weights: dict[tuple[str, str], float]) -> None:
        """``weights``: ``{(version, variant): share 0..1}``; series of this model and
        environment that are not given are removed."""
        for labels in _label_sets(self.traffic_weight):
            if labels[0] == model and labels[2] == environment and (labels[1], labels[3]) not in weights:
                self.traffic_weight.remove(*labels)
        for (version, variant), share in weights.items():
            self.traffic_weight.labels(model, version, environment, variant).set(share)


@dataclass(frozen=True)
class MonitoringMetrics:
    """What the monitoring exporter (``mlops-actions exporter``) exposes."""

    model_metric: Gauge
    model_accuracy: Gauge
    baseline_metric: Gauge
    feature_drift_score: Gauge
    feature_drifted: Gauge
    dataset_drift: Gauge
    drifted_features_ratio: Gauge
    prediction_drift_score: Gauge
    prediction_drifted: Gauge
    monitor_samples: Gauge
    monitor_last_run_timestamp_seconds: Gauge
    alert_notifications_total: Counter
    alerts_firing: Gauge


def _label_sets(metric: Gauge) -> list[tuple[str, ...]]:
    # prometheus-client keeps children in ``_metrics``; there is no public listing.
    return [tuple(k) for k in metric._metrics]


def gateway_metrics(registry: CollectorRegistry) -> GatewayMetrics:
    """Create the gateway's metrics on ``registry`` (call once per registry)."""
    return GatewayMetrics(
        requests_total=Counter(
            "mlops_requests_total", "Prediction requests answered, by HTTP status class.",
            (*_REQ, "code"), registry=registry),
        request_errors_total=Counter(
            "mlops_request_errors_total", "Prediction requests answered with a 5xx status.",
            _REQ, registry=registry),
        request_duration_seconds=Histogram(
            "mlops_request_duration_seconds", "Time to answer a prediction request, in seconds.",
            _REQ, buckets=DURATION_BUCKETS, registry=registry),
        predictions_logged_total=Counter(
            "mlops_predictions_logged_total", "Predictions written to the prediction store.",
            _MV, registry=registry),
        predictions_rejected_total=Counter(
            "mlops_predictions_rejected_total",
            "Requests refused with 503: overloaded (concurrency limit, full log queue) or the "
            "prediction store failing.",
            ("model", "environment"), registry=registry),
        prediction_queue_depth=Gauge(
            "mlops_prediction_queue_depth", "Predictions waiting in the log queue.",
            registry=registry),
        prediction_store_failures_total=Counter(
            "mlops_prediction_store_failures_total",
            "Prediction store writes that failed (disk full, I/O error, database down).",
            ("environment",), registry=registry),
        prediction_store_up=Gauge(
            "mlops_prediction_store_up", "1 while prediction store writes work, 0 while they fail.",
            ("environment",), registry=registry),
        deployment_info=Gauge(
            "mlops_deployment_info", "1 for the version live in an environment, its strategy and phase.",
            ("model", "version", "environment", "strategy", "phase"), registry=registry),
        traffic_weight=Gauge(
            "mlops_traffic_weight", "Share of traffic (0..1) routed to a version.",
            _REQ, registry=registry),
        rollout_phase=Gauge(
            "mlops_rollout_phase", "1 for the current rollout phase, 0 for the others.",
            ("model", "environment", "phase"), registry=registry),
        rollout_step=Gauge(
            "mlops_rollout_step", "Index of the current canary step (0-based).",
            ("model", "environment"), registry=registry),
    )


def monitoring_metrics(registry: CollectorRegistry) -> MonitoringMetrics:
    """Create the monitoring exporter's metrics on ``registry`` (call once per registry)."""
    return MonitoringMetrics(
        model_metric=Gauge(
            "mlops_model_metric", "Model quality on labelled predictions of the last window.",
            (*_MV, "metric"), registry=registry),
        model_accuracy=Gauge(
            "mlops_model_accuracy", "Accuracy (0..1) on labelled predictions of the last window.",
            _MV, registry=registry),
        baseline_metric=Gauge(
            "mlops_model_baseline_metric", "Stored baseline of a model quality metric.",
            (*_MV, "metric"), registry=registry),
        feature_drift_score=Gauge(
            "mlops_feature_drift_score",
            "Drift score of one declared feature: a p-value (ks, chisquare, z) or a distance.",
            (*_MV, "feature", "method"), registry=registry),
        feature_drifted=Gauge(
            "mlops_feature_drifted", "1 when the feature drifted by its method's threshold.",
            (*_MV, "feature"), registry=registry),
        dataset_drift=Gauge(
            "mlops_dataset_drift", "1 when the share of drifted features reached drift_share.",
            _MV, registry=registry),
        drifted_features_ratio=Gauge(
            "mlops_drifted_features_ratio", "Share (0..1) of checked features that drifted.",
            _MV, registry=registry),
        prediction_drift_score=Gauge(
            "mlops_prediction_drift_score", "Distance of the output distribution from the baseline.",
            _MV, registry=registry),
        prediction_drifted=Gauge(
            "mlops_prediction_drifted", "1 when the output distribution drifted by its method's threshold.",
            _MV, registry=registry),
        monitor_samples=Gauge(
            "mlops_monitor_samples", "Predictions in the last monitoring window.",
            _MV, registry=registry),
        monitor_last_run_timestamp_seconds=Gauge(
            "mlops_monitor_last_run_timestamp_seconds", "When monitoring last computed results (Unix time).",
            ("model", "environment"), registry=registry),
        alert_notifications_total=Counter(
            "mlops_alert_notifications_total", "Alert notifications sent, by sink type and result.",
            ("sink", "result"), registry=registry),
        alerts_firing=Gauge(
            "mlops_alerts_firing", "Alerts firing now, by severity.",
            ("model", "environment", "severity"), registry=registry),
    )


def process_metrics(registry: CollectorRegistry) -> None:
    """Add the standard ``process_*`` (CPU seconds, resident memory, open fds, start time)
    and ``python_info`` metrics to ``registry``, as the global registry has them; the
    "system resources" dashboard uses them. Calling it twice on one registry is harmless."""
    if registry in _WITH_PROCESS:
        return
    _WITH_PROCESS.add(registry)
    # these collectors describe no names, so the registry cannot detect a second copy itself
    for make in (lambda: ProcessCollector(registry=registry), lambda: PlatformCollector(registry=registry)):
        with contextlib.suppress(ValueError):  # e.g. the caller registered one already
            make()


_WITH_PROCESS: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()
