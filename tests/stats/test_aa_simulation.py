"""A/A simulation: no true difference, 1,000 experiments, each looked at 10 times.

Why ``--sequential`` exists: a fixed-horizon test looked at once errs at alpha (5%), but
looked at after every batch of traffic (as the scheduled monitor does) and stopped at the
first "significant" look, it errs about four times as often. The mSPRT's always-valid
p-value keeps the chance of *any* false positive across all looks at or below alpha.
Vectorised over the 1,000 x 10 grid of cumulative counts and seeded: a fraction of a second.
"""

from __future__ import annotations

import numpy as np

from mlops_actions.stats import proportion_test

EXPERIMENTS, LOOKS, BATCH, RATE, ALPHA = 1000, 10, 500, 0.1, 0.05


def _cumulative_counts(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Errors so far in A and B, and rows so far per arm, at each look: shape (1000, 10)."""
    rng = np.random.default_rng(seed)
    x_a = rng.binomial(BATCH, RATE, (EXPERIMENTS, LOOKS)).cumsum(axis=1)
    x_b = rng.binomial(BATCH, RATE, (EXPERIMENTS, LOOKS)).cumsum(axis=1)
    n = np.broadcast_to(BATCH * np.arange(1, LOOKS + 1), (EXPERIMENTS, LOOKS))
    return x_a, x_b, n


def _false_positive_rates(seed: int) -> dict[str, float]:
    x_a, x_b, n = _cumulative_counts(seed)
    fixed_p = proportion_test(x_a, n, x_b, n, alpha=ALPHA)[3]
    seq_p = proportion_test(x_a, n, x_b, n, alpha=ALPHA, sequential=True)[3]
    return {
        "fixed, one look at the end": float((fixed_p[:, -1] < ALPHA).mean()),
        "fixed, stop at the first of 10 looks": float((fixed_p < ALPHA).any(axis=1).mean()),
        "sequential, stop at the first of 10 looks": float((seq_p < ALPHA).any(axis=1).mean()),
    }


def test_fixed_horizon_errs_at_alpha_once_and_far_more_when_peeking() -> None:
    rates = _false_positive_rates(seed=20261203)
    print(rates)
    assert abs(rates["fixed, one look at the end"] - ALPHA) <= 0.015
    assert rates["fixed, stop at the first of 10 looks"] >= 0.12  # about 0.19 in theory
    assert rates["sequential, stop at the first of 10 looks"] <= ALPHA


def test_sequential_ci_excludes_zero_exactly_when_p_is_below_alpha() -> None:
    x_a, x_b, n = _cumulative_counts(seed=7)
    _, lo, hi, p, _ = proportion_test(x_a, n, x_b + n // 40, n, alpha=ALPHA, sequential=True)
    assert np.array_equal((lo > 0) | (hi < 0), p < ALPHA)
    _, lo, hi, p, _ = proportion_test(x_a, n, x_b + n // 40, n, alpha=ALPHA)
    assert np.array_equal((lo > 0) | (hi < 0), p < ALPHA)


def test_sequential_still_finds_a_real_difference() -> None:
    """A 2.5-point rise of the error rate (10% -> 12.5%, 5,000 rows per arm) is found by the last look in
    most experiments (about 82%; fixed horizon: 98%): always valid is not never significant."""
    x_a, x_b, n = _cumulative_counts(seed=11)
    rng = np.random.default_rng(12)
    x_b = rng.binomial(BATCH, RATE + 0.025, (EXPERIMENTS, LOOKS)).cumsum(axis=1)
    seq_p = proportion_test(x_a, n, x_b, n, alpha=ALPHA, sequential=True)[3]
    assert (seq_p[:, -1] < ALPHA).mean() > 0.75


def test_latency_sequential_keeps_alpha_where_naive_peeking_does_not() -> None:
    """The same for latency: Mann-Whitney looked at 10 times (100 more rows per arm each
    time) in 400 A/A experiments, against the mSPRT on its z-statistic."""
    from scipy import stats

    from mlops_actions.stats.compare import _mann_whitney_z
    from mlops_actions.stats.sequential import always_valid_p

    experiments, looks, batch = 400, 10, 100
    rng = np.random.default_rng(20261204)
    a = rng.lognormal(np.log(40), 0.6, (experiments, looks * batch))
    b = rng.lognormal(np.log(40), 0.6, (experiments, looks * batch))
    fixed = np.empty((experiments, looks))
    seq = np.empty((experiments, looks))
    for look in range(looks):
        n = (look + 1) * batch
        fixed[:, look] = stats.mannwhitneyu(b[:, :n], a[:, :n], axis=1).pvalue
        z = [_mann_whitney_z(a[e, :n], b[e, :n]) for e in range(experiments)]
        seq[:, look] = always_valid_p(z, 2 * n, ALPHA)
    naive, sequential = (fixed < ALPHA).any(axis=1).mean(), (seq < ALPHA).any(axis=1).mean()
    print({"fixed, last look": (fixed[:, -1] < ALPHA).mean(), "naive": naive, "sequential": sequential})
    assert naive >= 0.12
    assert sequential <= ALPHA
