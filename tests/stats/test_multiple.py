"""Several metrics at once: primary metrics adjusted together, guardrails apart."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from mlops_actions.errors import ConfigError
from mlops_actions.stats import Arm, Metric, Verdict, compare_arms, compare_metrics


def _arms(seed: int) -> tuple[dict[Metric, Arm], dict[Metric, Arm]]:
    rng = np.random.default_rng(seed)
    n = 4000
    a = {Metric.ACCURACY: Arm((rng.random(n) < 0.85).astype(float), n),
         Metric.ERROR_RATE: Arm((rng.random(n) < 0.020).astype(float), n),
         Metric.LATENCY_MS: Arm(rng.lognormal(np.log(40), 0.5, n), n)}
    b = {Metric.ACCURACY: Arm((rng.random(n) < 0.87).astype(float), n),
         Metric.ERROR_RATE: Arm((rng.random(n) < 0.026).astype(float), n),
         Metric.LATENCY_MS: Arm(rng.lognormal(np.log(40), 0.5, n) + 1.5, n)}
    return a, b


@pytest.mark.parametrize("correction,sm_name", [("holm", "holm"), ("benjamini_hochberg", "fdr_bh")])
def test_primary_p_values_are_adjusted_as_statsmodels_does(correction: str, sm_name: str) -> None:
    a, b = _arms(3)
    primary = (Metric.ACCURACY, Metric.ERROR_RATE, Metric.LATENCY_MS)
    multi = compare_metrics(a, b, primary, correction=correction)
    raw = [compare_arms(m, a[m], b[m]).difference.p_value for m in primary]
    expected = multipletests(raw, alpha=0.05, method=sm_name)[1]
    assert [c.p_adjusted for c in multi.primary] == pytest.approx(list(expected), rel=1e-12)
    for c, p_adj in zip(multi.primary, expected, strict=True):
        assert (c.verdict is not Verdict.NO_DIFFERENCE) == (p_adj < 0.05)
        assert f"{correction} across 3 metrics" in c.method
    assert multi.to_dict()["correction"] == correction


def test_primary_cis_are_at_the_bonferroni_level() -> None:
    a, b = _arms(4)
    multi = compare_metrics(a, b, (Metric.ACCURACY, Metric.ERROR_RATE))
    single = compare_arms(Metric.ACCURACY, a[Metric.ACCURACY], b[Metric.ACCURACY], alpha=0.025)
    assert multi.primary[0].difference.ci == single.difference.ci
    assert multi.primary[0].alpha == 0.05


def test_guardrails_are_judged_apart_at_alpha() -> None:
    a, b = _arms(5)
    multi = compare_metrics(a, b, (Metric.ACCURACY,), (Metric.LATENCY_MS, Metric.ERROR_RATE))
    assert [g.metric for g in multi.guardrails] == [Metric.LATENCY_MS, Metric.ERROR_RATE]
    for g in multi.guardrails:
        assert g.p_adjusted is None
        assert g == compare_arms(g.metric, a[g.metric], b[g.metric])
    assert multi.guardrails[0].verdict is Verdict.A_BETTER  # 1.5 ms slower: B is worse


def test_a_metric_cannot_be_both_primary_and_guardrail() -> None:
    a, b = _arms(6)
    with pytest.raises(ConfigError, match="both"):
        compare_metrics(a, b, (Metric.ACCURACY,), (Metric.ACCURACY,))
    with pytest.raises(ConfigError, match="valid: holm"):
        compare_metrics(a, b, (Metric.ACCURACY,), correction="bonferroni")
