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
from mlops_actions.monitoring.ab import ABReport
from mlops_actions.monitoring.drift import (
    ColumnDrift,
    DriftOptions,
    DriftReport,
    detect_drift,
    detect_prediction_drift,
)
from mlops_actions.monitoring.finding import Finding
from mlops_actions.monitoring.performance import PerformanceReport, compute_performance
from mlops_actions.monitoring.profile import ReferenceProfile
from mlops_actions.monitoring.quality import QualityReport, check_quality
from mlops_actions.monitoring.store import MonitoringStore, features_frame
from mlops_actions.monitoring.verdict import Verdict, worst

__all__ = ["NO_ROWS", "Finding", "ModelHealth", "VariantHealth", "assess_model"]

NO_ROWS = "no predictions logged in the window: nothing was checked"


_RANK = {Verdict.FAILED: 0, Verdict.ERROR: 1, Verdict.INCONCLUSIVE: 2, Verdict.PASSED: 3}


@dataclass
class VariantHealth:
    """The checks of one set of rows: a whole window, or one gateway variant of it."""

    performance: PerformanceReport
    drift: DriftReport | None = None
    prediction_drift: ColumnDrift | None = None
    quality: QualityReport | None = None
    current: pd.DataFrame | None = field(default=None, repr=False)  # for the HTML plots
    #: fewer rows than this (monitoring.min_samples): drift is not judged, "not enough data"
    min_rows: int = 0

    @property
    def too_few(self) -> bool:
        return 0 < self.performance.n_predictions < self.min_rows

    @property
    def verdict(self) -> Verdict:
        if self.performance.n_predictions == 0:
            return Verdict.INCONCLUSIVE
        parts = [self.performance.verdict]
        parts += [r.verdict for r in (self.drift, self.prediction_drift, self.quality) if r is not None]
        return worst(parts)

    def findings(self, model: str, env: str, version: str | None, variant: str = "") -> list[Finding]:
        """Every check, worst first (failed, error, inconclusive, passed)."""
        m, v = model, version
        out = [Finding(m, env, "performance", c.metric, c.verdict, c.message, c.value, c.bound, v, variant)
               for c in self.performance.checks]
        n = self.performance.n_predictions
        if n == 0:
            out.append(Finding(m, env, "performance", "*", Verdict.INCONCLUSIVE,
                               NO_ROWS, None, None, v, variant))
        elif self.too_few:
            out.append(Finding(m, env, "data_drift", "*", Verdict.INCONCLUSIVE,
                               f"not enough data (n={n} < min_samples {self.min_rows}): drift not judged; "
                               "widen --window or lower monitoring.min_samples", float(n),
                               float(self.min_rows), v, variant))
        if self.drift is not None:
            d = self.drift
            out.append(Finding(m, env, "data_drift", "*", d.verdict, d.summary(), d.share, d.drift_share, v,
                               variant))
            out += [Finding(m, env, "data_drift", c.column, c.verdict, c.message,
                            c.p_adjusted if c.p_adjusted is not None else c.statistic, c.threshold, v,
                            variant)
                    for c in d.worst_first() if c.verdict is not Verdict.PASSED]
        if self.prediction_drift is not None:
            p = self.prediction_drift
            out.append(Finding(m, env, "prediction_drift", "prediction", p.verdict, p.message, p.statistic,
                               p.threshold, v, variant))
        if self.quality is not None:
            out += [Finding(m, env, "quality", f"{q.column}:{q.check}", q.verdict, q.message, q.value,
                            q.limit, v, variant) for q in self.quality.findings]
        return sorted(out, key=lambda f: _RANK[f.verdict])

    def to_dict(self) -> dict[str, Any]:
        p = self.performance
        return {"verdict": self.verdict.value, "n_predictions": p.n_predictions, "n_labelled": p.n_labelled,
                "metrics": p.metrics, "performance": p.to_dict(),
                "data_drift": self.drift.to_dict() if self.drift else None,
                "prediction_drift": self.prediction_drift.to_dict() if self.prediction_drift else None,
                "quality": self.quality.to_dict() if self.quality else None}


