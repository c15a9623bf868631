"""Metric calculation: vectorised numpy on prediction arrays made once.

The model predicts once on the whole test set; the whole set and every slice
are then scored from the same arrays with a boolean mask, so adding a slice
costs a few array operations instead of another prediction and another
evaluation. Values equal ``mlflow.models.evaluate``'s (default evaluator) to
1e-9, under MLflow's names:

* binary: labels are the sorted union of true and predicted labels (MLflow's
  ``label_list``), the positive label the last one; precision, recall and F1
  with ``average="binary"``; ``roc_auc`` from the positive-class probability;
* multiclass: ``average="weighted"`` (MLflow's default), plus ``*_macro``;
  ``roc_auc`` one-vs-rest weighted by prevalence;
* ``log_loss`` clips probabilities to ``[eps, 1-eps]`` like scikit-learn;
* regression: ``root_mean_squared_error``, ``mean_absolute_error``,
  ``r2_score``, ``mean_absolute_percentage_error`` (and a few more).

Where MLflow or scikit-learn would raise or silently return 0 because a metric
is undefined (a slice holding one class for ROC AUC, no predicted positives for
precision, constant target for R2), the value here is ``None``, which a
threshold reports as *inconclusive*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ALIASES",
    "CLASSIFICATION_METRICS",
    "GREATER_IS_BETTER",
    "REGRESSION_METRICS",
    "ClassificationArrays",
    "classification_metrics",
    "confusion_matrix",
    "encode_classification",
    "metric_name",
    "regression_metrics",
]

BINARY_METRICS = (
    "example_count", "accuracy_score", "precision_score", "recall_score", "f1_score",
    "roc_auc", "log_loss", "true_positives", "false_positives", "true_negatives", "false_negatives",
)
MULTICLASS_METRICS = (
    "example_count", "accuracy_score", "precision_score", "recall_score", "f1_score",
    "precision_score_macro", "recall_score_macro", "f1_score_macro", "roc_auc", "log_loss",
)
CLASSIFICATION_METRICS = tuple(dict.fromkeys(BINARY_METRICS + MULTICLASS_METRICS))
REGRESSION_METRICS = (
    "example_count", "root_mean_squared_error", "mean_squared_error", "mean_absolute_error",
    "r2_score", "mean_absolute_percentage_error", "max_error", "mean_on_target",
)

#: short names people write in model.yaml -> MLflow's metric names
ALIASES: Mapping[str, str] = {
    "accuracy": "accuracy_score", "precision": "precision_score", "recall": "recall_score",
    "f1": "f1_score", "auc": "roc_auc", "precision_macro": "precision_score_macro",
    "recall_macro": "recall_score_macro", "f1_macro": "f1_score_macro",
    "precision_weighted": "precision_score", "recall_weighted": "recall_score",
    "f1_weighted": "f1_score", "f1_score_weighted": "f1_score",
    "rmse": "root_mean_squared_error", "mse": "mean_squared_error", "mae": "mean_absolute_error",
    "r2": "r2_score", "mape": "mean_absolute_percentage_error",
}

#: MLflow's MetricThreshold needs greater_is_better; these are the defaults per metric
GREATER_IS_BETTER: Mapping[str, bool] = {
    "example_count": True, "accuracy_score": True, "precision_score": True, "recall_score": True,
    "f1_score": True, "precision_score_macro": True, "recall_score_macro": True, "f1_score_macro": True,
    "roc_auc": True, "log_loss": False, "true_positives": True, "true_negatives": True,
    "false_positives": False, "false_negatives": False,
    "root_mean_squared_error": False, "mean_squared_error": False, "mean_absolute_error": False,
    "r2_score": True, "mean_absolute_percentage_error": False, "max_error": False, "mean_on_target": True,
}


def metric_name(name: str) -> str:
    """The MLflow name of a metric written in model.yaml (``accuracy`` -> ``accuracy_score``)."""
    return ALIASES.get(name, name)


@dataclass(frozen=True)
class ClassificationArrays:
    """Predictions coded once as integers over ``labels``; slices index these arrays.

    ``proba`` columns follow ``proba_labels`` (the model's classes);
    ``true_col[i]`` is the probability column of row ``i``'s true label, -1 if
    the model does not know that label. ``order[k]`` holds the rows sorted by
    descending probability of ``proba_labels[k]`` (computed once, reused by
    every slice's ROC AUC).
    """

    labels: np.ndarray  # sorted union of true and predicted labels
    y_true: np.ndarray  # int codes into labels
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    proba_labels: np.ndarray | None = None
    true_col: np.ndarray | None = None
    order: tuple[np.ndarray, ...] = ()

    @property
    def binary(self) -> bool:
        return len(self.labels) == 2


def _unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, inverse = np.unique(values, return_inverse=True)
    return labels, inverse.reshape(-1)


def encode_classification(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None = None,
                          proba_labels: np.ndarray | None = None, *, binary: bool = False,
                          ) -> ClassificationArrays:
    """Code labels as integers once (the expensive part of scikit-learn's per-call checks)."""
    n = len(y_true)
    try:
        labels, inverse = _unique_inverse(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    except TypeError:  # mixed types (e.g. "1" and 1): compare as text, as MLflow's np.unique would fail
        labels, inverse = _unique_inverse(
            np.concatenate([np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)]))
    if binary and len(labels) < 2 and proba_labels is not None and len(proba_labels) == 2:
        labels = np.asarray(proba_labels)
        inverse = np.searchsorted(labels, np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    codes_true, codes_pred = inverse[:n].astype(np.int64), inverse[n:].astype(np.int64)
    true_col = None
    order: tuple[np.ndarray, ...] = ()
    if proba is not None and proba_labels is not None:
        proba = np.asarray(proba, dtype=np.float64)
        plabels = np.asarray(proba_labels)
        lookup = {v.item() if hasattr(v, "item") else v: i for i, v in enumerate(plabels)}
        label_to_col = np.array([lookup.get(v.item() if hasattr(v, "item") else v, -1) for v in labels],
                                dtype=np.int64)
        true_col = label_to_col[codes_true]
        cols = [plabels.shape[0] - 1] if plabels.shape[0] == 2 else range(plabels.shape[0])
        order = tuple(np.argsort(-proba[:, k], kind="stable") if k in cols else np.empty(0, np.int64)
                      for k in range(plabels.shape[0]))
    return ClassificationArrays(labels=labels, y_true=codes_true, y_pred=codes_pred, proba=proba,
                                proba_labels=proba_labels, true_col=true_col, order=order)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Rows: true label code; columns: predicted label code."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def _div(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def _binary_auc(positive_sorted: np.ndarray, scores_sorted: np.ndarray) -> float | None:
    """Area under the ROC curve (scikit-learn's ``roc_curve`` + ``auc``) from rows sorted by score."""
    n_pos = int(positive_sorted.sum())
    n = positive_sorted.shape[0]
    if n_pos == 0 or n_pos == n:
        return None
    distinct = np.flatnonzero(np.diff(scores_sorted))
    idx = np.r_[distinct, n - 1]
    tps = np.cumsum(positive_sorted, dtype=np.float64)[idx]
    fps = (idx + 1) - tps
    tpr = np.r_[0.0, tps] / tps[-1]
    fpr = np.r_[0.0, fps] / fps[-1]
    return float(np.trapezoid(tpr, fpr))


def _auc_for(arrays: ClassificationArrays, col: int, positive_code_mask: np.ndarray,
             rows: np.ndarray | None) -> float | None:
    """AUC of probability column ``col`` for the rows in ``rows`` (None: all)."""
    assert arrays.proba is not None
    order = arrays.order[col]
    if rows is not None:
        order = order[rows[order]]
    return _binary_auc(positive_code_mask[order], arrays.proba[order, col])


def classification_metrics(arrays: ClassificationArrays, mask: np.ndarray | None = None
                           ) -> dict[str, float | None]:
    """MLflow's default-evaluator classification metrics on the rows in ``mask`` (None: all)."""
    t = arrays.y_true if mask is None else arrays.y_true[mask]
    p = arrays.y_pred if mask is None else arrays.y_pred[mask]
    n = int(t.shape[0])
    k = len(arrays.labels)
    out: dict[str, float | None] = {"example_count": float(n)}
    if n == 0:
        return out
    cm = confusion_matrix(t, p, k)
    tp_k = np.diag(cm).astype(np.float64)
    true_k = cm.sum(axis=1).astype(np.float64)
    pred_k = cm.sum(axis=0).astype(np.float64)
    out["accuracy_score"] = float(tp_k.sum() / n)
    if arrays.binary:
        tn, fp, fn, tp = (int(x) for x in cm.ravel())
        out.update(true_negatives=float(tn), false_positives=float(fp), false_negatives=float(fn),
                   true_positives=float(tp))
        out["precision_score"] = _div(tp, tp + fp)
        out["recall_score"] = _div(tp, tp + fn)
        out["f1_score"] = _div(2 * tp, 2 * tp + fp + fn)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(pred_k > 0, tp_k / pred_k, 0.0)
            rec = np.where(true_k > 0, tp_k / true_k, 0.0)
            f1 = np.where(true_k + pred_k > 0, 2 * tp_k / (true_k + pred_k), 0.0)
        present = (true_k + pred_k) > 0  # scikit-learn's labels=None: labels seen in this set
        w = true_k / true_k.sum()
        out["precision_score"] = float((prec * w).sum())
        out["recall_score"] = float((rec * w).sum())
        out["f1_score"] = float((f1 * w).sum())
        out["precision_score_macro"] = float(prec[present].mean())
        out["recall_score_macro"] = float(rec[present].mean())
        out["f1_score_macro"] = float(f1[present].mean())
    if arrays.proba is not None and arrays.true_col is not None:
        out.update(_probability_metrics(arrays, mask, t, n))
    return out


def _probability_metrics(arrays: ClassificationArrays, mask: np.ndarray | None, t: np.ndarray,
                         n: int) -> dict[str, float | None]:
    assert arrays.proba is not None and arrays.true_col is not None
    out: dict[str, float | None] = {}
    true_col = arrays.true_col if mask is None else arrays.true_col[mask]
    proba = arrays.proba if mask is None else arrays.proba[mask]
    if (true_col < 0).any():
        out["log_loss"] = None  # a true label the model cannot predict: undefined
    else:
        eps = np.finfo(np.float64).eps
        p_true = np.clip(proba[np.arange(n), true_col], eps, 1 - eps)
        out["log_loss"] = float(-np.log(p_true).sum() / n)
    n_cols = arrays.proba.shape[1]
    if arrays.binary:
        if n_cols != 2:
            out["roc_auc"] = None
            return out
        positive = arrays.true_col == 1
        out["roc_auc"] = _auc_for(arrays, 1, positive, mask)
        return out
    # multiclass: one-vs-rest, weighted by prevalence of each true class in this set
    counts = np.bincount(true_col[true_col >= 0], minlength=n_cols).astype(np.float64)
    if (counts > 0).sum() < 2 or (true_col < 0).any():
        out["roc_auc"] = None
        return out
    total, weight = 0.0, 0.0
    for col in np.flatnonzero(counts):
        auc = _auc_for(arrays, int(col), arrays.true_col == col, mask)
        if auc is None:
            out["roc_auc"] = None
            return out
        total += auc * counts[col]
        weight += counts[col]
    out["roc_auc"] = float(total / weight)
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None
                       ) -> dict[str, float | None]:
    """MLflow's default-evaluator regression metrics on the rows in ``mask`` (None: all)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if mask is not None:
        y, p = y[mask], p[mask]
    n = y.shape[0]
    out: dict[str, float | None] = {"example_count": float(n)}
    if n == 0:
        return out
    err = y - p
    sq = err * err
    ab = np.abs(err)
    mse = float(sq.mean())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    total = float(y.sum())
    out.update(
        mean_absolute_error=float(ab.mean()),
        mean_squared_error=mse,
        root_mean_squared_error=float(np.sqrt(mse)),
        r2_score=(1.0 - float(sq.sum()) / ss_tot) if ss_tot > 0 else None,
        max_error=float(ab.max()),
        mean_absolute_percentage_error=float(
            (ab / np.maximum(np.abs(y), np.finfo(np.float64).eps)).mean()),
        mean_on_target=total / n,
        sum_on_target=total,
    )
    return out
