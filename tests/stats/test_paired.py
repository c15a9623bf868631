"""Paired comparisons agree with statsmodels and scipy on the same data.

McNemar: the exact p-value equals statsmodels' ``mcnemar(exact=True)`` to 1e-12, the mid-p
equals ``2 P(X < k) + P(X = k)`` from scipy's binomial, the interval equals the Agresti-Min
formula written out from the 2 x 2 table (pandas' crosstab), on 12 cases; the interval's
coverage is near 95 % by simulation. DeLong: equals the textbook O(m n) computation (the
kernel matrix of all positive-negative pairs) to 1e-9 on 10 cases. Bootstrap: the interval of
``bootstrap_delta`` from ``resample_weights`` equals the percentile interval of the same
resamples computed row by row, and agrees with ``scipy.stats.bootstrap(paired=True)`` within
10 % of the interval's width (two Monte Carlo estimates of the same quantiles).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from mlops_actions.errors import ConfigError
from mlops_actions.stats.paired import (
    bootstrap_delta,
    delong,
    mcnemar,
    resample_cells,
    resample_sums,
    resample_weights,
)

# (n rows, accuracy of A, share of rows where B flips A's outcome, bias of the flips towards B right)
MCNEMAR_CASES = {
    "no difference": (400, 0.85, 0.10, 0.5),
    "b clearly better": (500, 0.80, 0.12, 0.85),
    "a clearly better": (500, 0.90, 0.10, 0.15),
    "small effect": (2000, 0.88, 0.05, 0.6),
    "tiny sample": (12, 0.7, 0.3, 0.7),
    "no discordant rows": (171, 0.9, 0.0, 0.5),
    "one discordant row": (171, 0.9, 1 / 171, 1.0),
    "rare flips": (5000, 0.97, 0.002, 0.8),
    "balanced flips": (300, 0.6, 0.2, 0.5),
    "all wrong A": (60, 0.0, 0.4, 1.0),
    "large": (50_000, 0.75, 0.02, 0.55),
    "demo size": (171, 0.93, 0.06, 0.7),
}


def _pairs(name: str) -> tuple[np.ndarray, np.ndarray]:
    n, acc, flip, towards_b = MCNEMAR_CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    a = rng.random(n) < acc
    flipped = rng.random(n) < flip
    # a flip makes B right where A was wrong (prob towards_b) or wrong where A was right
    b_right = np.where(flipped, rng.random(n) < towards_b, a)
    if name == "one discordant row":
        b_right = a.copy()
        b_right[np.flatnonzero(~a)[0]] = True
    return a, b_right


@pytest.mark.parametrize("name", sorted(MCNEMAR_CASES))
def test_mcnemar_agrees_with_statsmodels(name: str) -> None:
    a, b = _pairs(name)
    table = pd.crosstab(pd.Categorical(a, [False, True]), pd.Categorical(b, [False, True]),
                        dropna=False).to_numpy()
    # table[i, j]: A == i, B == j
    only_a, only_b, n = int(table[1, 0]), int(table[0, 1]), int(table.sum())
    exact = mcnemar(a, b, mid_p=False)
    assert exact.p_value == pytest.approx(sm_mcnemar(table, exact=True).pvalue, rel=1e-12, abs=1e-15)
    k, m = min(only_a, only_b), only_a + only_b
    mid = mcnemar(a, b)
    expected_mid = min(1.0, 2 * stats.binom.cdf(k - 1, m, 0.5) + stats.binom.pmf(k, m, 0.5)) if m else 1.0
    assert mid.p_value == pytest.approx(expected_mid, rel=1e-12, abs=1e-15)
    assert mid.p_value <= exact.p_value
    assert mid.estimate == pytest.approx(b.mean() - a.mean(), abs=1e-15)
    # Agresti-Min: add 1/2 to each cell, Wald interval of the paired difference
    t = table + 0.5
    nn = t.sum()
    d = (t[0, 1] - t[1, 0]) / nn
    se = math.sqrt((t[0, 1] + t[1, 0]) - (t[0, 1] - t[1, 0]) ** 2 / nn) / nn
    assert mid.ci == pytest.approx((max(-1, d - 1.959963984540054 * se), min(1, d + 1.959963984540054 * se)),
                                   rel=1e-12)
    assert mid.n == n


def test_agresti_min_interval_covers_95_percent() -> None:
    rng = np.random.default_rng(11)
    probs = np.array([0.70, 0.08, 0.04, 0.18])  # both right, only A right, only B right, both wrong
    true_diff = probs[2] - probs[1]
    covered = 0
    runs = 2000
    cells = rng.choice(4, size=(runs, 80), p=probs)
    for row in cells:
        a = (row == 0) | (row == 1)
        b = (row == 0) | (row == 2)
        lo, hi = mcnemar(a, b).ci  # type: ignore[misc]
        covered += lo <= true_diff <= hi
    assert 0.93 <= covered / runs <= 0.975


def _delong_reference(pos: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) written out with the full kernel matrix psi(x_i, y_j)."""
    comps = []
    aucs = []
    for s in (sa, sb):
        x, y = s[pos][:, None], s[~pos][None, :]
        psi = (x > y) + 0.5 * (x == y)
        aucs.append(psi.mean())
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))
    m, n = pos.sum(), (~pos).sum()
    s10 = np.cov(np.vstack([comps[0][0], comps[1][0]]))
    s01 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
    s = s10 / m + s01 / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    return aucs[1] - aucs[0], var


