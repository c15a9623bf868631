"""The A/B report of ``monitor`` on synthetic prediction logs, checked against the statistics
engine (``mlops_actions.stats``) and against scipy / statsmodels where a number is computed."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats import proportion as smp
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.nonparametric import samplesize_rank_compare_onetail
from statsmodels.stats.power import NormalIndPower

from mlops_actions.cli import main
from mlops_actions.config.specs import ABAnalysisSpec
from mlops_actions.monitoring.ab import analyse_ab, arms_from_rows
from mlops_actions.monitoring.reports import ab_markdown, render_html, render_markdown
from mlops_actions.stats import Metric, compare_arms
from mlops_actions.stats.interface import Verdict as Outcome
from mlops_actions.stats.power import rank_effect, rows_for_power, rows_for_rank_test
from mlops_actions.stats.sequential import critical_z
from mlops_actions.verdict import Verdict
from tests.monitoring.test_monitor_command import _log

ASSET_REPO = Path(__file__).parent.parent / "assets" / "monitoring" / "repo"


def rows(n: int, accuracy: float, *, seed: int, latency: float = 50.0, errors: float = 0.0,
         labelled: float = 1.0) -> pd.DataFrame:
    """A variant's log as the prediction store returns it: output, late label (or None),
    latency, HTTP status."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < accuracy, truth, 1 - truth)
    has_label = rng.random(n) < labelled
    status = np.where(rng.random(n) < errors, 500, 200)
    return pd.DataFrame({"output": [int(p) for p in pred],
                         "actual": [int(t) if ok else None for t, ok in zip(truth, has_label, strict=True)],
                         "latency_ms": rng.lognormal(math.log(latency), 0.3, n), "status": status})


def ab(a: pd.DataFrame, b: pd.DataFrame, **spec: object) -> object:
    return analyse_ab(a, b, model="churn", version_a="1.0.0", version_b="1.1.0", share_b=0.5,
                      spec=ABAnalysisSpec.model_validate(spec), environment="production")


def test_clear_win_matches_the_engine_and_statsmodels() -> None:
    a, b = rows(4000, 0.80, seed=1), rows(4000, 0.86, seed=2)
    report = ab(a, b)
    assert report.outcome is Outcome.B_BETTER and report.winner == "b"
    assert report.winner_version == "1.1.0" and report.verdict is Verdict.PASSED
    assert report.sequential  # the default: the schedule looks again and again
    [acc] = report.comparison.primary
    # the same numbers as the engine called directly on the same arms
    arms_a, arms_b = arms_from_rows(a), arms_from_rows(b)
    direct = compare_arms(Metric.ACCURACY, arms_a[Metric.ACCURACY], arms_b[Metric.ACCURACY], sequential=True,
                          expected_split=0.5)
    assert acc.difference == direct.difference
    # fixed horizon: statsmodels' unpooled z-test and Wald interval on the counts
    fixed = ab(a, b, sequential=False)
    [facc] = fixed.comparison.primary
    xa, xb = int(arms_a[Metric.ACCURACY].values.sum()), int(arms_b[Metric.ACCURACY].values.sum())
    sm = smp.test_proportions_2indep(xb, 4000, xa, 4000, method="wald", compare="diff", correction=False)
    lo, hi = smp.confint_proportions_2indep(xb, 4000, xa, 4000, method="wald", compare="diff")
    assert facc.difference.estimate == pytest.approx(xb / 4000 - xa / 4000, abs=1e-12)
    assert facc.difference.p_value == pytest.approx(sm.pvalue, rel=1e-9)
    assert facc.difference.ci == pytest.approx((lo, hi), rel=1e-9)
    # the always-valid interval is wider than the fixed one (the price of looking often)
    assert acc.difference.ci[0] < facc.difference.ci[0] and acc.difference.ci[1] > facc.difference.ci[1]
    # per-variant value and Wilson interval, as scipy's binomtest computes it
    fa = report.a.metrics["accuracy"]
    ci = stats.binomtest(xa, 4000).proportion_ci(0.95, method="wilson")
    assert fa.n == 4000 and fa.value == xa / 4000 and fa.ci == pytest.approx((ci.low, ci.high), rel=1e-9)
    # latency: the median and an interval around it
    lat = report.b.metrics["latency_ms"]
    assert lat.value == pytest.approx(float(np.median(b["latency_ms"])))
    assert lat.ci[0] < lat.value < lat.ci[1]
    # the sentence carries the same figures
    d = acc.difference
    expected = (f"B (1.1.0) beats A (1.0.0) on accuracy: {d.estimate * 100:+.1f} points, 95% CI "
                f"[{d.ci[0] * 100:+.1f}, {d.ci[1] * 100:+.1f}], always-valid p")
    assert report.sentence().startswith(expected), report.sentence()
    assert re.search(r"; traffic split OK \(p=[0-9.]+\)\.$", report.sentence())
    assert fixed.sentence().startswith("B (1.1.0) beats A (1.0.0) on accuracy:") and "always-valid" \
        not in fixed.sentence()
    assert {g: v.value for g, v in report.guardrails.items()} == {"latency_ms": "passed",
                                                                  "error_rate": "passed"}


