"""The canary judge (Kayenta's model) on clear regressions, improvements, equal samples and too
few rows; its Mann-Whitney p-value and Hodges-Lehmann interval agree with scipy and with the
order statistics of the materialised pairwise differences on 12 cases (heavy tails, ties)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from mlops_actions.errors import ConfigError
from mlops_actions.stats.judge import (
    Classification,
    SampleMetric,
    ScoreMetric,
    accuracy,
    classify,
    drift_score,
    error_rate,
    judge,
    latency,
)
from mlops_actions.verdict import Verdict

Pair = tuple[np.ndarray, np.ndarray]


def _lognormal(med: float, sigma: float = 0.5) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: rng.lognormal(np.log(med), sigma, n)


def _pareto(scale: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: (rng.pareto(1.5, n) + 1) * scale  # infinite variance


def _rounded(med: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: np.round(rng.lognormal(np.log(med), 0.4, n))  # whole ms: many ties


def _coarse(med: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    return lambda rng, n: np.round(rng.lognormal(np.log(med), 0.3, n) / 10) * 10  # heavy ties


CASES: dict[str, tuple[Callable[[np.random.Generator, int], np.ndarray], int,
                       Callable[[np.random.Generator, int], np.ndarray], int]] = {
    "lognormal equal": (_lognormal(40), 200, _lognormal(40), 200),
    "lognormal +25%": (_lognormal(40), 200, _lognormal(50), 200),
    "lognormal -40%": (_lognormal(50), 300, _lognormal(30), 150),
    "lognormal wide tails": (_lognormal(40, 1.2), 400, _lognormal(44, 1.2), 400),
    "pareto equal": (_pareto(20), 250, _pareto(20), 250),
    "pareto slower": (_pareto(20), 250, _pareto(30), 250),
    "pareto small": (_pareto(20), 30, _pareto(25), 35),
    "ties whole ms": (_rounded(12), 300, _rounded(13), 300),
    "ties coarse": (_coarse(60), 200, _coarse(60), 220),
    "ties coarse shifted": (_coarse(60), 200, _coarse(90), 220),
    "tiny": (_lognormal(40), 8, _lognormal(60), 9),
    "unbalanced": (_lognormal(40), 1000, _lognormal(42), 60),
}


def _draw(name: str) -> Pair:
    draw_s, n_s, draw_c, n_c = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return draw_s(rng, n_s), draw_c(rng, n_c)


def _reference_hl(stable: np.ndarray, canary: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """All n_s * n_c differences canary_j - stable_i, sorted: the median, and Moses' bounds at
    ranks k and m + 1 - k with k = m/2 - z * sqrt(m (n + 1) / 12) (Hollander & Wolfe 4.3)."""
    d = np.sort((canary[None, :] - stable[:, None]).ravel())
    m = d.size
    z = stats.norm.isf((1 - confidence) / 2)
    k = int(np.rint(m / 2 - z * math.sqrt(m * (stable.size + canary.size + 1) / 12)))
    return float(np.median(d)), float(d[k - 1]), float(d[m - k])


@pytest.mark.parametrize("name", sorted(CASES))
def test_u_test_and_hodges_lehmann_agree_with_scipy_and_reference(name: str) -> None:
    stable, canary = _draw(name)
    got = classify(latency(canary, stable, min_rows=5))
    est, lo, hi = _reference_hl(stable, canary, 0.98)
    assert got.p_value == pytest.approx(stats.mannwhitneyu(canary, stable, alternative="two-sided").pvalue,
                                        rel=1e-9)
    assert got.estimate == pytest.approx(est, rel=1e-12, abs=1e-12)
    assert got.ci is not None
    assert got.ci[0] == pytest.approx(lo, rel=1e-12, abs=1e-12)
    assert got.ci[1] == pytest.approx(hi, rel=1e-12, abs=1e-12)
    # the classification follows from the interval and the 10 % band
    half = 0.1 * float(np.median(stable))
    expected = (Classification.HIGH if lo > half else Classification.LOW if hi < -half
                else Classification.PASS)
    assert got.classification is expected


def test_clear_latency_regression_is_high_and_bad() -> None:
    stable, canary = _draw("lognormal +25%")
    m = classify(latency(canary, stable))
    assert m.classification is Classification.HIGH and m.bad


def test_latency_improvement_is_low_but_counts_as_passing() -> None:
    stable, canary = _draw("lognormal -40%")
    m = classify(latency(canary, stable))
    assert m.classification is Classification.LOW
    assert not m.bad and m.passed


def test_small_significant_change_inside_tolerance_passes() -> None:
    rng = np.random.default_rng(3)
    stable = rng.lognormal(np.log(40), 0.2, 5000)
    canary = rng.lognormal(np.log(41.2), 0.2, 5000)  # +3 %: significant at this n
    assert classify(latency(canary, stable, tolerance=0.0)).classification is Classification.HIGH
    m = classify(latency(canary, stable, tolerance=0.1))
    assert m.classification is Classification.PASS and m.p_value is not None and m.p_value < 0.02


def test_equal_samples_pass() -> None:
    rng = np.random.default_rng(4)
    values = rng.lognormal(np.log(40), 0.5, 100)
    m = classify(latency(values, rng.permutation(values)))
    assert m.classification is Classification.PASS and m.estimate == 0.0
    constant = classify(error_rate(np.zeros(100), np.zeros(80)))
    assert constant.classification is Classification.PASS


def test_too_few_rows_is_nodata_and_left_out_of_the_score() -> None:
    rng = np.random.default_rng(5)
    j = judge([latency(rng.lognormal(3, .5, 10), rng.lognormal(3, .5, 500)),
               error_rate(np.zeros(400), np.zeros(400))])
    lat = j.metrics[0]
    assert lat.classification is Classification.NODATA and lat.n_canary == 10
    assert j.score == 100.0 and j.verdict is Verdict.PASSED
    assert "no data: latency_ms" in j.summary
    none = judge([latency([1.0, 2.0], [1.0, 3.0])])
    assert none.verdict is Verdict.INCONCLUSIVE and none.score is None


def test_binary_metrics_use_the_proportion_test() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    rng = np.random.default_rng(6)
    stable = (rng.random(2000) < 0.01).astype(float)
    canary = (rng.random(2000) < 0.05).astype(float)
    m = classify(error_rate(canary, stable))
    assert m.classification is Classification.HIGH and m.bad
    lo, hi = confint_proportions_2indep(canary.sum(), 2000, stable.sum(), 2000, method="wald",
                                        compare="diff", alpha=0.02)
    assert m.ci == pytest.approx((lo, hi), rel=1e-9)
    p = test_proportions_2indep(canary.sum(), 2000, stable.sum(), 2000, method="wald",
                                correction=False).pvalue
    assert m.p_value == pytest.approx(p, rel=1e-9)
    # accuracy: Low is bad
    ok_s = (rng.random(800) < 0.92).astype(float)
    ok_c = (rng.random(800) < 0.80).astype(float)
    acc = classify(accuracy(ok_c, ok_s))
    assert acc.classification is Classification.LOW and acc.bad
    better = classify(accuracy(ok_s, ok_c))
    assert better.classification is Classification.HIGH and not better.bad


def test_missing_labels_are_not_rows() -> None:
    labelled = np.r_[np.ones(50), np.full(100, np.nan)]
    m = classify(accuracy(labelled, np.ones(60)))
    assert m.n_canary == 50


def test_score_and_verdict_thresholds() -> None:
    rng = np.random.default_rng(7)
    s_lat, c_lat = rng.lognormal(3.7, .4, 400), rng.lognormal(4.2, .4, 400)
    ok = np.zeros(400)
    healthy = [error_rate(ok, ok), accuracy(np.ones(200), np.ones(200)), drift_score(0.02, threshold=0.1)]
    # one of four equal weights fails: 75 = marginal -> inconclusive
    j = judge([latency(c_lat, s_lat), *healthy])
    assert j.score == 75.0 and j.verdict is Verdict.INCONCLUSIVE
    assert [m.name for m in j.regressions] == ["latency_ms"]
    # weights: latency 1 of 10 -> 90, below pass 95 but above marginal
    j = judge([latency(c_lat, s_lat), *[SampleMetric(m.name, m.canary, m.stable, kind=m.kind,
                                                     direction=m.direction, weight=3)
                                        for m in healthy[:2]], ScoreMetric("prediction_drift", 0.02, 0.1,
                                                                           weight=3)])
    assert j.score == pytest.approx(90.0) and j.verdict is Verdict.INCONCLUSIVE
    # a critical regression zeroes the score
    j = judge([latency(c_lat, s_lat, critical=True), *healthy])
    assert j.score == 0.0 and j.verdict is Verdict.FAILED and "(critical)" in j.summary
    # two of four bad: 50 < 75 -> failed
    j = judge([latency(c_lat, s_lat), error_rate(np.r_[np.ones(60), np.zeros(340)], ok),
               *healthy[1:]])
    assert j.score == 50.0 and j.verdict is Verdict.FAILED
    # all pass
    j = judge([latency(s_lat, rng.permutation(s_lat)), *healthy])
    assert j.score == 100.0 and j.verdict is Verdict.PASSED and "no regression" in j.summary


def test_drift_score_above_threshold_is_high() -> None:
    m = classify(drift_score(0.3, threshold=0.1))
    assert m.classification is Classification.HIGH and m.bad
    assert classify(drift_score(None, threshold=0.1)).classification is Classification.NODATA


def test_to_dict_is_json_ready() -> None:
    import json

    rng = np.random.default_rng(8)
    j = judge([latency(rng.lognormal(3, .5, 100), rng.lognormal(3, .5, 100)),
               drift_score(None, threshold=.1)])
    d = json.loads(json.dumps(j.to_dict(), allow_nan=False))
    assert d["verdict"] == j.verdict.value and len(d["metrics"]) == 2
    assert d["metrics"][0]["ci"] is not None and d["metrics"][1]["classification"] == "nodata"


@pytest.mark.parametrize(("metric", "kw", "message"), [
    (SampleMetric("x", [1.0], [1.0], direction="up"), {}, "direction 'up' is unknown"),  # type: ignore[arg-type]
    (SampleMetric("x", [1.0], [1.0], kind="ordinal"), {}, "kind 'ordinal' is unknown"),  # type: ignore[arg-type]
    (SampleMetric("x", [1.0], [1.0], tolerance=-1), {}, "tolerance must be >= 0"),
    (SampleMetric("x", [0.0, 2.0], [1.0], kind="binary"), {}, "must be 0 or 1"),
    (SampleMetric("x", ["a"], [1.0]), {}, "not numbers"),
    (latency([1.0], [1.0]), {"confidence": 1.5}, "confidence 1.5"),
])
def test_bad_input_is_a_config_error(metric: SampleMetric, kw: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        classify(metric, **kw)


def test_bad_judge_arguments() -> None:
    with pytest.raises(ConfigError, match="marginal"):
        judge([drift_score(0.0, threshold=1)], pass_score=70, marginal_score=80)
    with pytest.raises(ConfigError, match="at least one metric"):
        judge([])
    with pytest.raises(ConfigError, match="repeat"):
        judge([drift_score(0.0, threshold=1), drift_score(0.0, threshold=1)])


def test_judge_imports_no_upper_layer() -> None:
    import ast
    from pathlib import Path

    import mlops_actions.stats.judge as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for layer in ("deploy", "serving", "commands", "monitoring", "validation"):
        assert not any(m.startswith(f"mlops_actions.{layer}") for m in imported), layer


def test_prediction_drift_from_the_monitoring_function_wires_in() -> None:
    """The documented wiring: Jensen-Shannon between stable's and canary's predictions, computed
    by monitoring's drift function, judged as a score (judge.py itself imports no monitoring)."""
    from mlops_actions.monitoring.drift import detect_prediction_drift

    rng = np.random.default_rng(9)
    stable = rng.normal(0.3, 0.1, 400).tolist()
    same = classify(drift_score(detect_prediction_drift(stable, rng.normal(0.3, 0.1, 400).tolist(),
                                                        method="jensenshannon").statistic, threshold=0.1))
    shifted = classify(drift_score(detect_prediction_drift(stable, rng.normal(0.5, 0.1, 400).tolist(),
                                                           method="jensenshannon").statistic, threshold=0.1))
    assert same.classification is Classification.PASS
    assert shifted.classification is Classification.HIGH and shifted.bad


def test_per_metric_names_each_classification_as_kayenta_spells_it() -> None:
    """The line status and the deploy comment show: every metric with High/Low/Pass/NoData."""
    rng = np.random.default_rng(7)
    j = judge([error_rate(np.zeros(40), np.zeros(120), critical=True, min_rows=10),
               latency(rng.lognormal(3.6, 0.2, 200), rng.lognormal(3.0, 0.2, 200)),
               accuracy(np.ones(5), np.ones(5), name="labelled")])
    text = j.per_metric()
    assert text.startswith("error_rate Pass (canary 0.0% vs stable 0.0%, no variance on either side); ")
    assert "latency_ms High (canary " in text and "beyond the band ±" in text
    assert text.endswith("labelled NoData (5 canary / 5 stable rows)")
    assert [m.label for m in j.metrics] == ["Pass", "High", "NoData"]
