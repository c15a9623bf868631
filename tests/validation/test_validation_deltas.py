"""Candidate-vs-baseline deltas on the same rows: values, intervals, the CI-bound gate, the report.

Intervals of the bootstrapped metrics agree with ``scipy.stats.bootstrap(method="percentile")``
resampling the row indices (so both models get the same rows: the paired bootstrap) of the same
metrics in numpy, themselves checked equal to scikit-learn's on the full data, within 12 % of
the interval's width (two Monte Carlo estimates of the same quantiles) on 12 cases; accuracy's
p-value is statsmodels' McNemar (exact) corrected to mid-p; every delta equals the difference of the
metrics the evaluation reports.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from mlops_actions.config.specs import Threshold
from mlops_actions.stats.paired import PairedDelta
from mlops_actions.validation.deltas import DeltaOptions, paired_deltas
from mlops_actions.validation.evaluate import Predictions, evaluate_predictions
from mlops_actions.validation.results import Verdict
from mlops_actions.validation.thresholds import check_threshold

Data = tuple[str, np.ndarray, Predictions, Predictions]


def _binary(n: int, seed: int, gap: float = 0.1) -> Data:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)

    def model(noise: float) -> Predictions:
        s = np.clip(y * 0.35 + rng.random(n) * noise, 0, 1)
        return Predictions((s > 0.5).astype(int), np.column_stack([1 - s, s]), np.array([0, 1]), 0.0, n)
    return "binary_classification", y, model(0.8), model(0.8 - gap)


def _multiclass(n: int, seed: int) -> Data:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)

    def model(err: float) -> Predictions:
        pred = np.where(rng.random(n) < err, rng.integers(0, 3, n), y)
        return Predictions(pred, None, None, 0.0, n)
    return "multiclass_classification", y, model(0.4), model(0.3)


def _regression(n: int, seed: int, heavy: bool = False) -> Data:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    noise = (lambda s: rng.standard_t(2, n) * s) if heavy else (lambda s: rng.normal(0, s, n))
    return ("regression", y, Predictions(y + noise(1.0), None, None, 0.0, n),
            Predictions(y + noise(0.9), None, None, 0.0, n))


SK: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]] = {
    "f1_score": lambda y, p, _: skm.f1_score(y, p, zero_division=0),
    "precision_score": lambda y, p, _: skm.precision_score(y, p, zero_division=0),
    "recall_score": lambda y, p, _: skm.recall_score(y, p, zero_division=0),
    "f1_score_mc": lambda y, p, _: skm.f1_score(y, p, average="weighted", zero_division=0),
    "f1_score_macro": lambda y, p, _: skm.f1_score(y, p, average="macro", zero_division=0),
    "log_loss": lambda y, p, proba: skm.log_loss(y, proba, labels=[0, 1]),
    "mean_absolute_error": lambda y, p, _: skm.mean_absolute_error(y, p),
    "root_mean_squared_error": lambda y, p, _: math.sqrt(skm.mean_squared_error(y, p)),
    "r2_score": lambda y, p, _: skm.r2_score(y, p),
    "mean_absolute_percentage_error": lambda y, p, _: skm.mean_absolute_percentage_error(y, p),
}


def _per_class(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = np.arange(3).reshape(3, *([1] * y.ndim))
    tp = ((y == k) & (p == k)).sum(-1).astype(float)
    return tp, (y == k).sum(-1).astype(float), (p == k).sum(-1).astype(float)


def _mc_f1(y: np.ndarray, p: np.ndarray, weighted: bool) -> np.ndarray:
    tp, true_k, pred_k = _per_class(y, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(true_k + pred_k > 0, 2 * tp / (true_k + pred_k), 0.0)
    if weighted:
        return (f1 * true_k).sum(0) / true_k.sum(0)
    present = (true_k + pred_k) > 0
    return (f1 * present).sum(0) / present.sum(0)


# the same metrics in plain numpy over a batch of resamples (rows on the last axis), for scipy
NP: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]] = {
    "f1_score": lambda y, p, _: 2 * (tp := ((y == 1) & (p == 1)).sum(-1)) / (
        2 * tp + ((y == 0) & (p == 1)).sum(-1) + ((y == 1) & (p == 0)).sum(-1)),
    "precision_score": lambda y, p, _: ((y == 1) & (p == 1)).sum(-1) / (p == 1).sum(-1),
    "recall_score": lambda y, p, _: ((y == 1) & (p == 1)).sum(-1) / (y == 1).sum(-1),
    "f1_score_mc": lambda y, p, _: _mc_f1(y, p, True),
    "f1_score_macro": lambda y, p, _: _mc_f1(y, p, False),
    "log_loss": lambda y, p, s: -np.log(np.clip(np.where(y == 1, s, 1 - s), 1e-15, 1)).mean(-1),  # type: ignore[arg-type]
    "mean_absolute_error": lambda y, p, _: np.abs(y - p).mean(-1),
    "root_mean_squared_error": lambda y, p, _: np.sqrt(((y - p) ** 2).mean(-1)),
    "r2_score": lambda y, p, _: 1 - ((y - p) ** 2).sum(-1) / ((y - y.mean(-1, keepdims=True)) ** 2).sum(-1),
    "mean_absolute_percentage_error": lambda y, p, _: (np.abs(y - p) / np.abs(y)).mean(-1),
}


CASES: dict[str, tuple[Callable[[], Data], str]] = {
    "binary f1": (lambda: _binary(171, 1), "f1_score"),
    "binary f1 no gap": (lambda: _binary(300, 2, gap=0.0), "f1_score"),
    "binary precision": (lambda: _binary(250, 3), "precision_score"),
    "binary recall": (lambda: _binary(400, 4), "recall_score"),
    "binary log loss": (lambda: _binary(200, 5), "log_loss"),
    "multiclass weighted f1": (lambda: _multiclass(200, 6), "f1_score_mc"),
    "multiclass macro f1": (lambda: _multiclass(150, 7), "f1_score_macro"),
    "regression mae": (lambda: _regression(200, 8), "mean_absolute_error"),
    "regression rmse": (lambda: _regression(300, 9), "root_mean_squared_error"),
    "regression r2": (lambda: _regression(250, 10), "r2_score"),
    "regression mape heavy tails": (lambda: _regression(300, 11, heavy=True),
                                    "mean_absolute_percentage_error"),
    "regression rmse heavy tails": (lambda: _regression(400, 12, heavy=True), "root_mean_squared_error"),
}


def _deltas(data: Data, metrics: list[str], options: DeltaOptions | None = None) -> dict[str, PairedDelta]:
    task, y, base, cand = data
    eb = evaluate_predictions(task, y, base, {})
    ec = evaluate_predictions(task, y, cand, {})
    return paired_deltas(task, y, cand, base, ec, eb, metrics, options=options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bootstrap_interval_agrees_with_scipy(name: str) -> None:
    make, key = CASES[name]
    data = make()
    _, y, base, cand = data
    metric = "f1_score" if key == "f1_score_mc" else key
    got = _deltas(data, [metric])[metric]
    proba_a = None if base.proba is None else base.proba[:, 1]
    proba_b = None if cand.proba is None else cand.proba[:, 1]
    full_b = SK[key](y, cand.y_pred, cand.proba)
    full_a = SK[key](y, base.y_pred, base.proba)
    assert got.estimate == pytest.approx(full_b - full_a, abs=1e-12)  # scikit-learn's values
    fn = NP[key]
    assert float(fn(y, cand.y_pred, proba_b) - fn(y, base.y_pred, proba_a)) == pytest.approx(
        full_b - full_a, abs=1e-9)  # the numpy reference is scikit-learn's metric

    def stat(i: np.ndarray, axis: int = -1) -> np.ndarray:
        i = i.astype(int)
        return (fn(y[i], cand.y_pred[i], None if proba_b is None else proba_b[i])
                - fn(y[i], base.y_pred[i], None if proba_a is None else proba_a[i]))

    ref = stats.bootstrap((np.arange(len(y)),), stat, vectorized=True, n_resamples=4000, method="percentile",
                          random_state=np.random.default_rng(zlib.crc32(name.encode()))).confidence_interval
    assert got.ci is not None and got.p_value is not None
    width = ref.high - ref.low
    assert abs(got.ci[0] - ref.low) < 0.12 * width, (got.ci, ref)
    assert abs(got.ci[1] - ref.high) < 0.12 * width, (got.ci, ref)
    # the p-value is the interval's dual (away from the edge, where Monte Carlo error decides)
    margin = 0.02 * width
    if got.ci[0] > margin or got.ci[1] < -margin:
        assert got.p_value < 0.05
    if got.ci[0] < -margin and got.ci[1] > margin:
        assert got.p_value > 0.05


def test_accuracy_is_mcnemar_and_auc_is_delong() -> None:
    data = _binary(500, 20)
    _, y, base, cand = data
    d = _deltas(data, ["accuracy_score", "roc_auc"])
    a_ok, b_ok = base.y_pred == y, cand.y_pred == y
    table = np.array([[np.sum(~a_ok & ~b_ok), np.sum(~a_ok & b_ok)],
                      [np.sum(a_ok & ~b_ok), np.sum(a_ok & b_ok)]])
    k, m = min(table[0, 1], table[1, 0]), table[0, 1] + table[1, 0]
    exact = sm_mcnemar(table, exact=True).pvalue
    mid_p = min(1.0, exact - stats.binom.pmf(k, m, 0.5))
    assert d["accuracy_score"].p_value == pytest.approx(mid_p, rel=1e-9)
    assert d["accuracy_score"].estimate == pytest.approx(b_ok.mean() - a_ok.mean())
    assert cand.proba is not None and base.proba is not None
    auc = skm.roc_auc_score(y, cand.proba[:, 1]) - skm.roc_auc_score(y, base.proba[:, 1])
    assert d["roc_auc"].estimate == pytest.approx(auc, abs=1e-12)
    assert "DeLong" in d["roc_auc"].method


def _multiclass_proba(n: int, seed: int, *, k: int = 3, gap: float = 0.3, ties: bool = False) -> Data:
    """k classes with probabilities: B's scores are sharper than A's by ``gap``; ``ties`` rounds
    the probabilities to 0.1 (many tied scores, as a small tree ensemble gives)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)

    def model(signal: float) -> Predictions:
        logits = rng.normal(0, 1, (n, k)) + signal * np.eye(k)[y]
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        if ties:
            p = np.round(p, 1) + 1e-9
            p = p / p.sum(axis=1, keepdims=True)
        return Predictions(p.argmax(axis=1), p, np.arange(k), 0.0, n)
    return "multiclass_classification", y, model(1.0), model(1.0 + gap)


