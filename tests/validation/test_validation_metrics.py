"""Metric values: identical (1e-9) to mlflow.models.evaluate and to scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from mlops_actions.validation.evaluate import evaluate_predictions, load_model, predict
from mlops_actions.validation.metrics import (
    classification_metrics,
    encode_classification,
    regression_metrics,
)
from tests.validation.conftest import Registry


def _mlflow_evaluate(uri: str, frame: pd.DataFrame, label: str, model_type: str) -> dict[str, float]:
    import mlflow

    with mlflow.start_run():
        result = mlflow.models.evaluate(uri, frame, targets=label, model_type=model_type,
                                        evaluators=["default"],
                                        evaluator_config={"default": {"log_model_explainability": False}})
    return dict(result.metrics)


def _compare(ours: dict[str, float | None], theirs: dict[str, float], names: list[str]) -> None:
    for name in names:
        assert name in theirs, name
        assert ours[name] is not None, name
        assert abs(ours[name] - theirs[name]) <= 1e-9, (name, ours[name], theirs[name])  # type: ignore[operator]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "label", "kind", "names"), [
    ("bc/2", "target", "classifier", ["accuracy_score", "precision_score", "recall_score", "f1_score",
                                      "roc_auc", "log_loss", "true_positives", "false_negatives"]),
    ("iris/1", "species", "classifier", ["accuracy_score", "precision_score", "recall_score", "f1_score",
                                         "roc_auc", "log_loss"]),
    ("reg/1", "y", "regressor", ["root_mean_squared_error", "mean_absolute_error", "r2_score",
                                 "mean_absolute_percentage_error", "mean_squared_error", "max_error"]),
])
def test_same_values_as_mlflow_evaluate(registry: Registry, model: str, label: str, kind: str,
                                        names: list[str]) -> None:
    frame = {"bc": registry.bc_test.drop(columns=["region"]), "iris": registry.iris_test,
             "reg": registry.reg_test.drop(columns=["group"])}[model.split("/")[0]]
    uri = f"models:/{model}"
    loaded = load_model(uri, "x")
    X = frame.drop(columns=[label])
    preds = predict(loaded, X, with_proba=kind == "classifier")
    task = "regression" if kind == "regressor" else (
        "binary_classification" if frame[label].nunique() == 2 else "multiclass_classification")
    ours = evaluate_predictions(task, frame[label].to_numpy(), preds, {}).metrics
    _compare(ours, _mlflow_evaluate(uri, frame, label, kind), names)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 20)), min_size=2,
                max_size=80))
def test_binary_matches_sklearn(rows: list[tuple[int, int, int]]) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    score = np.array([r[2] / 20 for r in rows])  # ties on purpose
    arrays = encode_classification(y, p, np.c_[1 - score, score], np.array([0, 1]), binary=True)
    m = classification_metrics(arrays)
    labels = np.unique(np.r_[y, p])
    if len(labels) == 2:
        assert m["accuracy_score"] == pytest.approx(sk.accuracy_score(y, p), abs=1e-12)
        if (p == 1).any():
            assert m["precision_score"] == pytest.approx(sk.precision_score(y, p), abs=1e-12)
        else:
            assert m["precision_score"] is None  # undefined, not scikit-learn's silent 0
        if (y == 1).any():
            assert m["recall_score"] == pytest.approx(sk.recall_score(y, p), abs=1e-12)
    if len(np.unique(y)) == 2:
        assert m["roc_auc"] == pytest.approx(sk.roc_auc_score(y, score), abs=1e-12)
        expected = sk.log_loss(y, np.c_[1 - score, score], labels=[0, 1])
        assert m["log_loss"] == pytest.approx(expected, abs=1e-12)
    else:
        assert m["roc_auc"] is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=80))
def test_multiclass_matches_sklearn(rows: list[tuple[int, int]]) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    assume(len(np.unique(np.r_[y, p])) > 2)
    m = classification_metrics(encode_classification(y, p))
    for ours, avg in (("f1_score", "weighted"), ("precision_score_macro", "macro"),
                      ("recall_score", "weighted")):
        fn = {"f1": sk.f1_score, "pr": sk.precision_score, "re": sk.recall_score}[ours[:2]]
        assert m[ours] == pytest.approx(fn(y, p, average=avg, zero_division=0), abs=1e-12)


def test_slices_use_the_same_arrays() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    score = rng.random(5000)
    p = (score > 0.5).astype(int)
    arrays = encode_classification(y, p, np.c_[1 - score, score], np.array([0, 1]), binary=True)
    mask = rng.random(5000) < 0.2
    m = classification_metrics(arrays, mask)
    assert m["example_count"] == mask.sum()
    assert m["roc_auc"] == pytest.approx(sk.roc_auc_score(y[mask], score[mask]), abs=1e-12)
    assert m["f1_score"] == pytest.approx(sk.f1_score(y[mask], p[mask]), abs=1e-12)


def test_single_class_slice_is_undefined_not_an_error() -> None:
    y = np.array([1, 1, 1, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1])
    arrays = encode_classification(y, (score > 0.5).astype(int), np.c_[1 - score, score], np.array([0, 1]),
                                   binary=True)
    m = classification_metrics(arrays, np.array([True, True, True, False]))
    assert m["roc_auc"] is None and m["accuracy_score"] == 1.0


def test_regression_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300) + 5
    p = y + rng.normal(size=300)
    m = regression_metrics(y, p)
    assert m["r2_score"] == pytest.approx(sk.r2_score(y, p), abs=1e-12)
    assert m["root_mean_squared_error"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)), abs=1e-12)
    mape = sk.mean_absolute_percentage_error(y, p)
    assert m["mean_absolute_percentage_error"] == pytest.approx(mape, abs=1e-12)
    assert regression_metrics(np.ones(5), np.ones(5))["r2_score"] is None  # constant target: undefined
