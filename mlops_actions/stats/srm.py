"""Sample ratio mismatch: do the two arms' row counts fit the split the traffic was given?

A chi-square goodness-of-fit test (scipy's ``chisquare``, 1 degree of freedom) of the two
counts against the expected shares,
flagged below p = 0.001 as GrowthBook does: a mismatch means rows were lost or misrouted
in one arm (a crashing variant, a bot filter, a logging bug), and no comparison of the arms
can be trusted until it is explained.
"""

from __future__ import annotations

from scipy import special

from mlops_actions.errors import ConfigError
from mlops_actions.stats.interface import SRM_THRESHOLD, Srm

__all__ = ["srm_check"]


def srm_check(rows_a: int, rows_b: int, expected_share_a: float, *,
              threshold: float = SRM_THRESHOLD) -> Srm:
    """Chi-square test of ``rows_a : rows_b`` against ``expected_share_a : 1 - expected_share_a``."""
    if not 0 < expected_share_a < 1:
        raise ConfigError(f"expected split {expected_share_a} is not in (0, 1)",
                          hint="give A's expected share of the traffic, e.g. 0.5 or 0.9")
    total = rows_a + rows_b
    if total == 0:
        return Srm(p_value=1.0, mismatch=False, expected_share_a=expected_share_a, rows=(0, 0))
    expected = (total * expected_share_a, total * (1 - expected_share_a))
    # scipy.stats.chisquare's statistic and p-value (1 degree of freedom) without its ~1.5 ms of
    # argument handling per call (the tests check them equal)
    statistic = sum((o - e) ** 2 / e for o, e in zip((rows_a, rows_b), expected, strict=True))
    p = float(special.chdtrc(1, statistic))
    return Srm(p_value=p, mismatch=p < threshold, expected_share_a=expected_share_a, rows=(rows_a, rows_b))
