"""Canary judged against stable on the same window: Kayenta's model, one call.

Inputs (one analysis window; canary and stable served the same traffic at the same time)::

    from mlops_actions.stats.judge import judge, latency, error_rate, accuracy, drift_score

    judgement = judge([
        latency(canary_ms, stable_ms),            # float arrays, one value per request
        error_rate(canary_err, stable_err),       # 0/1 arrays, one per request
        accuracy(canary_ok, stable_ok),           # 0/1 arrays, one per *labelled* request
        drift_score(psi, threshold=0.1),          # a precomputed canary-vs-stable drift score
    ], pass_score=95, marginal_score=75)
    judgement.verdict        # mlops_actions.verdict.Verdict: passed | failed | inconclusive
    judgement.score          # 0..100 (None when no metric had data)
    judgement.summary        # one sentence for status / the PR comment
    judgement.metrics        # per metric: MetricJudgement (classification, estimate, CI, p, ...)
    judgement.to_dict()      # JSON-able

Each input is a :class:`SampleMetric` (two sample arrays) or a :class:`ScoreMetric` (one number
against a threshold); the helpers above fill in the right kind, direction and default tolerance,
and every field can be overridden (``weight``, ``tolerance``, ``critical``, ``min_rows``).

Per metric (Kayenta's ``MannWhitneyClassifier``):

* **continuous** samples (latency): Mann-Whitney U test of canary against stable (scipy's, two
  sided) and the Hodges-Lehmann shift ``canary - stable`` with Moses' distribution-free interval at
  ``confidence`` (98 %, Kayenta's default), from :func:`mlops_actions.stats.compare.latency_test`.
* **binary** samples (error rate, accuracy; 0/1 per row): Mann-Whitney on 0/1 data is degenerate
  (the Hodges-Lehmann shift of two 0/1 samples is -1, 0 or 1, and its interval almost always
  [0, 0] or [-1, 1]), so these use the engine's two-proportion z-test and Wald interval of
  ``p_canary - p_stable`` (:func:`mlops_actions.stats.compare.proportion_test`) at the same
  confidence instead.
* **tolerance band**: ``±(tolerance * |stable's centre| + absolute_tolerance)`` around 0, the
  stable centre being its median (continuous) or proportion (binary). The metric is **High**
  when the whole interval lies above the band, **Low** when it lies below, **Pass** otherwise
  (no significant difference, or a significant one smaller than the allowed change). Samples
  that are identical, or constant and equal, are Pass. **NoData** when either side has fewer
  than ``min_rows`` values.
* **direction** says which classification is bad: ``increase`` (High is bad: latency, error
  rate, drift), ``decrease`` (Low is bad: accuracy) or ``either``. A change the good way is
  reported (High/Low) but counts as passing, as Kayenta's directional classifiers do.
* a :class:`ScoreMetric` (e.g. PSI or Jensen-Shannon between canary's and stable's predictions,
  computed by :func:`mlops_actions.monitoring.drift.detect_prediction_drift`; this module sits
  below monitoring and imports nothing from it) is High when its value exceeds the threshold.

Score (Kayenta's ``WeightedSumScorer`` with one group per metric): ``100 * weight of passing
metrics / weight of metrics with data``; NoData metrics are left out. A bad classification of a
``critical`` metric makes the score 0. Verdict: ``score >= pass_score`` -> passed,
``score < marginal_score`` -> failed, in between (or no metric with data) -> inconclusive.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mlops_actions.errors import ConfigError
from mlops_actions.stats.compare import latency_test, proportion_test
from mlops_actions.verdict import Verdict

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_MARGINAL_SCORE",
    "DEFAULT_MIN_ROWS",
    "DEFAULT_PASS_SCORE",
    "Classification",
    "Direction",
    "Judgement",
    "MetricJudgement",
    "SampleMetric",
    "ScoreMetric",
    "accuracy",
    "classify",
    "drift_score",
    "error_rate",
    "judge",
    "latency",
]

DEFAULT_CONFIDENCE = 0.98  # Kayenta's Mann-Whitney confidence level
DEFAULT_PASS_SCORE = 95.0
DEFAULT_MARGINAL_SCORE = 75.0
DEFAULT_MIN_ROWS = 30

Direction = Literal["increase", "decrease", "either"]  # which change is bad
_DIRECTIONS = ("increase", "decrease", "either")
_KINDS = ("continuous", "binary")


class Classification(enum.StrEnum):
    HIGH = "high"  #: canary significantly above stable, beyond the tolerance band
    LOW = "low"  #: canary significantly below stable, beyond the tolerance band
    PASS = "pass"  # noqa: S105 (a classification, not a password) #: no difference beyond the tolerance band
    NODATA = "nodata"  #: a side had too few rows to judge


@dataclass(frozen=True)
class SampleMetric:
    """One metric measured per request on both versions in the same window.

    ``kind``: ``continuous`` (latency, any real value) or ``binary`` (0/1: error, correct).
    ``tolerance``: allowed change relative to stable's centre (0.1 = 10 %);
    ``absolute_tolerance``: allowed change in the metric's unit; the band is their sum.
    """

    name: str
    canary: npt.ArrayLike
    stable: npt.ArrayLike
    kind: Literal["continuous", "binary"] = "continuous"
    direction: Direction = "increase"
    weight: float = 1.0
    tolerance: float = 0.0
    absolute_tolerance: float = 0.0
    critical: bool = False
    min_rows: int = DEFAULT_MIN_ROWS


@dataclass(frozen=True)
class ScoreMetric:
    """A precomputed canary-vs-stable number (e.g. prediction drift, PSI or JS) against a
    threshold: High when ``value > threshold``; NoData when ``value`` is None."""

    name: str
    value: float | None
    threshold: float
    weight: float = 1.0
    critical: bool = False
    direction: Direction = "increase"


@dataclass(frozen=True)
class MetricJudgement:
    """One metric's result. Differences are ``canary - stable``."""

    name: str
    classification: Classification
    bad: bool  # the classification is the harmful direction
    weight: float
    critical: bool
    canary: float | None  # median (continuous), proportion (binary) or the score's value
    stable: float | None  # the same for stable; the threshold for a score
    n_canary: int
    n_stable: int
    estimate: float | None  # Hodges-Lehmann shift or difference of proportions
    ci: tuple[float, float] | None  # at the judgement's confidence
    p_value: float | None
    band: tuple[float, float] | None  # tolerance band around 0
    method: str
    reason: str  # one clause: why this classification

    @property
    def passed(self) -> bool:
        return self.classification is not Classification.NODATA and not self.bad

    @staticmethod
    def _fmt(v: float, pct: bool) -> str:
        return f"{v:.1%}" if pct else f"{v:.4g}"

    @property
    def label(self) -> str:
        """Kayenta's spelling: High, Low, Pass or NoData."""
        return _LABELS[self.classification]

    def clause(self) -> str:
        """One clause for a status line or a PR comment, e.g. ``latency_ms High (canary 41.2 vs
        stable 30.1, shift +10.9 [+8.1, +13.6] beyond ±3.01)``."""
        if self.canary is None or self.stable is None or self.classification is Classification.NODATA:
            return f"{self.name} {self.label} ({self.n_canary} canary / {self.n_stable} stable rows)"
        pct = self.method.startswith("two-proportion")
        scale, unit = (100.0, " pts") if pct else (1.0, "")
        text = (f"{self.name} {self.label} (canary {self._fmt(self.canary, pct)} vs stable "
                f"{self._fmt(self.stable, pct)}")
        if self.ci is None and self.estimate == 0.0:
            text += ", identical values"
        elif self.ci is not None and self.ci[0] == self.ci[1] and self.p_value is None:
            text += ", no variance on either side"  # e.g. no error at all on both
        elif self.ci is not None and self.estimate is not None and self.band is not None:
            lo, hi, est = (v * scale for v in (*self.ci, self.estimate))
            where = "reaches into" if self.classification is Classification.PASS else "beyond"
            text += (f", diff {est:+.3g} [{lo:+.3g}, {hi:+.3g}]{unit} {where} the band "
                     f"±{self.band[1] * scale:.3g}")
        return text + (", critical)" if self.critical and self.bad else ")")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classification": self.classification.value, "bad": self.bad,
                "weight": self.weight, "critical": self.critical,
                "canary": _num(self.canary), "stable": _num(self.stable),
                "n": {"canary": self.n_canary, "stable": self.n_stable},
                "estimate": _num(self.estimate),
                "ci": None if self.ci is None else [_num(self.ci[0]), _num(self.ci[1])],
                "p_value": _num(self.p_value),
                "band": None if self.band is None else [_num(self.band[0]), _num(self.band[1])],
                "method": self.method, "reason": self.reason}


