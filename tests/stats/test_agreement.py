"""``compare_arms`` agrees with statsmodels and scipy on the same data (26 cases).

Tolerances: proportions' difference, Wald CI bounds and z-test p-value within 1e-9
(relative) of statsmodels' ``confint_proportions_2indep`` / ``test_proportions_2indep``
(``method="wald"``) and of the textbook formula; latency's p-value within 1e-9 of
``scipy.stats.mannwhitneyu``, and the Hodges-Lehmann shift and Moses' bounds equal to the
order statistics of the materialised ``n_a * n_b`` pairwise differences (exactly: they are
picked, not computed). Sequential p-values and CIs match the mSPRT written the other way
round, with the mixing variance tau^2 explicit (Johari et al.), within 1e-9.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion as smp

from mlops_actions.stats import Arm, Metric, Verdict, compare_arms

RTOL = 1e-9


@dataclass(frozen=True)
class Case:
    name: str
    metric: Metric
    make: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _bern(p_a: float, n_a: int, p_b: float, n_b: int, missing: float = 0.0
          ) -> Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]:
    def make(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        a = (rng.random(n_a) < p_a).astype(float)
        b = (rng.random(n_b) < p_b).astype(float)
        if missing:  # unlabelled rows are not usable for accuracy: drop them as files.py does
            a, b = a[rng.random(n_a) >= missing], b[rng.random(n_b) >= missing]
        return a, b
    return make


def _lat(draw: Callable[[np.random.Generator, int], np.ndarray], n_a: int, shift_b: float, n_b: int,
         scale_b: float = 1.0) -> Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]:
    def make(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return draw(rng, n_a), draw(rng, n_b) * scale_b + shift_b
    return make


def _rng(case: Case) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(case.name.encode()))


def _lognormal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.lognormal(np.log(40), 0.5, n)


def _pareto(rng: np.random.Generator, n: int) -> np.ndarray:  # heavy tail: infinite variance
    return 20 + 10 * rng.pareto(1.1, n)


def _rounded(rng: np.random.Generator, n: int) -> np.ndarray:  # whole milliseconds: many ties
    return np.round(rng.lognormal(np.log(12), 0.3, n))


CASES = [
    Case("accuracy no difference", Metric.ACCURACY, _bern(0.85, 2000, 0.85, 2000)),
    Case("accuracy B clearly better", Metric.ACCURACY, _bern(0.80, 1000, 0.90, 1000)),
    Case("accuracy A clearly better", Metric.ACCURACY, _bern(0.92, 1000, 0.84, 1000)),
    Case("accuracy small effect", Metric.ACCURACY, _bern(0.850, 20000, 0.858, 20000)),
    Case("accuracy tiny samples", Metric.ACCURACY, _bern(0.8, 31, 0.9, 34)),
    Case("accuracy most labels missing", Metric.ACCURACY, _bern(0.85, 3000, 0.88, 3000, missing=0.8)),
    Case("accuracy unequal arms", Metric.ACCURACY, _bern(0.85, 500, 0.87, 9500)),
    Case("error rate no difference", Metric.ERROR_RATE, _bern(0.02, 10000, 0.02, 10000)),
    Case("error rate rare events", Metric.ERROR_RATE, _bern(0.001, 20000, 0.003, 20000)),
    Case("error rate none in A", Metric.ERROR_RATE, _bern(0.0, 1000, 0.004, 1000)),
    Case("error rate B clearly better", Metric.ERROR_RATE, _bern(0.05, 3000, 0.02, 3000)),
    Case("error rate A clearly better", Metric.ERROR_RATE, _bern(0.01, 3000, 0.03, 3000)),
    Case("error rate tiny samples", Metric.ERROR_RATE, _bern(0.1, 30, 0.2, 30)),
    Case("error rate small effect", Metric.ERROR_RATE, _bern(0.050, 30000, 0.046, 30000)),
    Case("latency no difference", Metric.LATENCY_MS, _lat(_lognormal, 500, 0.0, 500)),
    Case("latency B faster", Metric.LATENCY_MS, _lat(_lognormal, 800, -8.0, 800)),
    Case("latency A faster", Metric.LATENCY_MS, _lat(_lognormal, 800, 6.0, 700)),
    Case("latency heavy tail, no difference", Metric.LATENCY_MS, _lat(_pareto, 400, 0.0, 400)),
    Case("latency heavy tail, B slower", Metric.LATENCY_MS, _lat(_pareto, 600, 0.0, 600, scale_b=1.3)),
    Case("latency tiny samples", Metric.LATENCY_MS, _lat(_lognormal, 30, 5.0, 31)),
    Case("latency ties (whole ms)", Metric.LATENCY_MS, _lat(_rounded, 700, 1.0, 700)),
    Case("latency small effect", Metric.LATENCY_MS, _lat(_lognormal, 4000, 0.8, 4000)),
    Case("latency unequal arms", Metric.LATENCY_MS, _lat(_lognormal, 40, 3.0, 3000)),
]


def _proportion_reference(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    xa, xb, na, nb = a.sum(), b.sum(), a.size, b.size
    lo, hi = smp.confint_proportions_2indep(xb, nb, xa, na, method="wald", compare="diff", alpha=alpha)
    with np.errstate(divide="ignore", invalid="ignore"):  # its ratio and odds ratio divide by 0
        p = smp.test_proportions_2indep(xb, nb, xa, na, method="wald", compare="diff",
                                        correction=False).pvalue
    # the textbook formula too, so that a change of statsmodels' defaults cannot hide a slip
    pa, pb = xa / na, xb / nb
    se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    z = (pb - pa) / se
    assert math.isclose(p, 2 * stats.norm.sf(abs(z)), rel_tol=1e-9)
    assert math.isclose(hi - lo, 2 * stats.norm.isf(alpha / 2) * se, rel_tol=1e-9)
    return pb - pa, float(lo), float(hi), float(p)


def _latency_reference(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    d = np.sort((b[None, :] - a[:, None]).ravel())
    m = d.size
    k = int(np.rint(m / 2 - stats.norm.isf(alpha / 2) * math.sqrt(m * (a.size + b.size + 1) / 12)))
    p = stats.mannwhitneyu(b, a, alternative="two-sided").pvalue
    return float(np.median(d)), float(d[k - 1]), float(d[m - k]), float(p)


def _expected_verdict(metric: Metric, estimate: float, p: float, alpha: float) -> Verdict:
    if p >= alpha:
        return Verdict.NO_DIFFERENCE
    return Verdict.B_BETTER if (estimate > 0) == metric.higher_is_better else Verdict.A_BETTER


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_fixed_horizon_agrees_with_statsmodels_and_scipy(case: Case, alpha: float) -> None:
    a, b = case.make(_rng(case))
    got = compare_arms(case.metric, Arm(a, a.size), Arm(b, b.size), alpha=alpha, min_rows=30)
    reference = _proportion_reference if case.metric.is_proportion else _latency_reference
    estimate, lo, hi, p = reference(a, b, alpha)
    d = got.difference
    assert d.estimate is not None and d.ci is not None and d.p_value is not None
    assert math.isclose(d.estimate, estimate, rel_tol=RTOL, abs_tol=1e-15)
    assert math.isclose(d.ci[0], lo, rel_tol=RTOL, abs_tol=1e-15)
    assert math.isclose(d.ci[1], hi, rel_tol=RTOL, abs_tol=1e-15)
    assert math.isclose(d.p_value, p, rel_tol=RTOL, abs_tol=1e-300)
    assert got.verdict is _expected_verdict(case.metric, estimate, p, alpha)
    value = np.mean if case.metric.is_proportion else np.median
    assert (got.a.n, got.b.n) == (a.size, b.size)
    assert got.a.value == pytest.approx(value(a)) and got.b.value == pytest.approx(value(b))


def test_the_cases_span_every_verdict() -> None:
    seen = set()
    for case in CASES:
        a, b = case.make(_rng(case))
        seen.add(compare_arms(case.metric, Arm(a, a.size), Arm(b, b.size)).verdict)
    assert seen == {Verdict.B_BETTER, Verdict.A_BETTER, Verdict.NO_DIFFERENCE}


def _msprt_reference(estimate: float, variance: float, n_total: int, alpha: float,
                     tuning: float = 5000.0) -> tuple[float, float]:
    """Johari et al.'s mixture likelihood ratio with tau^2 = rho^2 * N * V (GrowthBook's rho)."""
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tuning
    tau2 = rho2 * n_total * variance
    lam = math.sqrt(variance / (variance + tau2)) * math.exp(
        estimate**2 * tau2 / (2 * variance * (variance + tau2)))
    half = math.sqrt(variance * (variance + tau2) / tau2
                     * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance)))
    return min(1.0, 1 / lam), half


@pytest.mark.parametrize("case", [c for c in CASES if c.metric.is_proportion], ids=lambda c: c.name)
def test_sequential_proportions_match_the_msprt(case: Case) -> None:
    a, b = case.make(_rng(case))
    got = compare_arms(case.metric, Arm(a, a.size), Arm(b, b.size), sequential=True)
    pa, pb = a.mean(), b.mean()
    variance = pa * (1 - pa) / a.size + pb * (1 - pb) / b.size
    p, half = _msprt_reference(pb - pa, variance, a.size + b.size, 0.05)
    d = got.difference
    assert d.p_value == pytest.approx(p, rel=RTOL) and d.ci is not None
    assert d.ci[1] - d.ci[0] == pytest.approx(2 * half, rel=RTOL)
    fixed = compare_arms(case.metric, Arm(a, a.size), Arm(b, b.size))
    assert fixed.difference.ci is not None and fixed.difference.p_value is not None
    assert d.p_value >= fixed.difference.p_value  # always valid costs power, never gains it
    assert d.ci[1] - d.ci[0] > fixed.difference.ci[1] - fixed.difference.ci[0]


def test_sequential_latency_is_the_msprt_of_mann_whitneys_z() -> None:
    rng = np.random.default_rng(5)
    a, b = _lognormal(rng, 700), _lognormal(rng, 600) + 4
    got = compare_arms(Metric.LATENCY_MS, Arm(a, a.size), Arm(b, b.size), sequential=True)
    n_a, n_b = a.size, b.size
    u_b = stats.mannwhitneyu(b, a).statistic
    z = (u_b - n_a * n_b / 2) / math.sqrt(n_a * n_b * (n_a + n_b + 1) / 12)  # no ties here
    p, _ = _msprt_reference(z, 1.0, n_a + n_b, 0.05)
    assert got.difference.p_value == pytest.approx(p, rel=1e-9)
    assert got.verdict is Verdict.A_BETTER  # B is 4 ms slower: worse


def test_no_variance_gives_null_ci_and_p_value() -> None:
    zeros = np.zeros(500)
    got = compare_arms(Metric.ERROR_RATE, Arm(zeros, 500), Arm(zeros, 500))
    assert got.difference.to_dict() == {"estimate": 0.0, "ci": None, "p_value": None}
    assert got.verdict is Verdict.NO_DIFFERENCE
    flat = np.full(100, 12.0)
    got = compare_arms(Metric.LATENCY_MS, Arm(flat, 100), Arm(flat, 100))
    assert got.difference.ci is None and got.difference.p_value is None
    assert got.verdict is Verdict.NO_DIFFERENCE


def test_too_few_rows_is_inconclusive_with_the_rows_needed() -> None:
    rng = np.random.default_rng(1)
    got = compare_arms(Metric.ACCURACY, Arm(rng.random(12).round(), 40), Arm(rng.random(50).round(), 50))
    assert got.verdict is Verdict.INCONCLUSIVE
    assert got.rows_needed == {"a": 18, "b": 0}
    assert got.difference.ci is None and got.difference.p_value is None
    assert got.difference.estimate is not None
    got = compare_arms(Metric.ACCURACY, Arm(np.empty(0), 40), Arm(np.ones(50), 50), min_rows=60)
    assert got.rows_needed == {"a": 60, "b": 10} and got.a.value is None and got.difference.estimate is None
