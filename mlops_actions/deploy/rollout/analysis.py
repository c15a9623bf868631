"""Analysis measurements with Argo Rollouts' semantics, computed from real traffic.

Config apart from calculation: :class:`~mlops_actions.config.specs.AnalysisSpec`
says what to measure; :func:`measure` computes one measurement per metric from
the gateway's traffic window (error rate, latency p95/p99) and the prediction
store (accuracy on labelled feedback, prediction drift against stable);
:func:`combine` and :func:`verdict` apply the limits.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_actions.config.specs import AnalysisMetric, AnalysisSpec
from mlops_actions.deploy.rollout.plane import (
    TRAFFIC_METRICS,
    Computed,
    TrafficSource,
    VersionSample,
    Window,
    sample_window,
)
from mlops_actions.deploy.rollout.record import Measurement
from mlops_actions.monitoring.interface import PredictionStore
from mlops_actions.verdict import Verdict

__all__ = ["AnalysisCounts", "background_tally", "check", "combine", "evaluate", "inconclusive", "measure",
           "verdict"]


@dataclass(frozen=True)
class AnalysisCounts:
    successes: int = 0
    failures: int = 0
    inconclusives: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    def add(self, result: Verdict) -> AnalysisCounts:
        return AnalysisCounts(
            self.successes + (result is Verdict.PASSED),
            self.failures + (result is Verdict.FAILED),
            self.inconclusives + (result is Verdict.INCONCLUSIVE),
            self.errors + (result is Verdict.ERROR),
            self.consecutive_errors + 1 if result is Verdict.ERROR else 0,
        )

    @property
    def taken(self) -> int:
        return self.successes + self.failures + self.inconclusives + self.errors


def check(metric: AnalysisMetric, value: float, samples: int, at: float) -> Measurement:
    """One value against the metric's bounds (Argo's success condition): passed or failed."""
    ok = (metric.max is None or value <= metric.max) and (metric.min is None or value >= metric.min)
    bound = " and ".join(b for b in (f"<= {metric.max}" if metric.max is not None else "",
                                     f">= {metric.min}" if metric.min is not None else "") if b)
    verb = "ok" if ok else "out of bounds"
    return Measurement(metric.name, Verdict.PASSED if ok else Verdict.FAILED, value, samples,
                       f"{metric.name} {value:.4g} {verb}: expected {bound} (n={samples})", at)


def inconclusive(metric: AnalysisMetric, samples: int, needed: int, at: float) -> Measurement:
    """Too few samples to judge: neither condition holds (Argo's Inconclusive)."""
    return Measurement(metric.name, Verdict.INCONCLUSIVE, None, samples,
                       f"{metric.name}: not enough data (n={samples} < min_samples {needed}); send more "
                       "traffic or lower analysis.min_samples", at)


#: a prediction-drift distance over its max fails only when the two samples differ significantly
DRIFT_ALPHA = 0.05


def _drift(current: Sequence[Any], reference: Sequence[Any]) -> tuple[float, float]:
    """(distance, p-value): KS for numeric outputs with many values, else total variation
    distance with a chi-square test of the counts. The p-value says whether the samples are big
    enough to tell the distance from noise: two samples of 24 and 96 binary outputs of the same
    model are 0.11 apart on average, and more than 0.2 about one time in fourteen."""
    def flat(xs: Sequence[Any]) -> list[Any]:
        return [x[0] if isinstance(x, list) and len(x) == 1 else x for x in xs]
    cur, ref = flat(current), flat(reference)
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in [*cur, *ref])
    if numeric and len(set(cur) | set(ref)) > 20:
        from scipy.stats import ks_2samp
        ks = ks_2samp(cur, ref)
        return float(ks.statistic), float(ks.pvalue)
    cc, rc = Counter(map(str, cur)), Counter(map(str, ref))
    keys = sorted(set(cc) | set(rc))
    distance = 0.5 * sum(abs(cc[k] / len(cur) - rc[k] / len(ref)) for k in keys)
    if len(keys) < 2:
        return distance, 1.0
    from scipy.stats import chi2_contingency
    return distance, float(chi2_contingency([[cc[k] for k in keys], [rc[k] for k in keys]]).pvalue)


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[k]


def _from_backend(metric: AnalysisMetric, spec: AnalysisSpec, value: Computed, at: float) -> Measurement:
    """A value a metrics backend computed (Prometheus): no data is Inconclusive (its query returns
    nothing while fewer than ``min_samples`` requests were seen), a failed query is Error."""
    if value.error is not None:
        return Measurement(metric.name, Verdict.ERROR, None, 0,
                           f"{metric.name}: measurement error: {value.error}", at)
    if value.value is None:
        return Measurement(metric.name, Verdict.INCONCLUSIVE, None, 0,
                           f"{metric.name}: no data (fewer than min_samples {spec.min_samples} "
                           "requests, or no labelled feedback yet)", at)
    return check(metric, value.value, value.samples, at)


