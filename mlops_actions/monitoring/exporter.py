"""Export computed monitoring results as Prometheus gauges.

Config apart from calculation: the monitor computes (performance, drift,
prediction drift); this module only turns a :class:`MonitoringResult` into the
gauges of :mod:`mlops_actions.monitoring.metrics`, and serves them on
``/metrics`` (127.0.0.1 by default) or writes them to a node-exporter textfile.

Labels stay bounded: model metrics outside :data:`MODEL_METRICS`, drift methods
outside :data:`DRIFT_METHODS` and features that model.yaml does not declare are
dropped and listed in the :class:`ExportSummary`, never exported.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from mlops_actions.errors import ConfigError, MonitoringError
from mlops_actions.monitoring.metrics import DRIFT_METHODS, MODEL_METRICS, MonitoringMetrics

#: Drift methods whose score is a p-value (lower = more drift), not a distance.
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})

__all__ = [
    "ExportSummary",
    "FeatureDrift",
    "MonitoringResult",
    "Snapshot",
    "drift_from_report",
    "export_results",
    "load_results",
    "result_from_dict",
    "result_from_reports",
    "serve_metrics",
    "write_textfile",
]


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    score: float  # p-value for ks/chisquare/z, a distance otherwise
    method: str
    drifted: bool


@dataclass(frozen=True)
class MonitoringResult:
    """What one monitoring run computed for one model version in one environment."""

    model: str
    version: str
    environment: str
    metrics: Mapping[str, float] = field(default_factory=dict)  # accuracy, f1, rmse...
    baseline: Mapping[str, float] = field(default_factory=dict)
    feature_drift: Sequence[FeatureDrift] = ()
    dataset_drift: bool | None = None
    drifted_features_ratio: float | None = None
    prediction_drift: float | None = None  # a distance (wasserstein, jensenshannon, psi)
    prediction_drift_method: str = ""  # p-value methods (ks, chisquare, z) are not exported as a score
    prediction_drifted: bool | None = None
    samples: int | None = None
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ExportSummary:
    series: int
    dropped: tuple[str, ...]  # "model/env: metric 'foo' is not a known metric", ...


_RESULT_GAUGES = ("model_metric", "model_accuracy", "baseline_metric", "feature_drift_score",
                  "feature_drifted", "dataset_drift", "drifted_features_ratio", "prediction_drift_score",
                  "prediction_drifted",
                  "monitor_samples", "monitor_last_run_timestamp_seconds")


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def export_results(metrics: MonitoringMetrics, results: Iterable[MonitoringResult | Mapping[str, Any]], *,
                   declared_features: Mapping[str, Iterable[str]] | None = None,
                   replace: bool = True) -> ExportSummary:
    """Set the monitoring gauges from ``results``.

    ``declared_features``: model -> the features its model.yaml declares; when given,
    drift of any other feature is dropped. ``replace``: clear every result gauge first,
    so versions no longer monitored disappear instead of lingering.
    """
    if replace:
        for name in _RESULT_GAUGES:
            getattr(metrics, name).clear()
    series = 0
    dropped: list[str] = []
    for raw in results:
        r = raw if isinstance(raw, MonitoringResult) else result_from_dict(raw)
        mve = (r.model, r.version, r.environment)
        where = f"{r.model}/{r.environment}"
        for name, value in r.metrics.items():
            if name not in MODEL_METRICS:
                dropped.append(f"{where}: metric {name!r} is not one of {', '.join(MODEL_METRICS)}")
            elif _finite(value):
                metrics.model_metric.labels(*mve, name).set(value)
                series += 1
                if name == "accuracy":
                    metrics.model_accuracy.labels(*mve).set(value)
                    series += 1
        for name, value in r.baseline.items():
            if name in MODEL_METRICS and _finite(value):
                metrics.baseline_metric.labels(*mve, name).set(value)
                series += 1
        allowed = None if declared_features is None else set(declared_features.get(r.model, ()))
        for fd in r.feature_drift:
            if allowed is not None and fd.feature not in allowed:
                dropped.append(f"{where}: feature {fd.feature!r} is not declared in model.yaml")
                continue
            if fd.method not in DRIFT_METHODS:
                dropped.append(f"{where}: drift method {fd.method!r} is not one of "
                               f"{', '.join(DRIFT_METHODS)}")
                continue
            if _finite(fd.score):
                metrics.feature_drift_score.labels(*mve, fd.feature, fd.method).set(fd.score)
                series += 1
            metrics.feature_drifted.labels(*mve, fd.feature).set(1 if fd.drifted else 0)
            series += 1
        if r.dataset_drift is not None:
            metrics.dataset_drift.labels(*mve).set(1 if r.dataset_drift else 0)
            series += 1
        ratio = r.drifted_features_ratio
        if ratio is None and r.feature_drift:
            ratio = sum(fd.drifted for fd in r.feature_drift) / len(r.feature_drift)
        if ratio is not None and _finite(ratio):
            metrics.drifted_features_ratio.labels(*mve).set(float(ratio))
            series += 1
        if r.prediction_drift_method in P_VALUE_METHODS:
            dropped.append(f"{where}: prediction drift by {r.prediction_drift_method} is a p-value, not a "
                           "distance; only mlops_prediction_drifted is exported")
        elif r.prediction_drift is not None and _finite(r.prediction_drift):
            metrics.prediction_drift_score.labels(*mve).set(float(r.prediction_drift))
            series += 1
        if r.prediction_drifted is not None:
            metrics.prediction_drifted.labels(*mve).set(1 if r.prediction_drifted else 0)
            series += 1
        if r.samples is not None:
            metrics.monitor_samples.labels(*mve).set(r.samples)
            series += 1
        metrics.monitor_last_run_timestamp_seconds.labels(r.model, r.environment).set(r.timestamp)
        series += 1
    return ExportSummary(series, tuple(dropped))


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def drift_from_report(report: Any) -> tuple[tuple[FeatureDrift, ...], bool | None, float | None]:
    """``(feature_drift, dataset_drift, drifted_features_ratio)`` from a drift report of
    ``mlops_actions.monitoring.drift`` (the object, or its ``to_dict()``): columns with
    ``column``, ``method``, ``statistic``, ``drifted``; untested columns are left out."""
    columns = _field(report, "columns") or ()
    out = []
    for c in columns:
        drifted, statistic = _field(c, "drifted"), _field(c, "statistic")
        if drifted is None or statistic is None:
            continue
        out.append(FeatureDrift(str(_field(c, "column")), float(statistic), str(_field(c, "method")),
                                bool(drifted)))
    dataset = _field(report, "dataset_drift")
    share = _field(report, "share")
    return tuple(out), None if dataset is None else bool(dataset), None if share is None else float(share)


def result_from_reports(model: str, version: str, environment: str, *, performance: Any = None,
                        drift: Any = None, prediction_drift: Any = None,
                        timestamp: float | None = None) -> MonitoringResult:
    """A result from the reports of ``mlops_actions.monitoring`` (duck-typed):
    ``performance`` (``metrics`` dict, ``checks`` with ``metric``/``baseline``,
    ``n_labelled``), ``drift`` (a DriftReport) and ``prediction_drift`` (a ColumnDrift:
    ``method``, ``statistic``, ``drifted``)."""
    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    samples = None
    if performance is not None:
        # service metrics (latency, error rate, throughput) come from the gateway's own metrics
        metrics = {k: float(v) for k, v in (_field(performance, "metrics") or {}).items()
                   if k in MODEL_METRICS and isinstance(v, int | float) and math.isfinite(v)}
        for check in _field(performance, "checks") or ():
            b = _field(check, "baseline")
            if _field(check, "metric") in MODEL_METRICS and isinstance(b, int | float) and math.isfinite(b):
                baseline[str(_field(check, "metric"))] = float(b)
        n = _field(performance, "n_labelled")
        samples = int(n) if isinstance(n, int) else None
    feature_drift: tuple[FeatureDrift, ...] = ()
    dataset = share = None
    if drift is not None:
        feature_drift, dataset, share = drift_from_report(drift)
    pd_score = pd_drifted = None
    pd_method = ""
    if prediction_drift is not None:
        pd_method = str(_field(prediction_drift, "method") or "")
        stat = _field(prediction_drift, "statistic")
        pd_score = float(stat) if isinstance(stat, int | float) else None
        drifted = _field(prediction_drift, "drifted")
        pd_drifted = None if drifted is None else bool(drifted)
    return MonitoringResult(model=model, version=version, environment=environment, metrics=metrics,
                            baseline=baseline, feature_drift=feature_drift, dataset_drift=dataset,
                            drifted_features_ratio=share, prediction_drift=pd_score,
                            prediction_drift_method=pd_method, prediction_drifted=pd_drifted,
                            samples=samples, timestamp=time.time() if timestamp is None else timestamp)


def result_from_dict(d: Mapping[str, Any]) -> MonitoringResult:
    """A result from its JSON form (the ``--results`` file); bad input -> ConfigError."""
    try:
        drift = d.get("feature_drift") or []
        if isinstance(drift, Mapping):  # {"age": {"score":..., "method":..., "drifted":...}}
            drift = [{"feature": k, **v} for k, v in drift.items()]
        report_drift: tuple[FeatureDrift, ...] = ()
        report_dataset = report_share = None
        if not drift and isinstance(d.get("drift"), Mapping):  # a DriftReport.to_dict()
            report_drift, report_dataset, report_share = drift_from_report(d["drift"])
        return MonitoringResult(
            model=str(d["model"]), version=str(d["version"]), environment=str(d["environment"]),
            metrics={str(k): float(v) for k, v in (d.get("metrics") or {}).items() if v is not None},
            baseline={str(k): float(v) for k, v in (d.get("baseline") or {}).items() if v is not None},
            feature_drift=tuple(FeatureDrift(str(f["feature"]), float(f["score"]), str(f["method"]),
                                             bool(f["drifted"])) for f in drift) or report_drift,
            dataset_drift=report_dataset if d.get("dataset_drift") is None else bool(d["dataset_drift"]),
            drifted_features_ratio=report_share if d.get("drifted_features_ratio") is None
            else float(d["drifted_features_ratio"]),
            prediction_drift=None if d.get("prediction_drift") is None else float(d["prediction_drift"]),
            prediction_drift_method=str(d.get("prediction_drift_method") or ""),
            prediction_drifted=None if d.get("prediction_drifted") is None else bool(d["prediction_drifted"]),
            samples=None if d.get("samples") is None else int(d["samples"]),
            timestamp=float(d.get("timestamp") or time.time()))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"monitoring result: {type(exc).__name__}: {exc}",
                          hint="expected {model, version, environment, metrics: {name: number}, "
                               "feature_drift: [{feature, score, method, drifted}], dataset_drift, "
                               "prediction_drift, samples}; see docs/alerting.md") from exc


def load_results(path: str | Path) -> list[MonitoringResult]:
    """Read a results file: a JSON list of results, or ``{"results": [...]}``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"results file {p} does not exist",
                          hint="write it with `mlops-actions monitor --json` or pass another path") from exc
    except ValueError as exc:
        raise ConfigError(f"results file {p} is not JSON: {exc}") from exc
    if isinstance(data, Mapping) and isinstance(data.get("models"), list):  # `monitor --out` JSON
        return [_result_from_health(h, data.get("environment"), p) for h in data["models"]]
    if isinstance(data, Mapping):
        data = data.get("results")
    if not isinstance(data, list):
        raise ConfigError(f"results file {p}: expected a JSON list of results, {{\"results\": [...]}}, "
                          "or the monitor-ENV.json that `mlops-actions monitor --out DIR` writes")
    return [result_from_dict(d) for d in data]