@dataclass(frozen=True)
class Judgement:
    """The window's judgement: verdict, score and per-metric details."""

    verdict: Verdict  # passed, failed or inconclusive
    score: float | None  # 0..100; None when no metric had data
    pass_score: float
    marginal_score: float
    confidence: float
    metrics: tuple[MetricJudgement, ...] = field(default_factory=tuple)
    summary: str = ""

    @property
    def regressions(self) -> tuple[MetricJudgement, ...]:
        return tuple(m for m in self.metrics if m.bad)

    def per_metric(self) -> str:
        """Every metric's classification, e.g. ``error_rate Pass (...); latency_ms High (...)``."""
        return "; ".join(m.clause() for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "score": _num(self.score), "pass_score": self.pass_score,
                "marginal_score": self.marginal_score, "confidence": self.confidence,
                "summary": self.summary, "metrics": [m.to_dict() for m in self.metrics]}


# --------------------------------------------------------------------------- helpers for callers

def latency(canary: npt.ArrayLike, stable: npt.ArrayLike, *, name: str = "latency_ms",
            tolerance: float = 0.1, **kw: Any) -> SampleMetric:
    """Latency per request (ms): High is bad; by default 10 % above stable's median is allowed."""
    return SampleMetric(name, canary, stable, kind="continuous", direction="increase",
                        tolerance=tolerance, **kw)


