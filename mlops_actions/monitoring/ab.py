"""The A/B test of one model in one environment: who wins, how sure, and is the split sound.

A model pinned with ``strategy: {type: ab_test, version_b: ...}`` serves two versions; the
gateway logs each prediction with its version. :func:`analyse_ab` takes the rows of each
version and, with the statistics engine (:mod:`mlops_actions.stats`), reports:

- per variant: rows, and per metric the usable rows, the value (a proportion, or the median
  latency) and its interval (Wilson for proportions, the distribution-free order-statistic
  interval for the median);
- the primary metrics (``monitoring.ab_test.primary`` in model.yaml, default accuracy): the
  difference ``B - A`` with its interval and p-value, corrected for multiplicity together
  (Holm by default);
- the guardrails (default latency and error rate): judged each on its own at ``alpha``, a
  passed/failed/inconclusive verdict (B significantly worse fails);
- the sample ratio check of the rows against the configured split (flagged below
  p = 0.001, as GrowthBook does);
- the rows each variant still needs (the minimum per variant, and the sample size for the
  configured minimum detectable effect or, without one, the observed effect);
- the outcome and the winner, in one sentence.

Sequential (mSPRT, always-valid) by default, since the scheduled monitor looks again and
again; ``sequential: false`` (or ``monitor --fixed-horizon``) for one look at a planned size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_actions.config.specs import ABAnalysisSpec
from mlops_actions.monitoring.finding import Finding
from mlops_actions.stats.interface import SRM_THRESHOLD, Arm, Comparison, Metric, MultiComparison, Srm
from mlops_actions.stats.interface import Verdict as Outcome
from mlops_actions.verdict import Verdict

if TYPE_CHECKING:
    from mlops_actions.monitoring.store import MonitoringStore

__all__ = ["ABReport", "ArmFigure", "SampleSize", "VariantSummary", "analyse_ab", "arms_from_rows",
           "assess_ab"]

_UNITS = {Metric.ACCURACY: "points", Metric.ERROR_RATE: "points", Metric.LATENCY_MS: "ms"}


@dataclass(frozen=True)
class ArmFigure:
    """One metric of one variant: usable rows, value, and its ``1 - alpha`` interval."""

    n: int
    value: float | None
    ci: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "value": _num(self.value),
                "ci": None if self.ci is None else [_num(self.ci[0]), _num(self.ci[1])]}


@dataclass(frozen=True)
class VariantSummary:
    name: str  # "A" (the pinned version) or "B" (version_b)
    version: str
    rows: int  # every logged row of the variant in the window (what the split check counts)
    metrics: dict[str, ArmFigure]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "rows": self.rows,
                "metrics": {k: v.to_dict() for k, v in self.metrics.items()}}


@dataclass(frozen=True)
class SampleSize:
    """The rows a primary metric needs to detect ``effect`` with the configured power."""

    metric: str
    effect: float | None  # the difference to detect (B - A), in the metric's units
    source: str  # "minimum_detectable_effect" or "observed"
    per_variant: dict[str, int] | None  # rows each variant needs in all; None: no estimate
    still_needed: dict[str, int] | None  # beyond the rows it has now
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "effect": _num(self.effect), "source": self.source,
                "per_variant": self.per_variant, "still_needed": self.still_needed, "note": self.note}


@dataclass(frozen=True)
class ABReport:
    model: str
    environment: str
    a: VariantSummary
    b: VariantSummary
    share_b: float  # the configured share of traffic to B (traffic_split)
    alpha: float
    sequential: bool
    correction: str
    comparison: MultiComparison
    srm: Srm
    sample_size: tuple[SampleSize, ...]
    outcome: Outcome  # b_better, a_better, no_difference, inconclusive (primary metrics, after SRM)
    winner: str | None  # "a", "b", or None
    reason: str  # why there is no winner, or ""
    rows_needed: dict[str, int] | None  # when inconclusive for lack of rows: more rows per variant
    guardrails: dict[str, Verdict] = field(default_factory=dict)
    min_rows: int = 30
    power: float = 0.8

    @property
    def winner_version(self) -> str | None:
        return {"a": self.a.version, "b": self.b.version}.get(self.winner or "")

    @property
    def verdict(self) -> Verdict:
        """As a health check: failed on a sample ratio mismatch or a failed guardrail (something
        is wrong with the test or with B); passed otherwise, whoever wins, even when it is still
        too early to tell (that is the test running, not a fault)."""
        bad = self.srm.mismatch or any(v is Verdict.FAILED for v in self.guardrails.values())
        return Verdict.FAILED if bad else Verdict.PASSED

    @property
    def ci_level(self) -> float:
        """The level of the primary metrics' intervals (Bonferroni ``1 - alpha/m`` with m of them)."""
        return 1 - self.alpha / max(len(self.comparison.primary), 1)

    def sentence(self) -> str:
        return _sentence(self)

    def findings(self, version: str | None) -> list[Finding]:
        """The split check and each guardrail, for alert sinks (kind ``ab_test``)."""

        srm = self.srm
        out = [Finding(self.model, self.environment, "ab_test", "traffic_split",
                       Verdict.FAILED if srm.mismatch else Verdict.PASSED, _split_text(self),
                       srm.p_value, SRM_THRESHOLD, version)]
        for c in self.comparison.guardrails:
            v = self.guardrails[c.metric.value]
            out.append(Finding(self.model, self.environment, "ab_test", f"guardrail:{c.metric.value}", v,
                               _guardrail_text(self, c, v), c.difference.estimate, None, version))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "environment": self.environment, "sentence": self.sentence(),
                "verdict": self.verdict.value, "outcome": self.outcome.value, "winner": self.winner,
                "winner_version": self.winner_version, "reason": self.reason,
                "rows_needed": self.rows_needed,
                "variants": {"a": self.a.to_dict(), "b": self.b.to_dict()},
                "expected_split": {"a": 1 - self.share_b, "b": self.share_b},
                "srm": {"p_value": _num(self.srm.p_value), "mismatch": self.srm.mismatch,
                        "rows": list(self.srm.rows), "threshold": SRM_THRESHOLD},
                "alpha": self.alpha, "sequential": self.sequential,
                "ci_level": self.ci_level,
                "multiplicity": f"{self.correction} across the {len(self.comparison.primary)} primary "
                                "metric(s); guardrails apart, each at alpha",
                "primary": [c.to_dict() for c in self.comparison.primary],
                "guardrails": [{**c.to_dict(), "check": self.guardrails[c.metric.value].value}
                               for c in self.comparison.guardrails],
                "sample_size": [s.to_dict() for s in self.sample_size]}


