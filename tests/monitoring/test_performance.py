"""Performance metrics from the store, MetricThreshold semantics, four-valued verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlops_actions.config.specs import Threshold
from mlops_actions.monitoring.performance import (
    check_metric,
    classification_metrics,
    compute_performance,
    prediction_value,
    regression_metrics,
)
from mlops_actions.monitoring.store import MonitoringStore, PredictionRecord
from mlops_actions.monitoring.verdict import Verdict


def _log(store: MonitoringStore, preds: list, actuals: list | None, *, version: str = "1.0.0",
         status: list[int] | None = None, t0: float = 1000.0) -> None:
    store.write([PredictionRecord(f"q{i}", "m", version, t0 + i, {"x": i}, p, latency_ms=float(i % 100),
                                  status=(status[i] if status else 200)) for i, p in enumerate(preds)])
    if actuals is not None:
        store.attach_actuals({f"q{i}": a for i, a in enumerate(actuals) if a is not None})


def test_binary_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    ours = classification_metrics(t.tolist(), p.tolist())
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    assert ours["precision"] == pytest.approx(skm.precision_score(t, p))
    assert ours["recall"] == pytest.approx(skm.recall_score(t, p))
    assert ours["f1"] == pytest.approx(skm.f1_score(t, p))


def test_multiclass_metrics_are_macro_averaged_like_sklearn() -> None:
    rng = np.random.default_rng(1)
    t, p = rng.choice(["a", "b", "c"], 400), rng.choice(["a", "b", "c"], 400)
    ours = classification_metrics(t.tolist(), p.tolist())
    assert ours["precision"] == pytest.approx(skm.precision_score(t, p, average="macro"))
    assert ours["recall"] == pytest.approx(skm.recall_score(t, p, average="macro"))
    assert ours["f1"] == pytest.approx(skm.f1_score(t, p, average="macro"))


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(2)
    t = rng.normal(size=300)
    p = t + rng.normal(scale=0.3, size=300)
    ours = regression_metrics(t, p)
    assert ours["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(t, p)))
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(t, p))
    assert ours["r2"] == pytest.approx(skm.r2_score(t, p))


@pytest.mark.parametrize(("output", "value"), [
    (1, 1), ([0], 0), ({"prediction": 2}, 2), ([0.1, 0.7, 0.2], 1), ({"predictions": [3.5]}, 3.5),
    ({}, None)])
def test_prediction_value_understands_logged_outputs(output: object, value: object) -> None:
    assert prediction_value(output) == value


def test_store_rows_to_metrics_per_version(store: MonitoringStore) -> None:
    preds = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    actual = [1, 0, 0, 1, 0, 1, 1, 0, 1, None]  # 9 labelled, 7 right
    _log(store, preds, actual, status=[200] * 9 + [503])
    rows = store.query("m", version="1.0.0")
    report = compute_performance(rows, model="m", version="1.0.0", window_seconds=10.0)
    assert report.n_predictions == 10 and report.n_labelled == 9
    assert report.metrics["accuracy"] == pytest.approx(7 / 9)
    assert report.metrics["error_rate"] == pytest.approx(0.1)
    assert report.metrics["throughput_rps"] == pytest.approx(1.0)
    assert report.metrics["latency_p50_ms"] == pytest.approx(4.5)
    assert report.task == "classification"


def test_threshold_semantics() -> None:
    # absolute threshold, greater is better by metric kind
    assert check_metric("accuracy", 0.8, threshold=Threshold(threshold=0.85), n=100,
                        min_samples=10).verdict is Verdict.FAILED
    c = check_metric("rmse", 1.2, threshold=Threshold(threshold=1.0), n=100, min_samples=10)
    assert c.verdict is Verdict.FAILED and "rmse 1.2 > 1" in c.message
    # degradation allowed from the baseline
    assert check_metric("accuracy", 0.86, threshold=Threshold(min_absolute_change=0.05), baseline=0.9,
                        n=100, min_samples=10).verdict is Verdict.PASSED
    assert check_metric("accuracy", 0.84, threshold=Threshold(min_absolute_change=0.05), baseline=0.9,
                        n=100, min_samples=10).verdict is Verdict.FAILED
    assert check_metric("mae", 1.09, threshold=Threshold(min_relative_change=0.1), baseline=1.0,
                        n=100, min_samples=10).verdict is Verdict.PASSED
    assert check_metric("mae", 1.11, threshold=Threshold(min_relative_change=0.1), baseline=1.0,
                        n=100, min_samples=10).verdict is Verdict.FAILED
    # the strictest bound wins
    both = check_metric("accuracy", 0.88, threshold=Threshold(threshold=0.8, min_absolute_change=0.01),
                        baseline=0.9, n=100, min_samples=10)
    assert both.verdict is Verdict.FAILED and both.bound == pytest.approx(0.89)
    # explicit greater_is_better overrides the default
    assert check_metric("custom", 5.0, threshold=Threshold(threshold=4.0, greater_is_better=False),
                        n=100, min_samples=10).verdict is Verdict.FAILED


def test_too_few_samples_is_inconclusive_not_passed() -> None:
    c = check_metric("accuracy", 1.0, threshold=Threshold(threshold=0.9), n=5, min_samples=100)
    assert c.verdict is Verdict.INCONCLUSIVE and "n=5 < min_samples 100" in c.message


def test_baseline_default_tolerance_and_service_limits(store: MonitoringStore) -> None:
    _log(store, [1] * 50 + [0] * 50, [1] * 50 + [1] * 50)  # accuracy 0.5
    rows = store.query("m")
    report = compute_performance(rows, baseline={"accuracy": 0.9, "f1_score": 0.5}, min_samples=20,
                                 max_error_rate=0.01, max_latency_p95_ms=50.0)
    checks = {c.metric: c for c in report.checks}
    assert checks["accuracy"].verdict is Verdict.FAILED and checks["accuracy"].baseline == 0.9
    assert checks["f1"].verdict is Verdict.PASSED  # f1 0.667 vs baseline 0.5
    assert checks["error_rate"].verdict is Verdict.PASSED
    assert checks["latency_p95_ms"].verdict is Verdict.FAILED  # p95 of 0..99 is ~94 ms
    assert report.verdict is Verdict.FAILED


def test_empty_window_is_inconclusive(store: MonitoringStore) -> None:
    report = compute_performance(store.query("m"), thresholds={"accuracy": Threshold(threshold=0.9)},
                                 min_samples=10)
    assert report.n_predictions == 0 and report.verdict is Verdict.INCONCLUSIVE
    assert report.checks[0].verdict is Verdict.INCONCLUSIVE


def test_regression_with_task_and_bad_outputs(store: MonitoringStore) -> None:
    _log(store, [1.5, 2.5, 3.0, None], [1.0, 2.0, 3.0, 4.0])
    report = compute_performance(store.query("m"), task="regression")
    assert report.metrics["mae"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert report.n_labelled == 3 and any("no usable prediction" in n for n in report.notes)
    frame = pd.DataFrame(report.to_dict()["checks"])
    assert frame.empty
