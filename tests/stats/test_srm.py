from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlops_actions.errors import ConfigError
from mlops_actions.stats import Arm, Metric, Verdict, compare_arms, srm_check


def test_5300_vs_4700_at_an_expected_even_split_is_a_mismatch() -> None:
    srm = srm_check(5300, 4700, 0.5)
    assert srm.mismatch
    # GrowthBook's check_srm: sum of (o - e)^2 / e against chi-square with 1 degree of freedom
    assert srm.p_value == pytest.approx(stats.chi2.sf((300**2 / 5000) * 2, 1), rel=1e-12)
    assert srm.p_value < 1e-8


def test_a_fair_split_and_an_uneven_expected_split_pass() -> None:
    assert not srm_check(5030, 4970, 0.5).mismatch
    assert not srm_check(9000, 1000, 0.9).mismatch
    assert srm_check(9000, 1000, 0.5).mismatch


def test_expected_split_is_as_share_and_checked() -> None:
    with pytest.raises(ConfigError, match="not in"):
        srm_check(10, 10, 1.5)
    assert srm_check(0, 0, 0.5).p_value == 1.0


def test_a_mismatch_makes_a_winner_inconclusive() -> None:
    a, b = np.zeros(5300), np.zeros(4700)
    a[:530], b[:100] = 1, 1  # 10% vs 2%: B clearly better, but rows went missing
    clean = compare_arms(Metric.ERROR_RATE, Arm(a, 5300), Arm(b, 4700))
    assert clean.verdict is Verdict.B_BETTER and clean.srm is None
    checked = compare_arms(Metric.ERROR_RATE, Arm(a, 5300), Arm(b, 4700), expected_split=0.5)
    assert checked.verdict is Verdict.INCONCLUSIVE and checked.srm is not None and checked.srm.mismatch
    assert checked.difference == clean.difference  # the figures are still shown


@pytest.mark.parametrize(("a", "b", "share"), [(5300, 4700, 0.5), (1, 0, 0.5), (10, 90, 0.1),
                                               (123456, 654321, 0.2), (999_999, 1_000_001, 0.5), (3, 7, 0.9)])
def test_p_value_is_scipys_chisquare(a: int, b: int, share: float) -> None:
    expected = stats.chisquare([a, b], [(a + b) * share, (a + b) * (1 - share)]).pvalue
    assert srm_check(a, b, share).p_value == pytest.approx(expected, rel=1e-12, abs=1e-300)
