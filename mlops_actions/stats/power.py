"""How many rows an A/B test needs: the sample size at which a given difference is detected.

For a difference ``effect`` between two arms whose rows have variances ``var_a`` and ``var_b``
(``p (1 - p)`` for a proportion), with A getting ``share_a`` of ``N`` rows in all, the
estimate's standard error is ``se(N) = sqrt(var_a / (N share_a) + var_b / (N (1 - share_a)))``
and the test detects the difference with probability about ``power`` once
``|effect| / se(N) >= crit(N) + z_power``:

- fixed horizon: ``crit = z_{1 - alpha/2}``, which gives the textbook closed form (statsmodels'
  ``NormalIndPower`` up to the negligible far tail);
- sequential: ``crit(N)`` is the mSPRT's always-valid critical value at ``N`` rows
  (:func:`~mlops_actions.stats.sequential.critical_z`), so the answer is the smallest ``N``
  where the interval would exclude 0 at the last look. Peeking earlier can only stop sooner,
  so this is the most the test needs, on average, for that power.
"""

from __future__ import annotations

import math

from scipy import stats

from mlops_actions.errors import ConfigError
from mlops_actions.stats.sequential import DEFAULT_TUNING, critical_z

__all__ = ["MAX_ROWS", "rows_for_power"]

MAX_ROWS = 10**12  # beyond this, "never" in practice: None


def rows_for_power(effect: float, var_a: float, var_b: float, *, share_a: float = 0.5,
                   alpha: float = 0.05, power: float = 0.8, sequential: bool = False,
                   tuning: float = DEFAULT_TUNING) -> int | None:
    """Total rows (both arms) needed to detect ``effect`` with probability ``power`` at
    ``alpha`` (two-sided); None when the effect is 0 or no finite sample would do."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ConfigError(f"alpha {alpha} and power {power} must be in (0, 1)", hint="e.g. 0.05 and 0.8")
    if not 0 < share_a < 1:
        raise ConfigError(f"share of A {share_a} is not in (0, 1)", hint="e.g. 0.5 for an even split")
    if not math.isfinite(effect) or effect == 0 or var_a < 0 or var_b < 0:
        return None
    spread = var_a / share_a + var_b / (1 - share_a)  # N * se(N)^2
    if spread == 0:
        return 2  # no noise at all: any row on each side shows the difference
    z_power = float(stats.norm.isf(1 - power))
    if not sequential:
        n = (float(stats.norm.isf(alpha / 2)) + z_power) ** 2 * spread / effect**2
        return min(max(math.ceil(n), 2), MAX_ROWS) if n <= MAX_ROWS else None

    def enough(n: int) -> bool:
        return abs(effect) * math.sqrt(n / spread) >= float(critical_z(n, alpha, tuning)) + z_power

    hi = 2
    while not enough(hi):
        hi *= 2
        if hi > MAX_ROWS:
            return None
    lo = hi // 2  # not enough (or 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid
    return hi