def test_a_a_has_no_winner() -> None:
    report = ab(rows(3000, 0.82, seed=11), rows(3000, 0.82, seed=12))
    assert report.outcome is Outcome.NO_DIFFERENCE and report.winner is None
    assert report.verdict is Verdict.PASSED
    [acc] = report.comparison.primary
    assert acc.difference.p_value > 0.05 and acc.difference.ci[0] < 0 < acc.difference.ci[1]
    assert report.sentence().startswith("No significant difference between B (1.1.0) and A (1.0.0) on "
                                        "accuracy:")
    # how many rows it would take to detect the difference seen so far
    [size] = report.sample_size
    assert size.source == "observed" and size.per_variant["a"] > 3000


def test_srm_5300_vs_4700_is_flagged_and_nothing_wins() -> None:
    a, b = rows(5300, 0.80, seed=21), rows(4700, 0.88, seed=22)  # B "wins", but rows went missing
    report = ab(a, b)
    expected_p = stats.chisquare([5300, 4700], [5000, 5000]).pvalue
    assert report.srm.mismatch and report.srm.p_value == pytest.approx(expected_p, rel=1e-9)
    assert expected_p < 0.001
    assert report.outcome is Outcome.INCONCLUSIVE and report.winner is None
    assert report.verdict is Verdict.FAILED  # something is wrong with the test itself
    split = next(f for f in report.findings("1.0.0") if f.name == "traffic_split")
    assert split.verdict is Verdict.FAILED and split.kind == "ab_test"
    assert "A 5,300 vs B 4,700" in report.sentence() and report.sentence().startswith("Inconclusive")
    # an uneven split configured as such is fine: 53/47 expected
    fair = analyse_ab(a, b, model="churn", version_a="1.0.0", version_b="1.1.0", share_b=0.47)
    assert not fair.srm.mismatch and fair.winner == "b"


def test_too_few_rows_is_inconclusive_with_the_rows_still_needed() -> None:
    a, b = rows(20, 0.80, seed=31), rows(24, 0.85, seed=32)
    report = ab(a, b, minimum_detectable_effect=0.05, sequential=False)
    assert report.outcome is Outcome.INCONCLUSIVE and report.winner is None
    assert report.reason == "too few rows" and report.verdict is Verdict.PASSED
    # the rows for the configured effect at 80% power: statsmodels' NormalIndPower
    pa = float(arms_from_rows(a)[Metric.ACCURACY].values.mean())
    va, vb = pa * (1 - pa), (pa + 0.05) * (1 - pa - 0.05)
    per_arm = NormalIndPower().solve_power(effect_size=0.05 / math.sqrt((va + vb) / 2), alpha=0.05,
                                           power=0.8, ratio=1)
    [size] = report.sample_size
    assert size.per_variant["a"] == pytest.approx(per_arm, abs=2)
    assert report.rows_needed == {"a": size.per_variant["a"] - 20, "b": size.per_variant["b"] - 24}
    text = report.sentence()
    assert f"A needs {report.rows_needed['a']:,} more" in text and "minimum detectable effect" in text
    # without a configured effect, at least min_rows each
    tiny = ab(rows(5, 0.8, seed=33), rows(6, 0.8, seed=34))
    assert tiny.outcome is Outcome.INCONCLUSIVE
    assert tiny.rows_needed["a"] >= 25 and tiny.rows_needed["b"] >= 24


