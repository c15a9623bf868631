"""One model's health in one window: performance + data drift + prediction drift + quality.

:func:`assess_model` is what ``mlops-actions monitor`` runs per pinned model; its
:meth:`ModelHealth.findings` is the flat list an alert sink receives (see
``mlops_actions.commands.monitor.ALERT_HOOKS``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlops_actions.config.specs import MonitoringSpec, Threshold
from mlops_actions.monitoring.drift import (
    ColumnDrift,
    DriftOptions,
    DriftReport,
    detect_drift,
    detect_prediction_drift,
)
from mlops_actions.monitoring.performance import PerformanceReport, compute_performance
from mlops_actions.monitoring.profile import ReferenceProfile
from mlops_actions.monitoring.quality import QualityReport, check_quality
from mlops_actions.monitoring.store import MonitoringStore, features_frame
from mlops_actions.monitoring.verdict import Verdict, worst

__all__ = ["Finding", "ModelHealth", "assess_model"]


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

    @property
    def key(self) -> str:
        return f"{self.environment}/{self.model}/{self.kind}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "model": self.model, "version": self.version,
                "environment": self.environment, "kind": self.kind, "name": self.name,
                "verdict": self.verdict.value, "message": self.message, "value": self.value,
                "limit": self.limit}


@dataclass
class ModelHealth:
    model: str
    version: str | None
    environment: str
    window_seconds: float | None
    performance: PerformanceReport
    drift: DriftReport | None = None
    prediction_drift: ColumnDrift | None = None
    quality: QualityReport | None = None
    notes: list[str] = field(default_factory=list)
    #: per gateway variant (stable, canary, b, ...) when the window holds more than one
    variants: dict[str, PerformanceReport] = field(default_factory=dict)
    # kept for the HTML plots, not serialised
    rows: pd.DataFrame | None = field(default=None, repr=False)
    reference: ReferenceProfile | None = field(default=None, repr=False)
    current: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def verdict(self) -> Verdict:
        parts = [self.performance.verdict]
        if self.drift is not None:
            parts.append(self.drift.verdict)
        if self.prediction_drift is not None:
            parts.append(self.prediction_drift.verdict)
        if self.quality is not None:
            parts.append(self.quality.verdict)
        if self.performance.n_predictions == 0:
            return Verdict.INCONCLUSIVE
        return worst(parts)

    def findings(self) -> list[Finding]:
        """Every check, worst first (failed, error, inconclusive, passed)."""
        m, env, v = self.model, self.environment, self.version
        out = [Finding(m, env, "performance", c.metric, c.verdict, c.message, c.value, c.bound, v)
               for c in self.performance.checks]
        if self.performance.n_predictions == 0:
            out.append(Finding(m, env, "performance", "*", Verdict.INCONCLUSIVE,
                               "no predictions logged in the window", None, None, v))
        if self.drift is not None:
            d = self.drift
            out.append(Finding(m, env, "data_drift", "*", d.verdict, d.summary(), d.share, d.drift_share, v))
            out += [Finding(m, env, "data_drift", c.column, c.verdict, c.message,
                            c.p_adjusted if c.p_adjusted is not None else c.statistic, c.threshold, v)
                    for c in d.worst_first() if c.verdict is not Verdict.PASSED]
        if self.prediction_drift is not None:
            p = self.prediction_drift
            out.append(Finding(m, env, "prediction_drift", "prediction", p.verdict, p.message, p.statistic,
                               p.threshold, v))
        if self.quality is not None:
            out += [Finding(m, env, "quality", f"{q.column}:{q.check}", q.verdict, q.message, q.value,
                            q.limit, v) for q in self.quality.findings]
        rank = {Verdict.FAILED: 0, Verdict.ERROR: 1, Verdict.INCONCLUSIVE: 2, Verdict.PASSED: 3}
        return sorted(out, key=lambda f: rank[f.verdict])

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "environment": self.environment,
                "verdict": self.verdict.value, "window_seconds": self.window_seconds,
                "performance": self.performance.to_dict(),
                "data_drift": self.drift.to_dict() if self.drift else None,
                "prediction_drift": self.prediction_drift.to_dict() if self.prediction_drift else None,
                "quality": self.quality.to_dict() if self.quality else None, "notes": self.notes,
                "variants": {k: {"n_predictions": r.n_predictions, "n_labelled": r.n_labelled,
                                 "metrics": r.metrics} for k, r in self.variants.items()},
                "findings": [f.to_dict() for f in self.findings() if f.verdict is not Verdict.PASSED]}


def assess_model(store: MonitoringStore, model: str, *, version: str | None = None, environment: str = "",
                 window_seconds: float | None = 3600.0, spec: MonitoringSpec | None = None,
                 task: str | None = None, reference: ReferenceProfile | None = None,
                 features: list[str] | None = None, now: float | None = None,
                 environment_filter: bool | None = None) -> ModelHealth:
    """Performance, drift and quality of ``model`` over the last ``window_seconds`` of the store.

    ``environment_filter``: True counts only rows the gateway tagged with
    ``environment``; False counts every row; None (default) filters when such
    rows exist and otherwise falls back to every row, with a note.
    """
    spec = spec or MonitoringSpec()
    now = time.time() if now is None else now
    since = now - window_seconds if window_seconds else None
    fallback_note = None
    if environment and environment_filter is not False:
        rows = store.query(model, version=version, since=since, until=now + 1e-6, environment=environment)
        if rows.empty and environment_filter is None:
            rows = store.query(model, version=version, since=since, until=now + 1e-6)
            if not rows.empty:
                fallback_note = (f"no rows tagged environment={environment!r}: counted all {len(rows)} "
                                 "rows of the model (untagged or from other environments)")
    else:
        rows = store.query(model, version=version, since=since, until=now + 1e-6)
    thresholds: Mapping[str, Threshold] = spec.performance
    baseline = store.get_baseline(model, version=version)
    perf = compute_performance(rows, model=model, version=version, task=task, window_seconds=window_seconds,
                               thresholds=thresholds, baseline=baseline, min_samples=spec.min_samples,
                               max_error_rate=spec.max_error_rate,
                               max_latency_p95_ms=spec.max_latency_p95_ms)
    health = ModelHealth(model, version, environment, window_seconds, perf, rows=rows, reference=reference)
    if fallback_note:
        health.notes.append(fallback_note)
    if not rows.empty:
        names = sorted({str(v) for v in rows["variant"]})
        if len(names) > 1:
            health.variants = {
                (name or "(none)"): compute_performance(rows[rows["variant"] == name], model=model,
                                                        version=version, task=task,
                                                        window_seconds=window_seconds)
                for name in names}
    current = features_frame(rows)
    health.current = current
    if reference is not None:
        opts = DriftOptions.from_spec(spec.drift)
        if opts.features is None and features is not None:
            opts = DriftOptions(**{**opts.__dict__, "features": tuple(f for f in features
                                                                      if f in reference.columns)})
        if rows.empty:
            health.notes.append("no predictions in the window: drift and quality not tested")
        else:
            health.drift = detect_drift(reference, current, opts)
            health.quality = check_quality(health.drift, [str(c) for c in current.columns])
    else:
        health.notes.append("no reference data (model.yaml data.reference / data.test, or --reference): "
                            "data drift and quality not tested")
    pred_base = store.get_baseline(model, version=version, kind="prediction")
    if pred_base and pred_base.get("predictions"):
        health.prediction_drift = detect_prediction_drift(
            pred_base["predictions"], list(rows["output"]) if not rows.empty else [],
            threshold=spec.prediction_drift_threshold)
    else:
        health.notes.append("no prediction baseline (set_prediction_baseline): prediction drift not tested")
    return health
