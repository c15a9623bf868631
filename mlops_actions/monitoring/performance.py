"""Performance of a model in a time window, from the prediction store, against a baseline.

Quality metrics use labelled rows only (actuals joined by request id):
accuracy, precision, recall, f1 (classification; binary on the positive label,
macro-averaged for more classes), rmse, mae, r2 (regression). Service metrics
use every row: latency p50/p95/p99 (ms), throughput (requests/s over the
window) and error rate (status >= 500).

Checks follow MLflow's ``MetricThreshold`` fields (``config/specs.py``):
``threshold`` is an absolute bound (>= when greater is better, else <=). In
monitoring the baseline is what the model is expected to do, so
``min_absolute_change`` / ``min_relative_change`` bound how far the metric may
move *the wrong way* from the baseline (MLflow's validation asks a candidate to
*improve* by that much; a live model is not asked to keep improving). Verdicts
are four-valued: too few samples -> inconclusive, not passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_actions.config.specs import Threshold
from mlops_actions.monitoring.verdict import Verdict, worst

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEFAULT_RELATIVE_DROP",
    "GREATER_IS_BETTER",
    "REGRESSION_METRICS",
    "MetricCheck",
    "PerformanceReport",
    "check_metric",
    "classification_metrics",
    "compute_performance",
    "prediction_value",
    "regression_metrics",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
REGRESSION_METRICS = ("rmse", "mae", "r2")
SERVICE_METRICS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "throughput_rps", "error_rate")
GREATER_IS_BETTER = {"accuracy": True, "precision": True, "recall": True, "f1": True, "f1_score": True,
                     "r2": True, "rmse": False, "mae": False, "mse": False, "latency_p50_ms": False,
                     "latency_p95_ms": False, "latency_p99_ms": False, "throughput_rps": True,
                     "error_rate": False, "roc_auc": True, "log_loss": False}
LABELLED = frozenset(CLASSIFICATION_METRICS + REGRESSION_METRICS + ("f1_score",))
#: With a baseline and no threshold for a metric: a 5 % move the wrong way fails.
DEFAULT_RELATIVE_DROP = 0.05


def prediction_value(output: Any) -> Any:
    """The predicted label/value from a logged output: a scalar, ``[x]``, ``{"prediction": x}``,
    or class probabilities (argmax)."""
    if isinstance(output, Mapping):
        for key in ("prediction", "predictions", "label", "value", "output"):
            if key in output:
                return prediction_value(output[key])
        return None
    if isinstance(output, list | tuple | np.ndarray):
        if len(output) == 1:
            return prediction_value(output[0])
        if len(output) > 1 and all(isinstance(v, int | float) for v in output):
            return int(np.argmax(output))  # class probabilities
        return None
    return output


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool) and math.isfinite(float(v))


def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, float]:
    """accuracy, precision, recall, f1; binary on the positive label (1/True/the larger label),
    macro-averaged over the labels seen when there are more than two."""
    t = np.array([_norm_label(v) for v in y_true], dtype=object)
    p = np.array([_norm_label(v) for v in y_pred], dtype=object)
    labels = sorted(set(t.tolist()) | set(p.tolist()), key=str)
    out = {"accuracy": float(np.mean(t == p)) if len(t) else float("nan")}
    if len(labels) <= 2:
        pos = _positive(labels)
        tp = float(np.sum((p == pos) & (t == pos)))
        prec = tp / float(np.sum(p == pos)) if np.any(p == pos) else 0.0
        rec = tp / float(np.sum(t == pos)) if np.any(t == pos) else 0.0
    else:
        precs, recs = [], []
        for lab in labels:
            tp = float(np.sum((p == lab) & (t == lab)))
            precs.append(tp / float(np.sum(p == lab)) if np.any(p == lab) else 0.0)
            recs.append(tp / float(np.sum(t == lab)) if np.any(t == lab) else 0.0)
        f1s = [2 * a * b / (a + b) if a + b else 0.0 for a, b in zip(precs, recs, strict=True)]
        out.update(precision=float(np.mean(precs)), recall=float(np.mean(recs)), f1=float(np.mean(f1s)))
        return out
    out.update(precision=prec, recall=rec, f1=2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return out


def _norm_label(v: Any) -> Any:
    if isinstance(v, bool | np.bool_):
        return int(bool(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return int(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _positive(labels: list[Any]) -> Any:
    if 1 in labels:
        return 1
    return labels[-1] if labels else 1


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2)) if len(t) else 0.0
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
            "r2": 1 - float(np.sum(err ** 2)) / ss_tot if ss_tot > 0 else float("nan")}


def _infer_task(y_true: list[Any], y_pred: list[Any]) -> str:
    values = y_true + y_pred
    if any(isinstance(v, str | bool) for v in values):
        return "classification"
    if all(_is_number(v) and float(v).is_integer() for v in values) and len(set(map(float, values))) <= 20:
        return "classification"
    return "regression"


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    value: float | None
    verdict: Verdict
    message: str
    baseline: float | None = None
    bound: float | None = None  # the value at which it fails

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "verdict": self.verdict.value,
                "message": self.message, "baseline": self.baseline, "bound": self.bound}


def check_metric(name: str, value: float | None, *, threshold: Threshold | None = None,
                 baseline: float | None = None, n: int, min_samples: int) -> MetricCheck:
    """One metric against an absolute threshold and/or a baseline (see the module docstring)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if n < min_samples:
            return MetricCheck(name, None, Verdict.INCONCLUSIVE,
                               f"{name}: not enough data (n={n} < min_samples {min_samples})", baseline)
        return MetricCheck(name, None, Verdict.ERROR, f"{name}: could not be computed (n={n})", baseline)
    if n < min_samples:
        return MetricCheck(name, value, Verdict.INCONCLUSIVE,
                           f"{name} {value:.4g}: not enough data (n={n} < min_samples {min_samples}) "
                           "to judge; widen --window or lower monitoring.min_samples", baseline)
    gib = threshold.greater_is_better if threshold is not None and threshold.greater_is_better is not None \
        else GREATER_IS_BETTER.get(name, True)
    bounds: list[tuple[float, str]] = []
    if threshold is not None and threshold.threshold is not None:
        bounds.append((threshold.threshold, "threshold"))
    abs_change = threshold.min_absolute_change if threshold is not None else None
    rel_change = threshold.min_relative_change if threshold is not None else None
    if baseline is not None and threshold is None:
        rel_change = DEFAULT_RELATIVE_DROP
    if baseline is not None and abs_change is not None:
        bounds.append((baseline - abs_change if gib else baseline + abs_change,
                       f"baseline {baseline:.4g} {'-' if gib else '+'} {abs_change:g}"))
    if baseline is not None and rel_change is not None:
        delta = abs(baseline) * rel_change
        bounds.append((baseline - delta if gib else baseline + delta,
                       f"baseline {baseline:.4g} {'-' if gib else '+'} {rel_change:.0%}"))
    if not bounds:
        return MetricCheck(name, value, Verdict.PASSED, f"{name} {value:.4g} (no threshold, no baseline)",
                           baseline)
    bound, what = max(bounds) if gib else min(bounds)
    ok = value >= bound if gib else value <= bound
    op = ">=" if gib else "<="
    if ok:
        return MetricCheck(name, value, Verdict.PASSED,
                           f"{name} {value:.4g} {op} {bound:.4g} ({what}); n={n}", baseline, bound)
    bad = "<" if gib else ">"
    return MetricCheck(name, value, Verdict.FAILED,
                       f"{name} {value:.4g} {bad} {bound:.4g} ({what}); n={n}", baseline, bound)