def test_a_failed_guardrail_takes_the_win_away_and_is_not_corrected() -> None:
    report = ab(rows(4000, 0.80, seed=41), rows(4000, 0.86, seed=42, latency=60.0),
                primary=["accuracy", "error_rate"], guardrails=["latency_ms"])
    assert report.outcome is Outcome.B_BETTER and report.winner is None
    assert report.guardrails == {"latency_ms": Verdict.FAILED}
    assert report.verdict is Verdict.FAILED and "but is worse on latency_ms" in report.sentence()
    # primary metrics: Holm over their raw p-values (statsmodels); the guardrail stays unadjusted
    raw = [compare_arms(c.metric, arms_from_rows(rows(4000, 0.80, seed=41))[c.metric],
                        arms_from_rows(rows(4000, 0.86, seed=42, latency=60.0))[c.metric],
                        sequential=True, alpha=0.025).difference.p_value for c in report.comparison.primary]
    raw = [1.0 if p is None else p for p in raw]
    expected = multipletests(raw, alpha=0.05, method="holm")[1]
    got = [c.p_adjusted for c in report.comparison.primary]
    assert got[0] == pytest.approx(expected[0], rel=1e-9)
    [guard] = report.comparison.guardrails
    assert guard.p_adjusted is None and guard.alpha == 0.05
    assert "holm" in "\n".join(ab_markdown(report))


@pytest.mark.parametrize(("effect", "pa", "share_a"),
                         [(0.03, 0.80, 0.5), (-0.02, 0.5, 0.5), (0.01, 0.95, 0.5), (0.05, 0.3, 0.8)])
def test_sample_size_fixed_matches_statsmodels_and_sequential_needs_more(effect: float, pa: float,
                                                                         share_a: float) -> None:
    va, vb = pa * (1 - pa), (pa + effect) * (1 - pa - effect)
    total = rows_for_power(effect, va, vb, share_a=share_a)
    # closed form, then NormalIndPower where the two variances are equal enough to pool
    z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    assert total == math.ceil(z**2 * (va / share_a + vb / (1 - share_a)) / effect**2)
    if share_a == 0.5:
        per_arm = NormalIndPower().solve_power(effect_size=abs(effect) / math.sqrt((va + vb) / 2),
                                               alpha=0.05, power=0.8, ratio=1)
        assert total / 2 == pytest.approx(per_arm, abs=1)
    seq = rows_for_power(effect, va, vb, share_a=share_a, sequential=True)
    assert seq > total
    spread = va / share_a + vb / (1 - share_a)
    # the smallest N where the always-valid interval excludes 0 with 80% power
    assert abs(effect) * math.sqrt(seq / spread) >= critical_z(seq, 0.05) + stats.norm.isf(0.2)
    assert abs(effect) * math.sqrt((seq - 1) / spread) < critical_z(seq - 1, 0.05) + stats.norm.isf(0.2)
    assert rows_for_power(0.0, va, vb) is None


def _latencies(n: int, median: float, seed: int, *, sigma: float = 0.3, step: float = 0.0) -> np.ndarray:
    """Lognormal latencies; ``step`` > 0 rounds them to a grid (ties, as whole milliseconds)."""
    v = np.random.default_rng(seed).lognormal(math.log(median), sigma, n)
    return np.round(v / step) * step if step else v


@pytest.mark.parametrize(("ref", "alt", "share_a"), [
    (_latencies(400, 50, 1), _latencies(400, 50, 1) + 2.0, 0.5),          # a shift of 2 ms
    (_latencies(300, 50, 2), _latencies(350, 45, 3), 0.5),                 # B faster, other draws
    (_latencies(500, 80, 4, sigma=1.2), _latencies(500, 95, 5, sigma=1.2), 0.7),  # heavy tail, 70/30
    (_latencies(200, 20, 6, step=1.0), _latencies(200, 22, 7, step=1.0), 0.3),    # whole ms: ties
    (_latencies(60, 30, 8), _latencies(40, 40, 9), 0.5),                   # few rows, large effect
])
def test_latency_sample_size_matches_statsmodels_rank_test(ref: np.ndarray, alt: np.ndarray,
                                                           share_a: float) -> None:
    """Happ et al. (2019) as statsmodels implements it; its nobs_ratio is reference / treatment."""
    expected = samplesize_rank_compare_onetail(alt, ref, alpha=0.05, power=0.8,
                                               nobs_ratio=share_a / (1 - share_a))
    assert rank_effect(ref, alt, share_a=share_a).relative_effect == pytest.approx(
        expected.relative_effect, rel=1e-12)
    total = rows_for_rank_test(ref, alt, share_a=share_a)
    assert expected.nobs_total * (1 - 1e-9) <= total < expected.nobs_total + 1  # its N, rounded up
    seq = rows_for_rank_test(ref, alt, share_a=share_a, sequential=True)
    assert seq > total  # always-valid costs rows
    assert rows_for_rank_test(ref, ref, share_a=share_a) is None  # no difference: nothing to size