def error_rate(canary: npt.ArrayLike, stable: npt.ArrayLike, *, name: str = "error_rate",
               **kw: Any) -> SampleMetric:
    """0/1 per request (1 = the request failed): High is bad."""
    return SampleMetric(name, canary, stable, kind="binary", direction="increase", **kw)


def accuracy(canary: npt.ArrayLike, stable: npt.ArrayLike, *, name: str = "accuracy",
             **kw: Any) -> SampleMetric:
    """0/1 per labelled request (1 = prediction == late label): Low is bad."""
    return SampleMetric(name, canary, stable, kind="binary", direction="decrease", **kw)


def drift_score(value: float | None, *, threshold: float, name: str = "prediction_drift",
                **kw: Any) -> ScoreMetric:
    """A drift score between canary's and stable's predictions (PSI, JS distance): High is bad."""
    return ScoreMetric(name, value, threshold, **kw)


# --------------------------------------------------------------------------- classification

def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _is_bad(c: Classification, direction: Direction) -> bool:
    if c is Classification.HIGH:
        return direction in ("increase", "either")
    if c is Classification.LOW:
        return direction in ("decrease", "either")
    return False


def _check(metric: SampleMetric | ScoreMetric, confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence} is not in (0, 1)", hint="use e.g. 0.98 (Kayenta's)")
    if metric.direction not in _DIRECTIONS:
        raise ConfigError(f"metric {metric.name!r}: direction {metric.direction!r} is unknown",
                          hint=f"valid: {', '.join(_DIRECTIONS)}")
    if not (math.isfinite(metric.weight) and metric.weight >= 0):
        raise ConfigError(f"metric {metric.name!r}: weight {metric.weight} is not a number >= 0",
                          hint="use e.g. 1")
    if isinstance(metric, SampleMetric):
        if metric.kind not in _KINDS:
            raise ConfigError(f"metric {metric.name!r}: kind {metric.kind!r} is unknown",
                              hint=f"valid: {', '.join(_KINDS)}")
        if metric.tolerance < 0 or metric.absolute_tolerance < 0:
            raise ConfigError(f"metric {metric.name!r}: tolerance must be >= 0",
                              hint="tolerance is the allowed change, e.g. 0.1 for 10 %")
        if metric.min_rows < 2:
            raise ConfigError(f"metric {metric.name!r}: min_rows {metric.min_rows} is below 2",
                              hint="use at least 2 (default 30)")


def _values(name: str, side: str, values: npt.ArrayLike, binary: bool) -> npt.NDArray[np.float64]:
    try:
        arr: npt.NDArray[np.float64] = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"metric {name!r}: {side} values are not numbers",
                          hint="pass one number per request") from None
    arr = arr[~np.isnan(arr)]  # a missing value (e.g. no late label) is not a row
    if binary and not np.isin(arr, (0.0, 1.0)).all():
        raise ConfigError(f"metric {name!r}: {side} values must be 0 or 1 for a binary metric",
                          hint="pass 1 for an error (or a correct prediction) and 0 otherwise")
    if not np.isfinite(arr).all():
        raise ConfigError(f"metric {name!r}: {side} values include infinity", hint="drop those rows")
    return arr


