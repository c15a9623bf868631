"""Threshold decisions agree with mlflow.validate_evaluation_results; the extra cases are four-valued."""

from __future__ import annotations

import pytest

from mlops_actions.config.specs import Threshold
from mlops_actions.validation.results import Verdict, roll_up
from mlops_actions.validation.thresholds import check_threshold, describe_threshold

CASES = [
    # metric, threshold kwargs, candidate, baseline
    ("accuracy_score", {"threshold": 0.9}, 0.91, None),
    ("accuracy_score", {"threshold": 0.9}, 0.89, None),
    ("log_loss", {"threshold": 0.3}, 0.25, None),
    ("log_loss", {"threshold": 0.3}, 0.35, None),
    ("f1_score", {"min_absolute_change": 0.01}, 0.92, 0.90),
    ("f1_score", {"min_absolute_change": 0.05}, 0.92, 0.90),
    ("root_mean_squared_error", {"min_absolute_change": 0.1}, 1.0, 1.2),
    ("root_mean_squared_error", {"min_absolute_change": 0.1}, 1.15, 1.2),
    ("r2_score", {"min_relative_change": 0.1}, -0.4, -0.5),
    ("r2_score", {"min_relative_change": 0.5}, -0.4, -0.5),
    ("accuracy_score", {"min_relative_change": 0.05}, 0.5, 0.0),
    ("accuracy_score", {"min_relative_change": 0.05}, 0.0, 0.0),
    ("mean_absolute_error", {"threshold": 2.0, "min_relative_change": 0.1}, 1.0, 1.05),
    ("roc_auc", {"threshold": 0.8, "greater_is_better": False}, 0.7, None),
]


@pytest.mark.parametrize(("metric", "kwargs", "candidate", "baseline"), CASES)
def test_agrees_with_mlflow(metric: str, kwargs: dict[str, float], candidate: float,
                            baseline: float | None) -> None:
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import MetricThreshold, ModelValidationFailedException

    spec = Threshold(**kwargs)  # type: ignore[arg-type]
    ours = check_threshold(metric, spec, candidate, baseline, baseline_version="1.0.0" if baseline else None)
    from mlops_actions.validation.thresholds import greater_is_better

    mt = MetricThreshold(threshold=spec.threshold, min_absolute_change=spec.min_absolute_change,
                         min_relative_change=spec.min_relative_change,
                         greater_is_better=greater_is_better(metric, spec))
    try:
        import mlflow

        mlflow.validate_evaluation_results(
            validation_thresholds={metric: mt},
            candidate_result=EvaluationResult(metrics={metric: candidate}, artifacts={}),
            baseline_result=EvaluationResult(metrics={metric: baseline}, artifacts={})
            if baseline is not None else None)
        mlflow_passed = True
    except ModelValidationFailedException:
        mlflow_passed = False
    assert (ours.verdict is Verdict.PASSED) == mlflow_passed, ours.message
    assert ours.verdict in (Verdict.PASSED, Verdict.FAILED)


def test_messages_say_actual_expected_and_next_step() -> None:
    r = check_threshold("accuracy_score", Threshold(threshold=0.9), 0.871, None, slice_name="age-65",
                        rows=412, location="models/churn/model.yaml:14:7")
    assert r.verdict is Verdict.FAILED
    assert "accuracy_score 0.871 < threshold 0.9 on slice `age-65` (n=412)" in r.message
    assert r.message.endswith("see models/churn/model.yaml:14:7")


def test_undefined_metric_is_inconclusive_and_missing_baseline_is_error() -> None:
    assert check_threshold("roc_auc", Threshold(threshold=0.8), None, None).verdict is Verdict.INCONCLUSIVE
    r = check_threshold("f1_score", Threshold(min_absolute_change=0.01), 0.9, None)
    assert r.verdict is Verdict.ERROR and "no baseline version is live" in r.message
    # threshold already failed: failed beats "cannot compare"
    r = check_threshold("f1_score", Threshold(threshold=0.95, min_absolute_change=0.01), 0.9, None)
    assert r.verdict is Verdict.FAILED


def test_roll_up_order_and_description() -> None:
    assert roll_up([]) is Verdict.PASSED
    assert roll_up([Verdict.PASSED, Verdict.INCONCLUSIVE]) is Verdict.INCONCLUSIVE
    assert roll_up([Verdict.INCONCLUSIVE, Verdict.ERROR]) is Verdict.ERROR
    assert roll_up([Verdict.ERROR, Verdict.FAILED, Verdict.PASSED]) is Verdict.FAILED
    assert describe_threshold("log_loss", Threshold(threshold=0.3, min_absolute_change=0.01)) == \
        "<= 0.3; <= baseline - 0.01"
