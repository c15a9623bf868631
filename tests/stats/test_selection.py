"""The k-th pairwise difference is picked exactly, ties and float rounding included."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_actions.stats import compare


@pytest.mark.parametrize("budget", [compare._PICK_BUDGET, 50])  # 50: the sampled bracket and bisection
@pytest.mark.parametrize("seed", range(40))
def test_kth_difference_equals_the_sorted_pairwise_differences(seed: int, budget: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "_PICK_BUDGET", budget)
    rng = np.random.default_rng(seed)
    n_a, n_b = (int(v) for v in rng.integers(1, 90, 2))
    a, b = rng.lognormal(2, 1, n_a), rng.lognormal(2, 1, n_b)
    if seed % 2:  # whole numbers: many equal differences
        a, b = np.round(a), np.round(b)
    d = np.sort((b[None, :] - a[:, None]).ravel())
    a_sorted, b_sorted = np.sort(a), np.sort(b)
    for k in {1, d.size, *(int(k) for k in rng.integers(1, d.size + 1, 15))}:
        assert compare._kth_difference(a_sorted, b_sorted, k) == d[k - 1]