def _sk_ovr(y: np.ndarray, proba: np.ndarray, weights: np.ndarray | None = None) -> float:
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted",
                                   labels=np.arange(proba.shape[1]), sample_weight=weights))


@pytest.mark.parametrize(("make", "gap_seen"), [
    (lambda: _multiclass_proba(300, 60), True),             # B clearly better
    (lambda: _multiclass_proba(400, 61, gap=0.0), False),   # no difference
    (lambda: _multiclass_proba(250, 62, k=4, gap=0.8, ties=True), True),  # 4 classes, tied scores
    (lambda: _multiclass_proba(120, 63, k=5, gap=0.8), True),    # few rows per class
])
def test_multiclass_roc_auc_has_a_paired_bootstrap_interval(make: Callable[[], Data], gap_seen: bool) -> None:
    """One-vs-rest AUC weighted by prevalence: the estimate is scikit-learn's, every resample's
    value is scikit-learn's with the resample's row counts as sample_weight, and the interval
    agrees with scipy's percentile bootstrap of the row indices (within 12 % of its width)."""
    from mlops_actions.validation.deltas import _ovr_weighted_auc, _RankedScores

    data = make()
    _, y, base, cand = data
    d = _deltas(data, ["roc_auc"])["roc_auc"]
    assert d.estimate == pytest.approx(_sk_ovr(y, cand.proba) - _sk_ovr(y, base.proba), abs=1e-12)
    assert "paired bootstrap" in d.method and d.ci is not None and d.ci[0] <= d.estimate <= d.ci[1]
    rng = np.random.default_rng(0)
    for _ in range(3):  # a resample = integer row weights
        w = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)).astype(float)
        ranked = {c: _RankedScores(cand.proba[:, c], y == c) for c in np.unique(y)}
        assert _ovr_weighted_auc(ranked, w[None, :])[0] == pytest.approx(_sk_ovr(y, cand.proba, w), abs=1e-12)

    def stat(i: np.ndarray) -> float:
        return _sk_ovr(y[i], cand.proba[i]) - _sk_ovr(y[i], base.proba[i])

    ref = stats.bootstrap((np.arange(len(y)),), stat, vectorized=False, n_resamples=1000,
                          method="percentile", random_state=np.random.default_rng(1)).confidence_interval
    width = ref.high - ref.low
    assert abs(d.ci[0] - ref.low) < 0.12 * width and abs(d.ci[1] - ref.high) < 0.12 * width, (d.ci, ref)
    assert bool(d.p_value < 0.05) is gap_seen and bool(d.ci[0] > 0) is gap_seen