def _result_from_health(h: Any, environment: Any, path: Path) -> MonitoringResult:
    """One model of ``monitor --out``'s JSON (ModelHealth.to_dict()) as a result."""
    if not isinstance(h, Mapping) or not h.get("model"):
        raise ConfigError(f"results file {path}: a model entry without 'model'")
    return result_from_reports(str(h["model"]), str(h.get("version") or ""),
                               str(h.get("environment") or environment or ""),
                               performance=h.get("performance"), drift=h.get("data_drift"),
                               prediction_drift=h.get("prediction_drift"))


class Snapshot(Collector):
    """A collector that serves whole registries swapped in atomically, so a scrape
    never sees a half-refreshed set of gauges (cleared, not yet set again)."""

    def __init__(self) -> None:
        self._current: CollectorRegistry = CollectorRegistry()

    def set(self, registry: CollectorRegistry) -> None:
        self._current = registry

    def collect(self) -> Iterable[Metric]:
        return list(self._current.collect())


def write_textfile(registry: CollectorRegistry, path: str | Path) -> None:
    """Write the exposition format for node-exporter's textfile collector, atomically
    (a temp file in the same directory, then rename), so a scrape never reads half a file."""
    p = Path(path)
    if p.suffix != ".prom":
        raise ConfigError(f"textfile {p} must end in .prom",
                          hint="node-exporter's textfile collector reads only *.prom files")
    p.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(os.fspath(p), registry, tmpdir=os.fspath(p.parent))


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1"
                  ) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` for ``registry`` on ``host:port`` in a daemon thread;
    returns ``(server, thread)``: call ``server.shutdown()`` to stop."""
    try:
        return start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MonitoringError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              hint="choose another --port, or stop what uses it") from exc