# --------------------------------------------------------------------------- rows -> arms


def _same(label: Any, prediction: Any) -> float:
    if _is_number(label) and _is_number(prediction):
        return float(float(label) == float(prediction))
    return float(str(label) == str(prediction))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool)


def arms_from_rows(rows: pd.DataFrame) -> dict[Metric, Arm]:
    """A variant's logged rows (as the prediction store returns them) as the engine's arms:
    accuracy over the labelled rows that did not fail (as the performance report counts them),
    error rate (status >= 500) and latency over every row."""
    from mlops_actions.monitoring.performance import prediction_value

    total = len(rows)
    if total == 0:
        empty = np.empty(0)
        return {m: Arm(values=empty, rows=0) for m in Metric}
    status = rows["status"].to_numpy(dtype=float)
    correct = []
    for actual, output, st in zip(rows["actual"], rows["output"], status, strict=True):
        if actual is None or st >= 500:
            continue
        label, prediction = prediction_value(actual), prediction_value(output)
        if label is not None and prediction is not None:
            correct.append(_same(label, prediction))
    latency = rows["latency_ms"].to_numpy(dtype=float)
    return {Metric.ACCURACY: Arm(values=np.asarray(correct, dtype=float), rows=total),
            Metric.ERROR_RATE: Arm(values=(status >= 500).astype(float), rows=total),
            Metric.LATENCY_MS: Arm(values=latency[np.isfinite(latency)], rows=total)}


def _figure(metric: Metric, arm: Arm, alpha: float) -> ArmFigure:
    if arm.n == 0:
        return ArmFigure(0, None, None)
    if metric.is_proportion:
        from statsmodels.stats.proportion import proportion_confint

        count = float(arm.values.sum())
        lo, hi = proportion_confint(count, arm.n, alpha=alpha, method="wilson")
        return ArmFigure(arm.n, count / arm.n, (float(lo), float(hi)))
    from scipy import stats

    median = float(np.median(arm.values))
    if arm.n < 2 or float(np.ptp(arm.values)) == 0:
        return ArmFigure(arm.n, median, None)
    ci = stats.quantile_test(arm.values, q=median, p=0.5).confidence_interval(1 - alpha)
    lo, hi = float(ci.low), float(ci.high)
    return ArmFigure(arm.n, median, None if math.isnan(lo) or math.isnan(hi) else (lo, hi))


# --------------------------------------------------------------------------- the analysis