@pytest.mark.parametrize("make", [lambda: _binary(171, 30), lambda: _multiclass(200, 31),
                                  lambda: _multiclass_proba(200, 35), lambda: _regression(150, 32),
                                  lambda: _regression(20_000, 33),
                                  lambda: _binary(20_000, 34)])
def test_every_delta_is_the_difference_of_reported_metrics(make: Callable[[], Data]) -> None:
    task, y, base, cand = make()
    eb = evaluate_predictions(task, y, base, {})
    ec = evaluate_predictions(task, y, cand, {})
    d = paired_deltas(task, y, cand, base, ec, eb, ec.metrics)
    expected = {m for m, v in ec.metrics.items() if v is not None and eb.metrics.get(m) is not None} - {
        "example_count", "true_positives", "false_positives", "true_negatives", "false_negatives",
        "max_error", "mean_on_target", "sum_on_target"}
    assert set(d) == expected
    for m, delta in d.items():
        assert delta.estimate == pytest.approx(ec.metrics[m] - eb.metrics[m], abs=1e-12)  # type: ignore[operator]
        assert delta.ci is not None and delta.ci[0] <= delta.ci[1]


def test_slice_deltas_use_only_the_slice_rows() -> None:
    task, y, base, cand = _binary(600, 40)
    mask = np.arange(600) < 200
    eb = evaluate_predictions(task, y, base, {"s": mask})
    ec = evaluate_predictions(task, y, cand, {"s": mask})
    d = paired_deltas(task, y, cand, base, ec, eb, ["f1_score"], mask=mask, scope="s")["f1_score"]
    assert d.n == 200
    assert d.estimate == pytest.approx(ec.slice_metrics["s"]["f1_score"] - eb.slice_metrics["s"]["f1_score"])  # type: ignore[operator]