def _one(metric: AnalysisMetric, spec: AnalysisSpec, candidate: VersionSample, stable: VersionSample | None,
         at: float) -> Measurement:
    if metric.name in candidate.computed:
        return _from_backend(metric, spec, candidate.computed[metric.name], at)
    if metric.name in TRAFFIC_METRICS:
        if "traffic" in candidate.unavailable:
            raise _Unavailable(candidate.unavailable["traffic"])
        n = candidate.requests
        if n < spec.min_samples:
            return inconclusive(metric, n, spec.min_samples, at)
        lat = sorted(candidate.latencies_ms)
        value = {"error_rate": sum(candidate.errors) / n, "latency_p95_ms": _percentile(lat, 0.95),
                 "latency_p99_ms": _percentile(lat, 0.99)}[metric.name]
        assert value is not None
        return check(metric, float(value), n, at)
    if metric.name == "accuracy":
        if "labels" in candidate.unavailable:
            raise _Unavailable(candidate.unavailable["labels"])
        if len(candidate.correct) < spec.min_samples:
            return inconclusive(metric, len(candidate.correct), spec.min_samples, at)
        return check(metric, sum(candidate.correct) / len(candidate.correct), len(candidate.correct), at)
    if metric.name == "prediction_drift":
        if stable is None:
            raise RuntimeError("prediction drift needs a prediction store and a stable version")
        for s in (candidate, stable):
            if "predictions" in s.unavailable:
                raise _Unavailable(s.unavailable["predictions"])
        cur, ref = list(candidate.predictions), list(stable.predictions)
        if min(len(cur), len(ref)) < spec.min_samples:
            return inconclusive(metric, min(len(cur), len(ref)), spec.min_samples, at)
        distance, p = _drift(cur, ref)
        n = min(len(cur), len(ref))
        if metric.max is not None and distance > metric.max and p >= DRIFT_ALPHA:
            return Measurement(
                metric.name, Verdict.INCONCLUSIVE, distance, n,
                f"{metric.name} {distance:.4g} > {metric.max} but not enough data (n={n}) to tell "
                f"it from noise (p={p:.2g} >= {DRIFT_ALPHA}); send more traffic or raise "
                "analysis.min_samples", at)
        return check(metric, distance, len(cur), at)
    raise RuntimeError(f"unknown analysis metric {metric.name!r}")  # pragma: no cover - the spec's Literal


class _Unavailable(Exception):
    """A signal the plane could not read; its message is already ``Type: why``."""


def evaluate(spec: AnalysisSpec, candidate: VersionSample, stable: VersionSample | None,
             at: float) -> list[Measurement]:
    """The guardrail: one measurement per metric of ``spec``, the candidate's window against the
    spec's absolute bounds (``stable`` is read only by prediction drift)."""
    out: list[Measurement] = []
    for metric in spec.metrics:
        try:
            out.append(_one(metric, spec, candidate, stable, at))
        except _Unavailable as exc:
            out.append(Measurement(metric.name, Verdict.ERROR, None, 0,
                                   f"{metric.name}: measurement error: {exc}", at))
        except Exception as exc:
            out.append(Measurement(metric.name, Verdict.ERROR, None, 0,
                                   f"{metric.name}: measurement error: {type(exc).__name__}: {exc}", at))
    return out


def measure(spec: AnalysisSpec, *, model: str, version: str, stable_version: str | None,
            stats: TrafficSource, store: PredictionStore | None, since: float, until: float | None = None,
            labels_since: float | None = None) -> list[Measurement]:
    """One measurement per metric of ``spec`` for ``version`` over [since, until), read from a
    traffic recorder and a prediction store (what the local planes' ``measure`` does)."""
    at = time.time() if until is None else until
    window = Window(since, at, labels_since if labels_since is not None else since)
    versions = [version] if stable_version is None else [version, stable_version]
    samples = sample_window(stats, store, model, versions, window, spec)
    return evaluate(spec, samples[version], samples.get(stable_version) if stable_version else None, at)


def combine(measurements: Sequence[Measurement]) -> Verdict:
    """Failed beats error beats inconclusive beats passed."""
    results = {m.result for m in measurements}
    for r in (Verdict.FAILED, Verdict.ERROR, Verdict.INCONCLUSIVE):
        if r in results:
            return r
    return Verdict.PASSED


def verdict(spec: AnalysisSpec, counts: AnalysisCounts) -> Verdict | None:
    """Argo's AnalysisRun outcome so far: FAILED / ERROR (roll back), INCONCLUSIVE (pause),
    PASSED (all ``count`` measurements taken), or None (keep measuring)."""
    if counts.failures > spec.failure_limit:
        return Verdict.FAILED
    if counts.consecutive_errors > spec.consecutive_error_limit:
        return Verdict.ERROR
    if counts.inconclusives > spec.inconclusive_limit:
        return Verdict.INCONCLUSIVE
    if counts.taken >= spec.count:
        return Verdict.PASSED
    return None


def background_tally(spec: AnalysisSpec, failures: int, consecutive_errors: int, result: Verdict
                     ) -> tuple[int, int, str | None]:
    """One background-analysis measurement counted the Argo way (failures add up, errors
    count only in a row): the new counts, and why to roll back (``"failed"`` / ``"errors"``)
    or None."""
    failures += result is Verdict.FAILED
    consecutive_errors = consecutive_errors + 1 if result is Verdict.ERROR else 0
    why = "failed" if failures > spec.failure_limit else \
        "errors" if consecutive_errors > spec.consecutive_error_limit else None
    return failures, consecutive_errors, why