@dataclass(frozen=True)
class PerformanceReport:
    model: str
    version: str | None
    task: str
    n_predictions: int
    n_labelled: int
    window_seconds: float | None
    metrics: dict[str, float | None]
    checks: tuple[MetricCheck, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def verdict(self) -> Verdict:
        if self.n_predictions == 0:
            return Verdict.INCONCLUSIVE
        return worst(c.verdict for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "task": self.task,
                "verdict": self.verdict.value, "n_predictions": self.n_predictions,
                "n_labelled": self.n_labelled, "window_seconds": self.window_seconds,
                "metrics": self.metrics, "checks": [c.to_dict() for c in self.checks],
                "notes": list(self.notes)}

    def as_flat_dict(self) -> dict[str, Any]:
        """The seed API's shape: metric names at the top level (plus counts and verdict)."""
        out: dict[str, Any] = dict(self.metrics)
        if "f1" in out:
            out["f1_score"] = out["f1"]
        out.update(n_predictions=self.n_predictions, n_labelled=self.n_labelled,
                   verdict=self.verdict.value, checks=[c.to_dict() for c in self.checks])
        return out


def compute_performance(rows: pd.DataFrame, *, model: str = "", version: str | None = None,
                        task: str | None = None, window_seconds: float | None = None,
                        thresholds: Mapping[str, Threshold] | None = None,
                        baseline: Mapping[str, Any] | None = None, min_samples: int = 1,
                        max_error_rate: float | None = None,
                        max_latency_p95_ms: float | None = None) -> PerformanceReport:
    """Metrics and checks for the rows of one model (as :meth:`PredictionStore.query` returns)."""
    n = len(rows)
    notes: list[str] = []
    metrics: dict[str, float | None] = {}
    if n:
        lat = rows["latency_ms"].to_numpy(dtype=float)
        p50, p95, p99 = (float(x) for x in np.percentile(lat, [50, 95, 99]))
        ts = rows["timestamp"].to_numpy(dtype=float)
        span = window_seconds if window_seconds else float(ts.max() - ts.min())
        metrics.update(latency_p50_ms=p50, latency_p95_ms=p95, latency_p99_ms=p99,
                       throughput_rps=n / span if span > 0 else None,
                       error_rate=float(np.mean(rows["status"].to_numpy() >= 500)))
    labelled = rows[[a is not None for a in rows["actual"]]] if n else rows
    ok = labelled[labelled["status"] < 500] if len(labelled) else labelled
    y_true = [prediction_value(a) for a in ok["actual"]] if len(ok) else []
    y_pred = [prediction_value(o) for o in ok["output"]] if len(ok) else []
    pairs = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if t is not None and p is not None]
    if len(pairs) < len(y_true):
        notes.append(f"{len(y_true) - len(pairs)} labelled row(s) had no usable prediction or label")
    n_labelled = len(pairs)
    kind = {"binary_classification": "classification", "multiclass_classification": "classification",
            "regression": "regression"}.get(task or "", "")
    if pairs:
        yt, yp = [t for t, _ in pairs], [p for _, p in pairs]
        kind = kind or _infer_task(yt, yp)
        if kind == "regression":
            if all(_is_number(v) for v in yt + yp):
                metrics.update(regression_metrics(yt, yp))
            else:
                notes.append("regression outputs or labels are not all finite numbers")
        else:
            metrics.update(classification_metrics(yt, yp))
    kind = kind or "unknown"
    checks: list[MetricCheck] = []
    thresholds = dict(thresholds or {})
    if "f1_score" in thresholds and "f1" not in thresholds:
        thresholds["f1"] = thresholds.pop("f1_score")
    base = {("f1" if k == "f1_score" else k): v for k, v in (baseline or {}).items() if _is_number(v)}
    quality = CLASSIFICATION_METRICS if kind == "classification" else REGRESSION_METRICS \
        if kind == "regression" else ()
    names = sorted(set(thresholds) | {k for k in base if k in quality or k in SERVICE_METRICS})
    if max_error_rate is not None and "error_rate" not in thresholds:
        thresholds["error_rate"] = Threshold(threshold=max_error_rate, greater_is_better=False)
        names = sorted(set(names) | {"error_rate"})
    if max_latency_p95_ms is not None and "latency_p95_ms" not in thresholds:
        thresholds["latency_p95_ms"] = Threshold(threshold=max_latency_p95_ms, greater_is_better=False)
        names = sorted(set(names) | {"latency_p95_ms"})
    for name in names:
        count = n_labelled if name in LABELLED else n
        value = metrics.get(name)
        if name not in metrics and name in LABELLED and count >= min_samples:
            checks.append(MetricCheck(name, None, Verdict.ERROR,
                                      f"{name}: not computed for task {kind}; check model.yaml task",
                                      base.get(name)))
            continue
        checks.append(check_metric(name, value, threshold=thresholds.get(name), baseline=base.get(name),
                                   n=count, min_samples=min_samples))
    return PerformanceReport(model, version, kind, n, n_labelled, window_seconds, metrics, tuple(checks),
                             tuple(notes))