def _sample_size(c: Comparison, a: Arm, b: Arm, spec: ABAnalysisSpec, share_b: float,
                 sequential: bool, m: int) -> SampleSize:
    from mlops_actions.stats.power import rows_for_power

    metric = c.metric
    mde = spec.minimum_detectable_effect
    source = "minimum_detectable_effect" if mde is not None else "observed"
    if not metric.is_proportion:
        return _latency_sample_size(c, a, b, spec, share_b, sequential, m)
    pa = float(a.values.mean()) if a.n else None
    pb = float(b.values.mean()) if b.n else None
    if mde is not None:
        base = pa if pa is not None else pb
        if base is None:
            return SampleSize(metric.value, mde, source, None, None, "no rows yet to estimate the variance")
        better = 1 if metric.higher_is_better else -1
        target = base + better * mde
        if not 0 <= target <= 1:
            target = base - better * mde
        effect, var_a, var_b = target - base, base * (1 - base), target * (1 - target)
    else:
        if pa is None or pb is None or pa == pb:
            return SampleSize(metric.value, None if pa is None or pb is None else 0.0, source, None, None,
                              "no observed difference to size for: set monitoring.ab_test."
                              "minimum_detectable_effect")
        effect, var_a, var_b = pb - pa, pa * (1 - pa), pb * (1 - pb)
        if var_a == 0 and var_b == 0:
            var_a = var_b = 0.25 / max(a.n, b.n)  # both constant so far: a rough floor, not 0
    total = rows_for_power(effect, var_a, var_b, share_a=1 - share_b, alpha=spec.alpha / m,
                           power=spec.power, sequential=sequential)
    if total is None:
        return SampleSize(metric.value, effect, source, None, None, "too small a difference to detect")
    per = {"a": max(math.ceil(total * (1 - share_b)), spec.min_rows),
           "b": max(math.ceil(total * share_b), spec.min_rows)}
    still = {"a": max(0, per["a"] - a.n), "b": max(0, per["b"] - b.n)}
    return SampleSize(metric.value, effect, source, per, still)


def _latency_sample_size(c: Comparison, a: Arm, b: Arm, spec: ABAnalysisSpec, share_b: float,
                         sequential: bool, m: int) -> SampleSize:
    """Latency is judged by Mann-Whitney U: the rows its test needs (Happ et al. 2019, see
    :func:`mlops_actions.stats.power.rows_for_rank_test`) to tell A's latencies from A's shifted
    by the minimum detectable effect (faster: latency's better direction), or, without one,
    from B's observed latencies."""
    from mlops_actions.stats.power import rows_for_rank_test

    metric, mde = c.metric, spec.minimum_detectable_effect
    source = "minimum_detectable_effect" if mde is not None else "observed"
    effect = -mde if mde is not None else c.difference.estimate
    if a.n < 2 or (mde is None and b.n < 2):
        return SampleSize(metric.value, effect, source, None, None, "too few rows yet to size a rank test")
    alternative = a.values - mde if mde is not None else b.values
    total = rows_for_rank_test(a.values, alternative, share_a=1 - share_b, alpha=spec.alpha / m,
                               power=spec.power, sequential=sequential)
    if total is None:
        note = ("no observed difference to size for: set monitoring.ab_test.minimum_detectable_effect"
                if mde is None else "too small a difference to detect")
        return SampleSize(metric.value, effect, source, None, None, note)
    per = {"a": max(math.ceil(total * (1 - share_b)), spec.min_rows),
           "b": max(math.ceil(total * share_b), spec.min_rows)}
    return SampleSize(metric.value, effect, source, per,
                      {"a": max(0, per["a"] - a.n), "b": max(0, per["b"] - b.n)})


def _guardrail(c: Comparison) -> Verdict:
    if c.verdict is Outcome.A_BETTER:
        return Verdict.FAILED  # B significantly worse
    if c.verdict is Outcome.INCONCLUSIVE:
        return Verdict.INCONCLUSIVE
    return Verdict.PASSED


