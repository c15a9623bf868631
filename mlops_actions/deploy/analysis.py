"""Analysis measurements with Argo Rollouts' semantics, computed from real traffic.

Config apart from calculation: :class:`~mlops_actions.config.specs.AnalysisSpec`
says what to measure; :func:`measure` computes one measurement per metric from
the gateway's traffic window (error rate, latency p95/p99) and the prediction
store (accuracy on labelled feedback, prediction drift against stable);
:func:`combine` and :func:`verdict` apply the limits.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlops_actions.config.specs import AnalysisMetric, AnalysisSpec
from mlops_actions.deploy.interface import GateResult, Measurement
from mlops_actions.monitoring.interface import PredictionStore
from mlops_actions.serving.metrics import WindowStats

__all__ = ["AnalysisCounts", "StatsSource", "background_tally", "check", "combine", "inconclusive", "measure",
           "verdict"]


class StatsSource(Protocol):
    def window(self, model: str, version: str, since: float, until: float | None = None) -> WindowStats: ...


@dataclass(frozen=True)
class AnalysisCounts:
    successes: int = 0
    failures: int = 0
    inconclusives: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    def add(self, result: GateResult) -> AnalysisCounts:
        return AnalysisCounts(
            self.successes + (result is GateResult.PASSED),
            self.failures + (result is GateResult.FAILED),
            self.inconclusives + (result is GateResult.INCONCLUSIVE),
            self.errors + (result is GateResult.ERROR),
            self.consecutive_errors + 1 if result is GateResult.ERROR else 0,
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
    return Measurement(metric.name, GateResult.PASSED if ok else GateResult.FAILED, value, samples,
                       f"{metric.name} {value:.4g} {verb}: expected {bound} (n={samples})", at)


def inconclusive(metric: AnalysisMetric, samples: int, needed: int, at: float) -> Measurement:
    """Too few samples to judge: neither condition holds (Argo's Inconclusive)."""
    return Measurement(metric.name, GateResult.INCONCLUSIVE, None, samples,
                       f"{metric.name}: not enough data (n={samples} < min_samples {needed}); send more "
                       "traffic or lower analysis.min_samples", at)


def _labels(store: PredictionStore, model: str, version: str, since: float) -> list[tuple[Any, Any]]:
    frame = store.query(model, version=version, since=since)
    frame = frame[frame["actual"].notna()]
    return list(zip(frame["output"].tolist(), frame["actual"].tolist(), strict=True))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and len(a) == 1:
        a = a[0]
    try:
        return bool(float(a) == float(b))
    except (TypeError, ValueError):
        return str(a) == str(b)


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


def measure(spec: AnalysisSpec, *, model: str, version: str, stable_version: str | None,
            stats: StatsSource, store: PredictionStore | None, since: float, until: float | None = None,
            labels_since: float | None = None) -> list[Measurement]:
    """One measurement per metric of ``spec`` for ``version`` over [since, until)."""
    at = time.time() if until is None else until
    window = stats.window(model, version, since, until)
    out: list[Measurement] = []
    for metric in spec.metrics:
        try:
            if metric.name in ("error_rate", "latency_p95_ms", "latency_p99_ms"):
                if window.requests < spec.min_samples:
                    out.append(inconclusive(metric, window.requests, spec.min_samples, at))
                    continue
                value = {"error_rate": window.error_rate, "latency_p95_ms": window.latency_p95_ms,
                         "latency_p99_ms": window.latency_p99_ms}[metric.name]
                assert value is not None
                out.append(check(metric, float(value), window.requests, at))
            elif metric.name == "accuracy":
                if store is None:
                    raise RuntimeError("no prediction store configured")
                pairs = _labels(store, model, version, labels_since if labels_since is not None else since)
                if len(pairs) < spec.min_samples:
                    out.append(inconclusive(metric, len(pairs), spec.min_samples, at))
                    continue
                acc = sum(_same(o, a) for o, a in pairs) / len(pairs)
                out.append(check(metric, acc, len(pairs), at))
            elif metric.name == "prediction_drift":
                if store is None or stable_version is None:
                    raise RuntimeError("prediction drift needs a prediction store and a stable version")
                start = labels_since if labels_since is not None else since
                cur = store.query(model, version=version, since=start)["output"].tolist()
                ref = store.query(model, version=stable_version, since=start)["output"].tolist()
                if min(len(cur), len(ref)) < spec.min_samples:
                    out.append(inconclusive(metric, min(len(cur), len(ref)), spec.min_samples, at))
                    continue
                distance, p = _drift(cur, ref)
                n = min(len(cur), len(ref))
                if metric.max is not None and distance > metric.max and p >= DRIFT_ALPHA:
                    out.append(Measurement(
                        metric.name, GateResult.INCONCLUSIVE, distance, n,
                        f"{metric.name} {distance:.4g} > {metric.max} but not enough data (n={n}) to tell "
                        f"it from noise (p={p:.2g} >= {DRIFT_ALPHA}); send more traffic or raise "
                        "analysis.min_samples", at))
                    continue
                out.append(check(metric, distance, len(cur), at))
            else:  # pragma: no cover - the spec's Literal forbids it
                raise RuntimeError(f"unknown analysis metric {metric.name!r}")
        except Exception as exc:
            out.append(Measurement(metric.name, GateResult.ERROR, None, 0,
                                   f"{metric.name}: measurement error: {type(exc).__name__}: {exc}", at))
    return out


def combine(measurements: Sequence[Measurement]) -> GateResult:
    """Failed beats error beats inconclusive beats passed."""
    results = {m.result for m in measurements}
    for r in (GateResult.FAILED, GateResult.ERROR, GateResult.INCONCLUSIVE):
        if r in results:
            return r
    return GateResult.PASSED


def verdict(spec: AnalysisSpec, counts: AnalysisCounts) -> GateResult | None:
    """Argo's AnalysisRun outcome so far: FAILED / ERROR (roll back), INCONCLUSIVE (pause),
    PASSED (all ``count`` measurements taken), or None (keep measuring)."""
    if counts.failures > spec.failure_limit:
        return GateResult.FAILED
    if counts.consecutive_errors > spec.consecutive_error_limit:
        return GateResult.ERROR
    if counts.inconclusives > spec.inconclusive_limit:
        return GateResult.INCONCLUSIVE
    if counts.taken >= spec.count:
        return GateResult.PASSED
    return None


def background_tally(spec: AnalysisSpec, failures: int, consecutive_errors: int, result: GateResult
                     ) -> tuple[int, int, str | None]:
    """One background-analysis measurement counted the Argo way (failures add up, errors
    count only in a row): the new counts, and why to roll back (``"failed"`` / ``"errors"``)
    or None. Shared by the gateway's controller and gateway-api mode's."""
    failures += result is GateResult.FAILED
    consecutive_errors = consecutive_errors + 1 if result is GateResult.ERROR else 0
    why = "failed" if failures > spec.failure_limit else \
        "errors" if consecutive_errors > spec.consecutive_error_limit else None
    return failures, consecutive_errors, why
