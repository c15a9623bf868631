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

Latency is compared with a rank test (Mann-Whitney U), for which there is no variance of a
difference to plug in. :func:`rows_for_rank_test` follows Happ, Bathke & Brunner (2019),
"Optimal sample size planning for the Wilcoxon-Mann-Whitney test", Stat Med 38:363 (the method
of statsmodels' ``samplesize_rank_compare_onetail``, which the tests check it against): from a
reference sample (A's latencies) and a sample of what B would look like (A's latencies shifted
by the effect to detect, or B's observed latencies), the relative effect
``p = P(B > A) + P(B = A) / 2``, the spread of the pooled ranks under no difference
``sigma_0`` and of the placements under the alternative ``sigma_1`` give
``N = (sigma_0 crit + sigma_1 z_power)^2 / (t (1 - t) (p - 1/2)^2)`` with ``t`` the share of A;
sequential: the smallest ``N`` at which it holds with the mSPRT's ``crit(N)``, as above.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from mlops_actions.errors import ConfigError
from mlops_actions.stats.sequential import DEFAULT_TUNING, critical_z

__all__ = ["MAX_ROWS", "RankEffect", "rank_effect", "rows_for_power", "rows_for_rank_test"]

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

    return _smallest(enough)


def _smallest(enough: Callable[[int], bool]) -> int | None:
    """The smallest ``n >= 2`` with ``enough(n)`` (monotone), or None beyond :data:`MAX_ROWS`."""
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


@dataclass(frozen=True)
class RankEffect:
    """What a rank test's sample size depends on (Happ et al. 2019)."""

    relative_effect: float  # p = P(B > A) + P(B = A) / 2; 0.5 is no difference
    sd_null: float  # sigma_0: spread of the pooled mid-ranks / N (no difference)
    sd_alternative: float  # sigma_1: of the placements, at A's share of rows
    share_a: float


def rank_effect(reference: npt.ArrayLike, alternative: npt.ArrayLike, *, share_a: float = 0.5) -> RankEffect:
    """The relative effect of ``alternative`` (B) over ``reference`` (A) and the two spreads of
    Happ et al.'s formula (see the module docstring)."""
    if not 0 < share_a < 1:
        raise ConfigError(f"share of A {share_a} is not in (0, 1)", hint="e.g. 0.5 for an even split")
    ref = np.asarray(reference, dtype=float).reshape(-1)
    alt = np.asarray(alternative, dtype=float).reshape(-1)
    if ref.size == 0 or alt.size == 0:
        raise ConfigError(f"a rank test's sample size needs rows on both sides ({ref.size} and {alt.size})",
                          hint="wait for rows of both variants")
    if not (np.isfinite(ref).all() and np.isfinite(alt).all()):
        raise ConfigError("a rank test's sample size needs finite values", hint="drop missing latencies")
    n_alt, n_ref = alt.size, ref.size
    total = n_alt + n_ref
    pooled = stats.rankdata(np.concatenate([alt, ref]))
    place_alt = pooled[:n_alt] - stats.rankdata(alt)  # reference rows below each B row (mid)
    place_ref = pooled[n_alt:] - stats.rankdata(ref)
    p = float((place_alt.mean() - place_ref.mean()) / total + 0.5)
    sd0 = math.sqrt(float(np.sum((pooled - (total + 1) / 2) ** 2)) / total**3)
    var_ref = float(np.sum((place_ref - place_ref.mean()) ** 2)) / (n_ref * n_alt**2)
    var_alt = float(np.sum((place_alt - place_alt.mean()) ** 2)) / (n_ref**2 * n_alt)
    sd1 = math.sqrt(share_a * var_alt + (1 - share_a) * var_ref)
    return RankEffect(p, sd0, sd1, share_a)


def rows_for_rank_test(reference: npt.ArrayLike, alternative: npt.ArrayLike, *, share_a: float = 0.5,
                       alpha: float = 0.05, power: float = 0.8, sequential: bool = False,
                       tuning: float = DEFAULT_TUNING) -> int | None:
    """Total rows (both arms) for the two-sided Mann-Whitney U test to tell ``alternative`` (what B
    is expected to look like) from ``reference`` (A) with probability ``power`` at ``alpha``, A
    getting ``share_a`` of the rows; None when the samples do not differ (relative effect within
    0.001 of 1/2, as statsmodels) or no finite sample would do."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ConfigError(f"alpha {alpha} and power {power} must be in (0, 1)", hint="e.g. 0.05 and 0.8")
    e = rank_effect(reference, alternative, share_a=share_a)
    gap = abs(e.relative_effect - 0.5)
    if gap < 1e-3:
        return None
    z_power = float(stats.norm.isf(1 - power))
    scale = share_a * (1 - share_a) * gap**2
    if not sequential:
        n = (e.sd_null * float(stats.norm.isf(alpha / 2)) + e.sd_alternative * z_power) ** 2 / scale
        return min(max(math.ceil(n), 2), MAX_ROWS) if n <= MAX_ROWS else None

    def enough(n: int) -> bool:
        return math.sqrt(n * scale) >= e.sd_null * float(critical_z(n, alpha, tuning)) \
            + e.sd_alternative * z_power

    return _smallest(enough)