@dataclass
class ModelHealth:
    """One model in one window. With several gateway variants in the window (stable and canary,
    A and B), every check runs per variant (``variants``), so a canary's drift or errors are
    not diluted by stable traffic; the all-rows reports stay for reference, unchecked."""

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
    variants: dict[str, VariantHealth] = field(default_factory=dict)
    # kept for the HTML plots, not serialised
    rows: pd.DataFrame | None = field(default=None, repr=False)
    reference: ReferenceProfile | None = field(default=None, repr=False)
    current: pd.DataFrame | None = field(default=None, repr=False)
    min_rows: int = 0  # monitoring.min_samples: per variant, below it no drift verdict
    #: the A/B test (strategy ab_test): winner, intervals, split check, guardrails
    ab: ABReport | None = None

    def _whole(self) -> VariantHealth:
        return VariantHealth(self.performance, self.drift, self.prediction_drift, self.quality,
                             min_rows=self.min_rows)

    @property
    def no_rows(self) -> bool:
        """No prediction of the model (version) in the window: monitoring saw nothing at all."""
        return self.performance.n_predictions == 0

    @property
    def verdict(self) -> Verdict:
        if self.performance.n_predictions == 0:
            return Verdict.INCONCLUSIVE
        own = (worst(v.verdict for v in self.variants.values()) if self.variants
               else self._whole().verdict)
        return worst([own, self.ab.verdict]) if self.ab is not None else own

    def findings(self) -> list[Finding]:
        """Every check, worst first (failed, error, inconclusive, passed); per variant when the
        window holds several."""
        if not self.variants or self.performance.n_predictions == 0:
            out = self._whole().findings(self.model, self.environment, self.version)
        else:
            out = [f for name, v in self.variants.items()
                   for f in v.findings(self.model, self.environment, self.version, name)]
        if self.ab is not None:
            out += self.ab.findings(self.version)
        return sorted(out, key=lambda f: _RANK[f.verdict])

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "environment": self.environment,
                "verdict": self.verdict.value, "window_seconds": self.window_seconds,
                "checked_per_variant": bool(self.variants),
                "performance": self.performance.to_dict(),
                "data_drift": self.drift.to_dict() if self.drift else None,
                "prediction_drift": self.prediction_drift.to_dict() if self.prediction_drift else None,
                "quality": self.quality.to_dict() if self.quality else None, "notes": self.notes,
                "variants": {k: v.to_dict() for k, v in self.variants.items()},
                "findings": [f.to_dict() for f in self.findings() if f.verdict is not Verdict.PASSED],
                **({"ab_test": self.ab.to_dict()} if self.ab is not None else {})}


def _baseline_versions(baseline: Mapping[str, Any] | None) -> list[str]:
    """The versions whose outputs a prediction baseline holds (none recorded: unknown, used as is)."""
    if not baseline:
        return []
    if baseline.get("version"):
        return [str(baseline["version"])]
    return [str(v) for v in baseline.get("versions") or []]


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
    opts: DriftOptions | None = None
    if reference is not None:
        opts = DriftOptions.from_spec(spec.drift)
        if opts.features is None and features is not None:
            opts = DriftOptions(**{**opts.__dict__, "features": tuple(f for f in features
                                                                      if f in reference.columns)})
    pred_base = store.get_baseline(model, version=version, kind="prediction")
    pred_reference = pred_base.get("predictions") if pred_base else None
    base_versions = _baseline_versions(pred_base)
    if pred_reference and version and base_versions and version not in base_versions:
        pred_reference = None  # another version's outputs: a new model predicting differently is no drift
        notes_before = [f"the prediction baseline is of version {', '.join(base_versions)}, not {version}: "
                        f"prediction drift not tested (mlops-actions baseline --model {model} ...)"]
    else:
        notes_before = []

    def check(part: pd.DataFrame) -> VariantHealth:
        perf = compute_performance(part, model=model, version=version, task=task,
                                   window_seconds=window_seconds, thresholds=thresholds, baseline=baseline,
                                   min_samples=spec.min_samples, max_error_rate=spec.max_error_rate,
                                   max_latency_p95_ms=spec.max_latency_p95_ms)
        current = features_frame(part)
        result = VariantHealth(perf, current=current, min_rows=spec.min_samples)
        if part.empty or result.too_few:
            return result  # no drift verdict on a handful of rows (a canary's first minutes)
        if reference is not None and opts is not None:
            result.drift = detect_drift(reference, current, opts)
            result.quality = check_quality(result.drift, [str(c) for c in current.columns])
        if pred_reference:
            result.prediction_drift = detect_prediction_drift(
                pred_reference, list(part["output"]) if not part.empty else [],
                threshold=spec.prediction_drift_threshold)
        return result

    whole = check(rows)
    health = ModelHealth(model, version, environment, window_seconds, whole.performance, whole.drift,
                         whole.prediction_drift, whole.quality, rows=rows, reference=reference,
                         current=whole.current, min_rows=spec.min_samples)
    health.notes += notes_before
    if fallback_note:
        health.notes.append(fallback_note)
    names = sorted({str(v) for v in rows["variant"]}) if not rows.empty else []
    if len(names) > 1:
        health.variants = {(name or "(none)"): check(rows[rows["variant"] == name]) for name in names}
        health.notes.append(f"{len(names)} gateway variants in the window ({', '.join(health.variants)}): "
                            "checks and drift run per variant; the all-rows figures are for reference")
    if reference is None:
        health.notes.append("no reference data (model.yaml data.reference / data.test, or --reference): "
                            "data drift and quality not tested")
    elif rows.empty:
        health.notes.append("no predictions in the window: drift and quality not tested")
    if not pred_reference:
        health.notes.append("no prediction baseline (set_prediction_baseline): prediction drift not tested")
    return health
