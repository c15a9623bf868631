"""Fixed-horizon and sequential comparison of two arms, one metric or several.

- Proportions (accuracy, error rate): the two-proportion z-test with the unpooled (Wald)
  variance and its Wald interval of ``B - A`` (statsmodels' ``test_proportions_2indep``,
  ``method="wald"``; the interval is ``confint_proportions_2indep``'s, built from the same
  variance, so it excludes 0 exactly when ``p < alpha``). GrowthBook's frequentist engine uses the
  same unpooled variance (with Welch's t in place of z).
- Latency: scipy's Mann-Whitney U for the p-value; the estimate is the Hodges-Lehmann
  shift ``B - A`` (the median of all pairwise differences ``b_j - a_i``) with Moses'
  distribution-free interval, the inversion of the same test (the normal approximation of
  U's critical value), found by selection without materialising the ``n_a * n_b`` pairs.
- ``sequential=True``: the same statistics through the mSPRT (:mod:`.sequential`): the
  p-value becomes always valid and the interval's critical value grows to match.

The array functions broadcast, so a simulation of a thousand experiments is one call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from mlops_actions.errors import ConfigError
from mlops_actions.stats.interface import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_ROWS,
    Arm,
    ArmSummary,
    Comparison,
    Difference,
    Metric,
    MultiComparison,
    Verdict,
)
from mlops_actions.stats.sequential import DEFAULT_TUNING, always_valid_p, critical_z
from mlops_actions.stats.srm import srm_check

__all__ = [
    "CORRECTIONS",
    "TestResult",
    "compare_arms",
    "compare_metrics",
    "hodges_lehmann",
    "latency_test",
    "proportion_test",
]

FloatArray = npt.NDArray[np.float64]
# estimate, CI low, CI high, p-value, z (its sign says which arm is ahead); NaN when undefined
TestResult = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]
CORRECTIONS = {"holm": "holm", "benjamini_hochberg": "fdr_bh"}  # ours -> statsmodels' name


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha {alpha} is not in (0, 1)", hint="use e.g. 0.05")


def proportion_test(x_a: npt.ArrayLike, n_a: npt.ArrayLike, x_b: npt.ArrayLike, n_b: npt.ArrayLike, *,
                    alpha: float = DEFAULT_ALPHA, sequential: bool = False,
                    tuning: float = DEFAULT_TUNING) -> TestResult:
    """``p_b - p_a`` from counts: unpooled z-test and Wald interval, or their always-valid
    versions. NaN p-value and interval where the variance is 0. The formulas of statsmodels'
    ``test_proportions_2indep(method="wald", compare="diff")`` and
    ``confint_proportions_2indep(method="wald")``, in numpy (the tests check them equal): through
    statsmodels a scalar call cost ~0.5 ms, 8x gbstats' in a per-scenario loop."""
    _check_alpha(alpha)
    xa, na, xb, nb = (np.asarray(v, dtype=float) for v in (x_a, n_a, x_b, n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        pa, pb = xa / na, xb / nb
        diff = pb - pa
        var = pa * (1 - pa) / na + pb * (1 - pb) / nb
        z = diff / np.sqrt(var)
        crit: FloatArray | float
        if sequential:
            crit, p = critical_z(na + nb, alpha, tuning), always_valid_p(z, na + nb, alpha, tuning)
        else:
            crit, p = float(special.ndtri(1 - alpha / 2)), np.asarray(2 * special.ndtr(-np.abs(z)))
        lo, hi = diff - crit * np.sqrt(var), diff + crit * np.sqrt(var)
    flat = ~(var > 0)
    return (diff, np.where(flat, np.nan, lo), np.where(flat, np.nan, hi), np.where(flat, np.nan, p),
            np.where(flat, np.nan, z))


_PICK_BUDGET = 1 << 21  # differences gathered for the final exact pick (16 MiB of floats)
_SAMPLE = 1 << 16  # random differences that bracket the k-th before bisecting


def _count_le(a_sorted: FloatArray, b: FloatArray, t: float) -> int:
    """How many pairwise differences ``b_j - a_i`` are <= t."""
    return int(a_sorted.size * b.size - np.searchsorted(a_sorted, b - t, side="left").sum())


def _kth_difference(a_sorted: FloatArray, b: FloatArray, k: int) -> float:
    """The k-th smallest (1-based) of the ``n_a * n_b`` differences ``b_j - a_i``, by bisection
    on the value with counting (O((n_a + n_b) log n) per step), then an exact pick among the
    few differences left in the bracket."""
    lo = float(b.min() - a_sorted[-1])
    lo -= abs(lo) + 1.0  # count_le(lo) == 0 < k
    hi = float(b.max() - a_sorted[0])
    hi += abs(hi) + 1.0  # count_le(hi) == n_a * n_b >= k, whatever the rounding of b - hi
    below, budget = 0, max(a_sorted.size + b.size, _PICK_BUDGET)
    m = a_sorted.size * b.size
    if m > budget:  # narrow the bracket around the k-th value of a sample of differences
        rng = np.random.default_rng(0)  # only the speed depends on the sample, not the result
        sample = b[rng.integers(0, b.size, _SAMPLE)] - a_sorted[rng.integers(0, a_sorted.size, _SAMPLE)]
        q, margin = k / m, 6 * math.sqrt(k / m * (1 - k / m) / _SAMPLE) + 1 / _SAMPLE
        guess_lo, guess_hi = np.quantile(sample, [max(q - margin, 0.0), min(q + margin, 1.0)])
        c = _count_le(a_sorted, b, float(guess_lo))
        if c < k:
            lo, below = float(guess_lo), c
        if _count_le(a_sorted, b, float(guess_hi)) >= k:
            hi = float(guess_hi)
    while _count_le(a_sorted, b, hi) - below > budget:
        mid = (lo + hi) / 2
        if not lo < mid < hi:  # float resolution (ties): the largest difference <= hi
            start = np.searchsorted(a_sorted, b - hi, side="left")
            ok = start < a_sorted.size
            return float((b[ok] - a_sorted[start[ok]]).max())
        c = _count_le(a_sorted, b, mid)
        if c >= k:
            hi = mid
        else:
            lo, below = mid, c
    start = np.searchsorted(a_sorted, b - hi, side="left")
    stop = np.searchsorted(a_sorted, b - lo, side="left")
    lengths = stop - start
    idx = np.repeat(start - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    left = np.sort(np.repeat(b, lengths) - a_sorted[idx])
    return float(left[min(max(k - below - 1, 0), left.size - 1)])


def hodges_lehmann(a: npt.ArrayLike, b: npt.ArrayLike, *,
                   z: float | None = None) -> tuple[float, float, float]:
    """Hodges-Lehmann shift ``B - A`` and Moses' interval at critical value ``z`` (NaN bounds
    when the samples are too small for it; no interval when ``z`` is None)."""
    a_sorted = np.sort(np.asarray(a, dtype=float))
    b_arr = np.sort(np.asarray(b, dtype=float))  # sorted needles: counting is ~7x faster
    m = a_sorted.size * b_arr.size
    if m == 0:
        return math.nan, math.nan, math.nan
    estimate = _kth_difference(a_sorted, b_arr, (m + 1) // 2)
    if m % 2 == 0:
        estimate = (estimate + _kth_difference(a_sorted, b_arr, m // 2 + 1)) / 2
    if z is None:
        return estimate, math.nan, math.nan
    k = int(np.rint(m / 2 - z * math.sqrt(m * (a_sorted.size + b_arr.size + 1) / 12)))
    if k < 1:
        return estimate, math.nan, math.nan
    return estimate, _kth_difference(a_sorted, b_arr, k), _kth_difference(a_sorted, b_arr, m + 1 - k)


def _mann_whitney_z(a: FloatArray, b: FloatArray) -> float:
    """B's Mann-Whitney statistic standardised (normal approximation, tie-corrected, no
    continuity correction): positive when B tends to be larger."""
    n_a, n_b = a.size, b.size
    n = n_a + n_b
    ranks = stats.rankdata(np.concatenate([a, b]))
    u_b = ranks[n_a:].sum() - n_b * (n_b + 1) / 2
    _, ties = np.unique(np.concatenate([a, b]), return_counts=True)
    var = n_a * n_b / 12 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1)))
    return (u_b - n_a * n_b / 2) / math.sqrt(var) if var > 0 else math.nan


def latency_test(a: npt.ArrayLike, b: npt.ArrayLike, *, alpha: float = DEFAULT_ALPHA,
                 sequential: bool = False, tuning: float = DEFAULT_TUNING) -> TestResult:
    """Hodges-Lehmann shift ``B - A`` with Moses' interval, and Mann-Whitney's p-value (scipy's,
    two-sided; or the mSPRT's on its z-statistic)."""
    _check_alpha(alpha)
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    z = _mann_whitney_z(a_arr, b_arr)
    if sequential:
        n_total = a_arr.size + b_arr.size
        crit = float(critical_z(n_total, alpha, tuning))
        p = float(always_valid_p(z, n_total, alpha, tuning))
    else:
        crit = float(stats.norm.isf(alpha / 2))
        p = float(stats.mannwhitneyu(b_arr, a_arr, alternative="two-sided").pvalue)
    estimate, lo, hi = hodges_lehmann(a_arr, b_arr, z=crit)
    if math.isnan(z):  # every latency equal: no variance
        lo = hi = p = math.nan
    return tuple(np.asarray(v, dtype=float) for v in (estimate, lo, hi, p, z))  # type: ignore[return-value]


def _method(metric: Metric, sequential: bool, tuning: float) -> str:
    if metric.is_proportion:
        base = "two-proportion z-test and Wald CI of B - A (unpooled variance)"
    else:
        base = ("Mann-Whitney U; estimate: Hodges-Lehmann shift B - A (median of pairwise "
                "differences) with Moses' CI")
    if sequential:
        return f"{base}; sequential: mSPRT normal mixture (tuning {tuning:g}), always-valid p-value and CI"
    return base


def _decide(metric: Metric, estimate: float, p: float, z: float, alpha: float) -> Verdict:
    if math.isnan(estimate):
        return Verdict.INCONCLUSIVE
    if math.isnan(p):  # no variance: each arm constant
        if estimate == 0:
            return Verdict.NO_DIFFERENCE
        direction = estimate
    elif p >= alpha:
        return Verdict.NO_DIFFERENCE
    else:
        direction = z if not math.isnan(z) and z != 0 else estimate
    if direction == 0:
        return Verdict.NO_DIFFERENCE
    b_up = direction > 0
    return Verdict.B_BETTER if b_up == metric.higher_is_better else Verdict.A_BETTER


def _summary(metric: Metric, arm: Arm) -> ArmSummary:
    if arm.n == 0:
        return ArmSummary(0, None)
    value = float(np.mean(arm.values)) if metric.is_proportion else float(np.median(arm.values))
    return ArmSummary(arm.n, value)


def _opt(v: FloatArray | float) -> float | None:
    f = float(v)
    return None if math.isnan(f) else f


def compare_arms(metric: Metric, a: Arm, b: Arm, *, alpha: float = DEFAULT_ALPHA,
                 sequential: bool = False, min_rows: int = DEFAULT_MIN_ROWS,
                 expected_split: float | None = None, tuning: float = DEFAULT_TUNING) -> Comparison:
    """Compare one metric between arms A and B (differences are ``B - A``).

    An arm with fewer than ``min_rows`` usable rows makes the verdict ``inconclusive`` with
    the rows each arm still needs (and no interval or p-value); so does a sample ratio
    mismatch against ``expected_split`` (A's expected share of all rows), since then the
    arms cannot be compared fairly.
    """
    _check_alpha(alpha)
    if min_rows < 2:
        raise ConfigError(f"min_rows {min_rows} is below 2", hint="use at least 2 (default 30)")
    metric = Metric(metric)
    sa, sb = _summary(metric, a), _summary(metric, b)
    srm = srm_check(a.rows, b.rows, expected_split) if expected_split is not None else None
    method = _method(metric, sequential, tuning)
    if a.n < min_rows or b.n < min_rows:
        estimate = None
        if sa.value is not None and sb.value is not None:
            estimate = (sb.value - sa.value if metric.is_proportion
                        else _opt(hodges_lehmann(a.values, b.values)[0]))
        return Comparison(metric, sa, sb, Difference(estimate, None, None), Verdict.INCONCLUSIVE,
                          alpha, sequential, method, srm=srm,
                          rows_needed={"a": max(0, min_rows - a.n), "b": max(0, min_rows - b.n)})
    if metric.is_proportion:
        est, lo, hi, p, z = proportion_test(a.values.sum(), a.n, b.values.sum(), b.n, alpha=alpha,
                                            sequential=sequential, tuning=tuning)
    else:
        est, lo, hi, p, z = latency_test(a.values, b.values, alpha=alpha, sequential=sequential,
                                         tuning=tuning)
    verdict = _decide(metric, float(est), float(p), float(z), alpha)
    if srm is not None and srm.mismatch:
        verdict = Verdict.INCONCLUSIVE
    ci = None if math.isnan(float(lo)) or math.isnan(float(hi)) else (float(lo), float(hi))
    return Comparison(metric, sa, sb, Difference(_opt(est), ci, _opt(p)), verdict, alpha, sequential,
                      method, srm=srm)


def compare_metrics(a: Mapping[Metric, Arm], b: Mapping[Metric, Arm], primary: Sequence[Metric],
                    guardrails: Sequence[Metric] = (), *, correction: str = "holm",
                    alpha: float = DEFAULT_ALPHA, sequential: bool = False,
                    min_rows: int = DEFAULT_MIN_ROWS, expected_split: float | None = None,
                    tuning: float = DEFAULT_TUNING) -> MultiComparison:
    """Several metrics at once. The ``primary`` metrics' p-values are adjusted together
    (``correction``: ``holm`` controls the family-wise error rate, ``benjamini_hochberg`` the
    false discovery rate; statsmodels' ``multipletests``) and their verdicts use the adjusted
    p-values; their intervals are at the Bonferroni level ``1 - alpha / m``. Guardrails (the
    metrics that must not get worse, e.g. latency and error rate) are judged apart, each at
    ``alpha``: folding them into the family would make a harm harder to see."""
    from statsmodels.stats.multitest import multipletests

    if correction not in CORRECTIONS:
        raise ConfigError(f"correction {correction!r} is unknown", hint=f"valid: {', '.join(CORRECTIONS)}")
    overlap = set(primary) & set(guardrails)
    if overlap:
        raise ConfigError(f"{', '.join(sorted(overlap))} is both a primary metric and a guardrail",
                          hint="list each metric once")
    _check_alpha(alpha)
    one = partial(compare_arms, sequential=sequential, min_rows=min_rows, expected_split=expected_split,
                  tuning=tuning)
    m = max(len(primary), 1)
    raw = [one(metric, a[metric], b[metric], alpha=alpha / m) for metric in primary]
    p = np.array([1.0 if c.difference.p_value is None else c.difference.p_value for c in raw])
    adjusted = multipletests(p, alpha=alpha, method=CORRECTIONS[correction])[1] if raw else p
    done = []
    for c, p_adj in zip(raw, adjusted, strict=True):
        if c.difference.p_value is None or c.verdict is Verdict.INCONCLUSIVE:
            done.append(replace(c, alpha=alpha))
            continue
        est = math.nan if c.difference.estimate is None else c.difference.estimate
        verdict = _decide(c.metric, est, float(p_adj), est, alpha)
        done.append(replace(c, alpha=alpha, verdict=verdict, p_adjusted=float(p_adj),
                            method=f"{c.method}; {correction} across {m} metrics, CI at 1 - alpha/{m}"))
    guards = tuple(one(metric, a[metric], b[metric], alpha=alpha) for metric in guardrails)
    return MultiComparison(tuple(done), guards, correction)