def test_results_are_reproducible_and_seeded() -> None:
    data = _regression(300, 50)
    one = _deltas(data, ["mean_absolute_error"])["mean_absolute_error"]
    two = _deltas(data, ["mean_absolute_error"])["mean_absolute_error"]
    other = _deltas(data, ["mean_absolute_error"], DeltaOptions(seed=1))["mean_absolute_error"]
    assert one == two
    assert one.ci != other.ci


# --------------------------------------------------------------------------- the CI-bound gate

def _paired(estimate: float, lo: float, hi: float) -> PairedDelta:
    return PairedDelta(estimate, (lo, hi), 0.2, 0.95, 171, "test")


def test_gate_on_ci_bound_fails_when_only_the_estimate_passes() -> None:
    spec = Threshold(min_absolute_change=0.01)
    on_ci = Threshold(min_absolute_change=0.01, min_change_on="ci_bound")
    paired = _paired(0.02, -0.01, 0.05)
    assert check_threshold("accuracy_score", spec, 0.92, 0.90, paired=paired).verdict is Verdict.PASSED
    failed = check_threshold("accuracy_score", on_ci, 0.92, 0.90, paired=paired)
    assert failed.verdict is Verdict.FAILED
    assert "95% CI lower bound -0.01 does not" in failed.message
    passed = check_threshold("accuracy_score", on_ci, 0.92, 0.90, paired=_paired(0.02, 0.012, 0.03))
    assert passed.verdict is Verdict.PASSED and "CI" in passed.message


def test_gate_on_ci_bound_lower_is_better_uses_the_upper_bound() -> None:
    on_ci = Threshold(min_absolute_change=0.1, min_change_on="ci_bound")
    # rmse fell by 0.2 (better), but the CI's upper end is only -0.05
    r = check_threshold("root_mean_squared_error", on_ci, 1.0, 1.2, paired=_paired(-0.2, -0.35, -0.05))
    assert r.verdict is Verdict.FAILED and "upper bound" in r.message
    ok = check_threshold("root_mean_squared_error", on_ci, 1.0, 1.2, paired=_paired(-0.2, -0.3, -0.12))
    assert ok.verdict is Verdict.PASSED


def test_gate_on_ci_bound_relative_change() -> None:
    on_ci = Threshold(min_relative_change=0.02, min_change_on="ci_bound")
    # +5 % measured, but the lower bound is +1 % of the baseline
    r = check_threshold("f1_score", on_ci, 0.84, 0.80, paired=_paired(0.04, 0.008, 0.07))
    assert r.verdict is Verdict.FAILED and "min_change_on: ci_bound" in r.message
    assert check_threshold("f1_score", on_ci, 0.84, 0.80,
                           paired=_paired(0.04, 0.02, 0.07)).verdict is Verdict.PASSED