def _classify_score(m: ScoreMetric) -> MetricJudgement:
    base: dict[str, Any] = dict(name=m.name, weight=m.weight, critical=m.critical, stable=m.threshold,
                                n_canary=0, n_stable=0, estimate=None, ci=None, p_value=None, band=None,
                                method=f"score against threshold {m.threshold:g}")
    if m.value is None or not math.isfinite(m.value):
        return MetricJudgement(classification=Classification.NODATA, bad=False, canary=None,
                               reason="no score for this window", **base)
    c = Classification.HIGH if m.value > m.threshold else Classification.PASS
    reason = (f"{m.value:.4g} {'>' if c is Classification.HIGH else '<='} threshold {m.threshold:g}")
    return MetricJudgement(classification=c, bad=_is_bad(c, m.direction), canary=float(m.value),
                           reason=reason, **base)


def classify(metric: SampleMetric | ScoreMetric, *,
             confidence: float = DEFAULT_CONFIDENCE) -> MetricJudgement:
    """Classify one metric (see the module docstring)."""
    _check(metric, confidence)
    if isinstance(metric, ScoreMetric):
        return _classify_score(metric)
    binary = metric.kind == "binary"
    can = _values(metric.name, "canary", metric.canary, binary)
    sta = _values(metric.name, "stable", metric.stable, binary)
    alpha = 1 - confidence
    if binary:
        method = (f"two-proportion z-test and Wald CI of canary - stable at {confidence:.0%} "
                  "(Mann-Whitney is degenerate on 0/1 data)")
    else:
        method = (f"Mann-Whitney U; Hodges-Lehmann shift canary - stable with Moses' CI at "
                  f"{confidence:.0%}")
    def centre(a: np.ndarray) -> float:
        return float(a.mean()) if binary else float(np.median(a))

    c_val = centre(can) if can.size else None
    s_val = centre(sta) if sta.size else None
    common: dict[str, Any] = dict(name=metric.name, weight=metric.weight, critical=metric.critical,
                                  canary=c_val, stable=s_val, n_canary=int(can.size),
                                  n_stable=int(sta.size), method=method)
    if can.size < metric.min_rows or sta.size < metric.min_rows:
        return MetricJudgement(classification=Classification.NODATA, bad=False, estimate=None, ci=None,
                               p_value=None, band=None,
                               reason=f"{can.size} canary and {sta.size} stable rows; each side needs "
                                      f"{metric.min_rows}", **common)
    assert s_val is not None
    half = metric.tolerance * abs(s_val) + metric.absolute_tolerance
    band = (-half if half else 0.0, half)
    if np.array_equal(np.sort(can), np.sort(sta)):
        return MetricJudgement(classification=Classification.PASS, bad=False, estimate=0.0, ci=None,
                               p_value=None, band=band, reason="canary and stable values are identical",
                               **common)
    if binary:
        est, lo, hi, p, _ = (float(v) for v in proportion_test(sta.sum(), sta.size, can.sum(), can.size,
                                                               alpha=alpha))
    else:
        est, lo, hi, p, _ = (float(v) for v in latency_test(sta, can, alpha=alpha))
    if math.isnan(lo) or math.isnan(hi):  # no variance: each side constant, and they differ
        lo = hi = est
        p = math.nan
    ci_text = f"the {confidence:.0%} CI [{lo:.4g}, {hi:.4g}]"
    if lo > band[1]:
        c, reason = Classification.HIGH, f"{ci_text} lies above +{half:.4g}"
    elif hi < band[0]:
        c, reason = Classification.LOW, f"{ci_text} lies below -{half:.4g}"
    else:
        c, reason = Classification.PASS, f"{ci_text} reaches into the band ±{half:.4g}"
    return MetricJudgement(classification=c, bad=_is_bad(c, metric.direction), estimate=est,
                           ci=(lo, hi), p_value=None if math.isnan(p) else p, band=band, reason=reason,
                           **common)