def test_latency_sample_size_gives_the_power_it_promises() -> None:
    """Mann-Whitney at the estimated size, simulated: about 80% of tests find a 10% slower B."""
    a_ref, b_ref = _latencies(5000, 50, 11), _latencies(5000, 55, 12)
    total = rows_for_rank_test(a_ref, b_ref)
    per_arm = math.ceil(total / 2)
    rng = np.random.default_rng(13)
    hits = sum(stats.mannwhitneyu(rng.lognormal(math.log(50), 0.3, per_arm),
                                  rng.lognormal(math.log(55), 0.3, per_arm)).pvalue < 0.05
               for _ in range(400))
    assert 0.74 <= hits / 400 <= 0.86, (total, hits)


def test_the_ab_report_sizes_a_latency_test() -> None:
    """latency as the primary metric: sized from the observed latencies, or from A's shifted by
    the minimum detectable effect (ms; faster is better)."""
    a, b = rows(200, 0.8, seed=51, latency=50.0), rows(200, 0.8, seed=52, latency=52.0)
    observed = ab(a, b, primary=["latency_ms"], guardrails=[], sequential=False)
    [size] = observed.sample_size
    la, lb = (arms_from_rows(x)[Metric.LATENCY_MS].values for x in (a, b))
    total = rows_for_rank_test(la, lb)
    assert size.source == "observed" and size.per_variant == {"a": math.ceil(total / 2),
                                                              "b": math.ceil(total / 2)}
    assert size.still_needed == {"a": size.per_variant["a"] - 200, "b": size.per_variant["b"] - 200}
    planned = ab(a, b, primary=["latency_ms"], guardrails=[], sequential=False,
                 minimum_detectable_effect=3.0)
    [size] = planned.sample_size
    assert size.source == "minimum_detectable_effect" and size.effect == -3.0
    assert size.per_variant["a"] == max(math.ceil(rows_for_rank_test(la, la - 3.0) / 2), 30)
    assert "sample size for latency_ms" in "\n".join(ab_markdown(planned))