def analyse_ab(rows_a: pd.DataFrame, rows_b: pd.DataFrame, *, model: str, version_a: str,
               version_b: str, share_b: float, spec: ABAnalysisSpec | None = None,
               environment: str = "", sequential: bool | None = None) -> ABReport:
    """Compare the rows of version A (the pin) and version B (``version_b``) as ``spec`` says;
    ``sequential`` overrides ``spec.sequential``."""
    from mlops_actions.stats.compare import compare_metrics

    spec = spec or ABAnalysisSpec()
    seq = spec.sequential if sequential is None else sequential
    arms_a, arms_b = arms_from_rows(rows_a), arms_from_rows(rows_b)
    primary = tuple(Metric(m) for m in spec.primary)
    guards = tuple(Metric(m) for m in spec.guardrails)
    multi = compare_metrics(arms_a, arms_b, primary, guards, correction=spec.correction, alpha=spec.alpha,
                            sequential=seq, min_rows=spec.min_rows, expected_split=1 - share_b)
    from mlops_actions.stats.srm import srm_check

    srm = srm_check(len(rows_a), len(rows_b), 1 - share_b)
    used = primary + guards
    summaries = [VariantSummary(name, version, len(rows),
                                {m.value: _figure(m, arms[m], spec.alpha) for m in used})
                 for name, version, rows, arms in (("A", version_a, rows_a, arms_a),
                                                   ("B", version_b, rows_b, arms_b))]
    m = len(primary)
    sizes = tuple(_sample_size(c, arms_a[c.metric], arms_b[c.metric], spec, share_b, seq, m)
                  for c in multi.primary)
    guardrails = {c.metric.value: _guardrail(c) for c in multi.guardrails}
    outcome, winner, reason, rows_needed = _decide(multi, srm, guardrails, sizes)
    return ABReport(model, environment, summaries[0], summaries[1], share_b, spec.alpha, seq,
                    spec.correction, multi, srm, sizes, outcome, winner, reason, rows_needed, guardrails,
                    spec.min_rows, spec.power)


def _decide(multi: MultiComparison, srm: Srm, guardrails: dict[str, Verdict],
            sizes: tuple[SampleSize, ...]) -> tuple[Outcome, str | None, str, dict[str, int] | None]:
    if srm.mismatch:
        return Outcome.INCONCLUSIVE, None, "sample ratio mismatch", None
    short = [c for c in multi.primary if c.rows_needed]
    if short:
        need = {k: max(max((c.rows_needed or {}).get(k, 0) for c in short),
                       max(((s.still_needed or {}).get(k, 0) for s in sizes), default=0))
                for k in ("a", "b")}
        return Outcome.INCONCLUSIVE, None, "too few rows", need
    verdicts = {c.verdict for c in multi.primary}
    if Outcome.B_BETTER in verdicts and Outcome.A_BETTER in verdicts:
        return Outcome.INCONCLUSIVE, None, "the primary metrics disagree", None
    if Outcome.A_BETTER in verdicts:
        return Outcome.A_BETTER, "a", "", None
    if Outcome.B_BETTER in verdicts:
        failed = sorted(k for k, v in guardrails.items() if v is Verdict.FAILED)
        if failed:
            return Outcome.B_BETTER, None, f"B fails the {', '.join(failed)} guardrail", None
        return Outcome.B_BETTER, "b", "", None
    if Outcome.INCONCLUSIVE in verdicts:  # no variance to test
        return Outcome.INCONCLUSIVE, None, "no variance to test", None
    return Outcome.NO_DIFFERENCE, None, "no significant difference", None