def test_gate_on_ci_bound_without_interval_is_inconclusive() -> None:
    on_ci = Threshold(min_absolute_change=0.0, min_change_on="ci_bound")
    r = check_threshold("max_error", on_ci, 1.0, 1.2, paired=None)
    assert r.verdict is Verdict.INCONCLUSIVE and "needs a confidence interval" in r.message
    # a failing estimate still fails
    assert check_threshold("f1_score", on_ci, 0.7, 0.8, paired=None).verdict is Verdict.FAILED


def test_min_change_on_bad_values_are_config_errors() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="estimate"):
        Threshold(min_absolute_change=0.01, min_change_on="ci_lower")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no min_absolute_change or min_relative_change"):
        Threshold(threshold=0.9, min_change_on="ci_bound")


# --------------------------------------------------------------------------- end to end

def test_validate_cli_reports_cis_and_gates_on_the_bound(repo: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_actions.cli import main
    from tests.validation.conftest import write_model_yaml

    yaml_path = repo / "models" / "bc" / "model.yaml"
    original = yaml_path.read_text()

    def run(extra: str) -> tuple[int, dict[str, object], str]:
        write_model_yaml(repo, "bc", original.replace("    accuracy:\n      threshold: 0.85\n",
                                                      "    accuracy:\n      threshold: 0.5\n" + extra))
        md = repo / "comment.md"
        code = main(["-C", str(repo), "validate", "bc", "--version", "1.1.0", "--baseline-env", "production",
                     "--no-log", "--json", "--markdown", str(md), "--latency-rows", "0"])
        return code, json.loads(capsys.readouterr().out), md.read_text()

    code, report, md = run("")
    assert code == 0, md
    acc = report["deltas"]["accuracy_score"]  # type: ignore[index]
    lo, hi = acc["ci"]
    assert lo > 0 and acc["p_value"] < 0.05 and "McNemar" in acc["method"]  # the strong model is better
    assert f"[{lo:+.4f}, {hi:+.4f}]" in md  # the PR comment shows the CI
    assert "95% CI in brackets" in md
    checks = {c["name"]: c for c in report["checks"]}  # type: ignore[attr-defined]
    assert checks["accuracy_score"]["paired"]["ci"] == [lo, hi]
    assert report["slices"]["eu"]["deltas"]["accuracy_score"]["n"] == report["slices"]["eu"]["rows"]  # type: ignore[index]
    # a minimum change between the CI's lower bound and the estimate
    between = (lo + acc["estimate"]) / 2
    code, report, md = run(f"      min_absolute_change: {between!r}\n")
    assert code == 0
    code, report, md = run(f"      min_absolute_change: {between!r}\n      min_change_on: ci_bound\n")
    assert code == 1
    assert "lower bound" in md and "min_change_on: ci_bound" in md


def test_markdown_and_html_show_estimate_ci_and_p() -> None:
    from dataclasses import replace

    from mlops_actions.report.validation import render_html, render_markdown
    from mlops_actions.validation.results import CheckKind, CheckResult, ValidationResult

    acc = PairedDelta(0.0234, (0.0058, 0.041), 0.0113, 0.95, 171, "McNemar")
    auc = PairedDelta(0.01, (-0.002, 0.022), 0.0004, 0.95, 171, "DeLong")
    check = CheckResult(name="accuracy_score", kind=CheckKind.METRIC, verdict=Verdict.PASSED, message="ok",
                        metric="accuracy_score", candidate=0.9234, baseline=0.9, threshold=">= 0.9",
                        paired=acc)
    result = ValidationResult(model="m", version="1.1.0", task="binary_classification", checks=(check,),
                              metrics={"accuracy_score": 0.9234, "roc_auc": 0.95, "true_positives": 50.0},
                              baseline_version="1.0.0",
                              baseline_metrics={"accuracy_score": 0.9, "roc_auc": 0.94,
                                                "true_positives": 48.0},
                              deltas={"accuracy_score": acc, "roc_auc": auc}, rows=171)
    md = render_markdown(result)
    assert "| accuracy_score | 0.9234 | 0.9000 | +0.0234 [+0.0058, +0.0410] p=0.011 | >= 0.9 |" in md
    assert "| roc_auc | 0.9500 | 0.9400 | +0.0100 [-0.0020, +0.0220] p<0.001 |" in md
    assert "| true_positives | 50 | 48 | +2 |" in md  # counts: the delta only
    assert md.count("95% CI in brackets") == 2  # under the thresholds and under all metrics
    assert "+0.0234 [+0.0058, +0.0410] p=0.011" in render_html(result)
    plain = render_markdown(replace(result, deltas={}, checks=(replace(check, paired=None),)))
    assert "CI in brackets" not in plain and "| +0.0234 |" in plain