@pytest.fixture
def ab_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(ASSET_REPO, dst)
    (dst / "environments" / "production.yaml").write_text(
        "target: {type: local}\nmodels:\n  churn:\n    version: \"1.2.0\"\n    strategy:\n"
        "      type: ab_test\n      version_b: \"1.3.0\"\n      traffic_split: 0.5\n")
    monkeypatch.delenv("MLOPS_PREDICTION_STORE", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return dst


def test_monitor_reports_the_ab_test_in_json_markdown_and_html(ab_repo: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _log(ab_repo, shift=False, n=600, version="1.2.0", accuracy=0.85, prefix="a")
    _log(ab_repo, shift=False, n=600, version="1.3.0", accuracy=0.97, prefix="b")
    out = ab_repo / "reports"
    assert main(["-C", str(ab_repo), "monitor", "--env", "production", "--json", "--out", str(out)]) == 0
    payload = json.loads(capsys.readouterr().out)
    report = payload["models"][0]["ab_test"]
    assert report["winner"] == "b" and report["winner_version"] == "1.3.0" and report["sequential"] is True
    assert report["variants"]["a"]["rows"] == 600 and report["variants"]["b"]["rows"] == 600
    assert report["srm"]["mismatch"] is False and report["multiplicity"].startswith("holm")
    assert report["sentence"].startswith("B (1.3.0) beats A (1.2.0) on accuracy: +")
    md = (out / "monitor-production.md").read_text()
    assert report["sentence"] in md and "```text" in md  # the text CI plot a PR comment can show
    html = (out / "monitor-production.html").read_text()
    assert 'alt="per-variant intervals" src="data:image/png;base64,' in html
    assert "beats A (1.2.0)" in html
    # --ab-comments: the body of the sticky comment on the PR that started the test, one per model;
    # a file an earlier run left (a test that has ended since) goes
    comments = ab_repo / "ab-comments"
    comments.mkdir()
    (comments / "ended.md").write_text("an A/B test that ended")
    assert main(["-C", str(ab_repo), "monitor", "--env", "production", "--ab-comments", str(comments)]) == 0
    capsys.readouterr()
    [body] = sorted(comments.iterdir())
    assert body.name == "churn.md"
    text = body.read_text()
    assert text.startswith("### A/B test in `production`: monitor report\n")
    assert f"> {report['sentence']}" in text and "```text" in text and "last: " in text
    # --fixed-horizon: one look, ordinary p-values
    assert main(["-C", str(ab_repo), "monitor", "--env", "production", "--json", "--fixed-horizon"]) == 0
    fixed = json.loads(capsys.readouterr().out)["models"][0]["ab_test"]
    assert fixed["sequential"] is False and "always-valid" not in fixed["sentence"]


def test_monitor_flags_a_split_mismatch_as_a_failed_check(ab_repo: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _log(ab_repo, shift=False, n=600, version="1.2.0", accuracy=0.9, prefix="a")
    _log(ab_repo, shift=False, n=400, version="1.3.0", accuracy=0.9, prefix="b")
    assert main(["-C", str(ab_repo), "monitor", "--env", "production"]) == 1
    md = capsys.readouterr().out
    assert "traffic split MISMATCH: A 600 vs B 400" in md and "no winner yet (sample ratio mismatch)" in md


def test_reports_without_an_ab_test_are_unchanged() -> None:
    assert "A/B test" not in render_markdown([]) and "A/B" not in render_html([])


def test_error_bars_are_never_negative_when_a_value_sits_on_its_interval_bound() -> None:
    # the demo's A/B report crashed: matplotlib refuses a negative xerr (rounding at a bound)
    from mlops_actions.monitoring.reports import error_bars

    assert error_bars(1.0, (0.9, 1.0 - 1e-16), 100.0) == [[pytest.approx(10.0)], [0.0]]
    assert error_bars(0.0, (1e-17, 0.05), 100.0) == [[0.0], [pytest.approx(5.0)]]
    assert error_bars(12.0, None, 1.0) is None


def test_the_test_begins_with_bs_first_row(ab_repo: Path) -> None:
    """A served alone before the test: its rows from then are not part of it. Counting them made
    the split check flag a mismatch whenever the window reached back before the test began."""
    import time

    from mlops_actions.monitoring.ab import assess_ab
    from mlops_actions.monitoring.store import PredictionRecord, open_store

    now = time.time()
    store = open_store(None, repo_root=ab_repo)

    def log(prefix: str, version: str, variant: str, start: float, n: int) -> None:
        store.write([PredictionRecord(f"{prefix}-{i}", "churn", version, start + i, {"x": 1.0}, 1,
                                      environment="production", variant=variant) for i in range(n)])

    try:
        log("before", "1.2.0", "stable", now - 900, 300)  # 1.2.0 alone, before the test
        log("a", "1.2.0", "stable", now - 500, 200)
        log("b", "1.3.0", "b", now - 500.5, 200)
        report = assess_ab(store, "churn", version_a="1.2.0", version_b="1.3.0", share_b=0.5,
                           environment="production", window_seconds=3600, now=now)
        assert (report.a.rows, report.b.rows) == (200, 200)
        assert not report.srm.mismatch
        # B's rows logged without the A/B tag (a log from before the tag existed): taken whole
        log("old-b", "1.4.0", "", now - 499.5, 200)
        untagged = assess_ab(store, "churn", version_a="1.2.0", version_b="1.4.0", share_b=0.5,
                             environment="production", window_seconds=3600, now=now)
        assert untagged.a.rows == 500 and untagged.srm.mismatch
    finally:
        store.close()