@pytest.mark.parametrize("seed", range(10))
def test_delong_agrees_with_the_kernel_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [40, 120, 300, 60, 500, 25, 200, 1000, 80, 150][seed]
    pos = rng.random(n) < [0.5, 0.3, 0.1, 0.5, 0.4, 0.5, 0.2, 0.05, 0.5, 0.6][seed]
    signal = pos * 1.0
    sa = signal * 0.8 + rng.normal(size=n)
    sb = signal * (0.8 + 0.3 * (seed % 3)) + rng.normal(size=n)
    if seed in (3, 6):  # ties: scores rounded to one decimal
        sa, sb = np.round(sa, 1), np.round(sb, 1)
    got = delong(pos, sa, sb)
    est, var = _delong_reference(pos, sa, sb)
    assert got.estimate == pytest.approx(est, abs=1e-12)
    z = stats.norm.isf(0.025)
    assert got.ci == pytest.approx((est - z * math.sqrt(var), est + z * math.sqrt(var)), rel=1e-9, abs=1e-12)
    assert got.p_value == pytest.approx(2 * stats.norm.sf(abs(est) / math.sqrt(var)), rel=1e-9)


def test_delong_undefined_cases() -> None:
    assert delong([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]).ci is None  # one class only
    same = delong([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.2, 0.8])
    assert same.estimate == 0 and same.ci is None and same.note


def test_bootstrap_equals_the_same_resamples_done_row_by_row() -> None:
    rng = np.random.default_rng(5)
    n = 300
    x_a, x_b = rng.exponential(1.0, n), rng.exponential(1.1, n)
    reps_a, reps_b = [], []
    for w in resample_weights(n, 500, seed=(3, 4), chunk_elements=7 * n):  # several chunks
        reps_a.append(w @ x_a / n)
        reps_b.append(w @ x_b / n)
    got = bootstrap_delta(x_a.mean(), x_b.mean(), np.concatenate(reps_a), np.concatenate(reps_b), n=n)
    # the same draws, as row indices, one resample at a time
    ref_rng = np.random.default_rng((3, 4))
    diffs = []
    while len(diffs) < 500:
        idx = ref_rng.integers(0, n, size=(min(7, 500 - len(diffs)), n))
        diffs += [x_b[i].mean() - x_a[i].mean() for i in idx]
    assert got.ci == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])), rel=1e-12)
    d = np.array(diffs)
    p = min(1.0, 2 * min(((d <= 0).sum() + 1) / 501, ((d >= 0).sum() + 1) / 501))
    assert got.p_value == pytest.approx(p)


@pytest.mark.parametrize(("n", "max_groups"), [(50, 5000), (400, 5000), (3000, 300)])  # last: buckets
def test_resample_sums_agrees_with_scipy_bootstrap(n: int, max_groups: int) -> None:
    rng = np.random.default_rng(n)
    y = rng.normal(size=n)
    pa, pb = y + rng.normal(scale=1.0, size=n), y + rng.normal(scale=0.8, size=n)
    ea, eb = np.abs(y - pa), np.abs(y - pb)
    sums = resample_sums(np.column_stack([ea, eb]), 2000, seed=1, max_groups=max_groups)
    got = bootstrap_delta(ea.mean(), eb.mean(), sums[:, 0] / sums[:, 2], sums[:, 1] / sums[:, 2], n=n)
    ref = stats.bootstrap((ea, eb), lambda a, b, axis: b.mean(axis=axis) - a.mean(axis=axis), paired=True,
                          vectorized=True, n_resamples=4000, method="percentile", confidence_level=0.95,
                          random_state=np.random.default_rng(2)).confidence_interval
    assert got.ci is not None
    width = ref.high - ref.low
    assert abs(got.ci[0] - ref.low) < 0.1 * width
    assert abs(got.ci[1] - ref.high) < 0.1 * width


def test_resample_cells_is_the_row_bootstrap() -> None:
    cells = np.r_[np.zeros(70), np.ones(20), np.full(10, 5)].astype(int)
    values, counts = resample_cells(cells, 4000, seed=0)
    assert values.tolist() == [0, 1, 5]
    assert (counts.sum(axis=1) == 100).all()
    # the share of category 1 over resamples: mean 0.2, sd sqrt(0.2 * 0.8 / 100)
    share = counts[:, 1] / 100
    assert share.mean() == pytest.approx(0.2, abs=0.003)
    assert share.std() == pytest.approx(math.sqrt(0.16 / 100), rel=0.06)


def test_bootstrap_with_undefined_resamples_has_no_interval() -> None:
    reps = np.r_[np.full(90, np.nan), np.zeros(910)]
    d = bootstrap_delta(0.5, 0.6, reps, reps + 0.1, n=10)
    assert d.estimate == pytest.approx(0.1) and d.ci is None and "9%" in (d.note or "")


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="0/1"):
        mcnemar([0, 2], [1, 1])
    with pytest.raises(ConfigError, match="differ in length"):
        mcnemar([0, 1], [1])
    with pytest.raises(ConfigError, match="confidence"):
        mcnemar([0, 1], [1, 1], confidence=95)