def _since_the_test_began(rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> pd.DataFrame:
    """A's rows from the test's first B row on. Before it, A was the version serving alone: its
    rows from then are not part of the test, and counting them made the split check flag a
    mismatch whenever the window reached back before the test (A 306 vs B 171 in the demo). The
    gateway tags B's rows in an A/B test ``b`` (a canary's ``canary``, a mirror's ``shadow``), so
    the first ``b`` row is when the test began; logs without that tag are taken whole."""
    began = rows_b.loc[rows_b["variant"] == "b", "timestamp"]
    return rows_a if began.empty else rows_a[rows_a["timestamp"] >= began.min()]


def assess_ab(store: MonitoringStore, model: str, *, version_a: str, version_b: str, share_b: float,
              spec: ABAnalysisSpec | None = None, environment: str = "",
              window_seconds: float | None = 3600.0, now: float | None = None,
              sequential: bool | None = None, environment_filter: bool | None = None) -> ABReport:
    """:func:`analyse_ab` on the store's rows of both versions in the window.
    ``environment_filter`` as the monitor's: True counts only the rows the gateway tagged with
    ``environment``, False every row, None (default) the tagged rows when there are any."""
    import time

    now = time.time() if now is None else now
    since = now - window_seconds if window_seconds else None
    tagged = environment if environment and environment_filter is not False else None
    rows = store.query(model, environment=tagged, since=since, until=now + 1e-6)
    if rows.empty and tagged and environment_filter is None:
        rows = store.query(model, since=since, until=now + 1e-6)
    versions = rows["version"].astype(str) if not rows.empty else pd.Series([], dtype=str)
    rows_a, rows_b = rows[versions == version_a], rows[versions == version_b]
    return analyse_ab(_since_the_test_began(rows_a, rows_b), rows_b, model=model,
                      version_a=version_a, version_b=version_b, share_b=share_b, spec=spec,
                      environment=environment, sequential=sequential)


# --------------------------------------------------------------------------- words


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"={p:.2g}"


def _effect(metric: Metric, v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v * 100:+.1f}" if metric.is_proportion else f"{v:+.3g}"


def _difference_text(r: ABReport, c: Comparison, level: float | None = None) -> str:
    d = c.difference
    unit = _UNITS[c.metric]
    text = f"{_effect(c.metric, d.estimate)} {unit}"
    if d.ci is not None:
        pct = f"{(level if level is not None else 1 - c.alpha) * 100:.3g}%"
        text += f", {pct} CI [{_effect(c.metric, d.ci[0])}, {_effect(c.metric, d.ci[1])}]"
    p = c.p_adjusted if c.p_adjusted is not None else d.p_value
    if p is None:
        return text + ", no variance to test"
    kind = "always-valid p" if r.sequential else "p"
    if c.p_adjusted is not None and len(r.comparison.primary) > 1:
        kind = f"{r.correction}-adjusted {kind}"
    return text + f", {kind}{_p(p)}"


def _split_text(r: ABReport) -> str:
    s = r.srm
    if not s.mismatch:
        return f"traffic split OK (p{_p(s.p_value)})"
    share_a = 1 - r.share_b
    return (f"traffic split MISMATCH: A {s.rows[0]:,} vs B {s.rows[1]:,} rows against the configured "
            f"{share_a:.0%}/{r.share_b:.0%} (p{_p(s.p_value)}): find out why rows are missing "
            "before trusting any comparison")


def _guardrail_text(r: ABReport, c: Comparison, v: Verdict) -> str:
    if v is Verdict.INCONCLUSIVE:
        return f"guardrail {c.metric.value}: not enough rows yet (A {c.a.n}, B {c.b.n})"
    word = "B is worse" if v is Verdict.FAILED else "B is not worse"
    return f"guardrail {c.metric.value}: {word} ({_difference_text(r, c)})"


def _sentence(r: ABReport) -> str:
    a, b = f"A ({r.a.version})", f"B ({r.b.version})"
    split = _split_text(r)
    level = r.ci_level
    if r.srm.mismatch:
        return f"Inconclusive: {split}."
    if r.reason == "too few rows":
        need = r.rows_needed or {}
        short = [c for c in r.comparison.primary if c.rows_needed]
        have = ", ".join(f"{c.metric.value}: A {c.a.n}, B {c.b.n} usable rows" for c in short)
        basis = f"at least {r.min_rows} usable rows each"
        sized = [s for s in r.sample_size if s.still_needed and s.effect is not None
                 and max(s.still_needed.values()) >= max(need.values(), default=0)]
        if sized:
            s = sized[0]
            what = ("the minimum detectable effect" if s.source == "minimum_detectable_effect"
                    else "the observed")
            basis = f"to detect {what} {_effect(Metric(s.metric), s.effect)} {_UNITS[Metric(s.metric)]} " \
                    f"with {r.power:.0%} power"
        return (f"Inconclusive: too few rows ({have}); {r.a.name} needs {need.get('a', 0):,} more, "
                f"{r.b.name} {need.get('b', 0):,} more ({basis}); {split}.")
    parts = [f"on {c.metric.value}: {_difference_text(r, c, level)}" for c in r.comparison.primary
             if c.verdict in (Outcome.B_BETTER, Outcome.A_BETTER)]
    if r.outcome is Outcome.B_BETTER:
        text = f"{b} beats {a} {'; '.join(parts)}"
        if r.winner is None:
            worse = [c for c in r.comparison.guardrails if r.guardrails[c.metric.value] is Verdict.FAILED]
            text += " but is worse on " + "; ".join(f"{c.metric.value} ({_difference_text(r, c)})"
                                                    for c in worse) + ": no winner"
        return f"{text}; {split}."
    if r.outcome is Outcome.A_BETTER:
        return f"{a} beats {b} {'; '.join(parts)}; {split}."
    every = "; ".join(f"on {c.metric.value}: {_difference_text(r, c, level)}" for c in r.comparison.primary)
    if r.outcome is Outcome.NO_DIFFERENCE:
        return f"No significant difference between {b} and {a} {every}; {split}."
    return f"Inconclusive ({r.reason}) {every}; {split}."