_LABELS = {Classification.HIGH: "High", Classification.LOW: "Low", Classification.PASS: "Pass",
           Classification.NODATA: "NoData"}


def _summary(verdict: Verdict, score: float | None, metrics: Sequence[MetricJudgement],
             pass_score: float, marginal_score: float) -> str:
    if score is None:
        return "Canary vs stable: inconclusive, no metric had enough rows on both sides."
    bad = [f"{m.name} {m.classification.value}" for m in metrics if m.bad]
    nodata = [m.name for m in metrics if m.classification is Classification.NODATA]
    text = f"Canary vs stable: {verdict.value}, score {score:.0f}/100 (pass >= {pass_score:g}, " \
           f"marginal >= {marginal_score:g})"
    text += f"; regressions: {', '.join(bad)}" if bad else "; no regression"
    if any(m.critical and m.bad for m in metrics):
        text += " (critical)"
    if nodata:
        text += f"; no data: {', '.join(nodata)}"
    return text + "."


def judge(metrics: Sequence[SampleMetric | ScoreMetric], *, pass_score: float = DEFAULT_PASS_SCORE,
          marginal_score: float = DEFAULT_MARGINAL_SCORE,
          confidence: float = DEFAULT_CONFIDENCE) -> Judgement:
    """Classify every metric and roll them up into a weighted score and a verdict."""
    if not 0 <= marginal_score <= pass_score <= 100:
        raise ConfigError(f"scores: marginal {marginal_score:g} and pass {pass_score:g} must satisfy "
                          "0 <= marginal <= pass <= 100", hint="Kayenta's defaults are 75 and 95")
    if not metrics:
        raise ConfigError("the canary judge needs at least one metric",
                          hint="pass e.g. latency(...) and error_rate(...)")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ConfigError(f"metric names repeat: {', '.join(names)}", hint="name each metric once")
    results = tuple(classify(m, confidence=confidence) for m in metrics)
    judged = [m for m in results if m.classification is not Classification.NODATA]
    total = sum(m.weight for m in judged)
    score: float | None
    if not judged or total <= 0:
        score, verdict = None, Verdict.INCONCLUSIVE
    else:
        score = 100.0 * sum(m.weight for m in judged if not m.bad) / total
        if any(m.critical and m.bad for m in judged):
            score = 0.0
        verdict = (Verdict.PASSED if score >= pass_score else
                   Verdict.FAILED if score < marginal_score else Verdict.INCONCLUSIVE)
    return Judgement(verdict=verdict, score=score, pass_score=pass_score, marginal_score=marginal_score,
                     confidence=confidence, metrics=results,
                     summary=_summary(verdict, score, results, pass_score, marginal_score))
