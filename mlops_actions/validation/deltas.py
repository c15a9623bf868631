"""Candidate minus baseline on the same test rows, with a confidence interval and a p-value.

Both versions predict once on the same rows (:mod:`.evaluate`), so every delta is paired
(:mod:`mlops_actions.stats.paired`):

* ``accuracy_score``: McNemar's mid-p test and the Agresti-Min interval of the difference of
  paired proportions;
* precision, recall and F1 (binary, weighted, macro): paired bootstrap from the counts of
  ``(true label, candidate's label, baseline's label)`` per row, resampled as a multinomial (the
  row bootstrap, at a cost independent of the number of rows);
* ``roc_auc`` (binary): DeLong's test of two correlated AUCs (asymptotic normal interval);
  multiclass (one-vs-rest, weighted by each class's prevalence, as :mod:`.metrics` reports it):
  paired bootstrap, the same resampled rows scoring both models, each class's AUC computed from
  the resample's row weights on rows sorted once (the Mann-Whitney form with ties counted half,
  equal to scikit-learn's ``roc_auc_score(multi_class="ovr", average="weighted")`` with the
  weights as ``sample_weight``); above ``MAX_AUC_BOOTSTRAP`` row x class x resample
  cells it gets no interval (the cost grows with the rows);
* ``log_loss`` and the regression metrics (MAE, MSE, RMSE, R2, MAPE): paired bootstrap of the
  per-row sums they are made of, vectorised over resamples (above 5,000 rows, over 5,000
  random buckets of rows);
* counts (``example_count``, ``true_positives``...), ``max_error`` and ``mean_on_target`` get no
  interval (a count's change is exact; the others are not stable under resampling or do not
  depend on the model), nor do precision, recall and F1 with more than 50 classes (the
  resampled confusion matrices would cost resamples x classes^2).

Resamples, seed and confidence come from the caller (2,000 resamples, seed 0, 95 % by default),
so a report is reproducible. Each resampled metric is computed with the same formulas as
:mod:`.metrics` (a test checks the full-data values agree).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlops_actions.stats.paired import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MAX_GROUPS,
    PairedDelta,
    bootstrap_delta,
    delong,
    mcnemar,
    resample_cells,
    resample_sums,
    resample_weights,
)
from mlops_actions.validation.evaluate import Evaluation, Predictions
from mlops_actions.validation.metrics import ClassificationArrays

__all__ = ["DeltaOptions", "paired_deltas"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_CONFUSION = ("precision_score", "recall_score", "f1_score", "precision_score_macro",
              "recall_score_macro", "f1_score_macro")
_REGRESSION = ("mean_absolute_error", "mean_squared_error", "root_mean_squared_error", "r2_score",
               "mean_absolute_percentage_error")
_EPS = np.finfo(np.float64).eps
MAX_CLASSES = 50  # above: no interval for precision/recall/F1 (resamples x classes^2 confusion cells)
#: rows x classes x resamples (5,000 x 3 x 2,000 takes seconds): above, no multiclass AUC interval
MAX_AUC_BOOTSTRAP = 3 * 10**7


@dataclass(frozen=True)
class DeltaOptions:
    confidence: float = DEFAULT_CONFIDENCE
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED


def _seed(options: DeltaOptions, scope: str, what: str) -> tuple[int, int]:
    """One stream per (scope, metric group): results do not depend on the order of work."""
    return options.seed, zlib.crc32(f"{scope}\0{what}".encode())


# --------------------------------------------------------------------------- classification

def _joint_codes(y: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> tuple[int, np.ndarray, np.ndarray,
                                                                           np.ndarray]:
    both = np.concatenate([np.asarray(y), np.asarray(pa), np.asarray(pb)])
    try:
        labels, inverse = np.unique(both, return_inverse=True)
    except TypeError:  # mixed types: compare as text, as encode_classification does
        labels, inverse = np.unique(both.astype(str), return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    n = len(y)
    return len(labels), inverse[:n], inverse[n:2 * n], inverse[2 * n:]


def _confusion_metrics(cm: FloatArray) -> dict[str, FloatArray]:
    """:func:`.metrics.classification_metrics`' formulas over a stack of confusion matrices
    ``(resamples, k, k)`` (rows: true label, columns: predicted); NaN where undefined."""
    k = cm.shape[1]
    out: dict[str, FloatArray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if k == 2:
            fp, fn, tp = cm[:, 0, 1], cm[:, 1, 0], cm[:, 1, 1]
            out["precision_score"] = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
            out["recall_score"] = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            out["f1_score"] = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
            return out
        tp_k = np.diagonal(cm, axis1=1, axis2=2)
        true_k, pred_k = cm.sum(axis=2), cm.sum(axis=1)
        prec = np.where(pred_k > 0, tp_k / pred_k, 0.0)
        rec = np.where(true_k > 0, tp_k / true_k, 0.0)
        f1 = np.where(true_k + pred_k > 0, 2 * tp_k / (true_k + pred_k), 0.0)
        w = true_k / true_k.sum(axis=1, keepdims=True)
        present = (true_k + pred_k) > 0
        n_present = present.sum(axis=1)
        for name, v in (("precision", prec), ("recall", rec), ("f1", f1)):
            out[f"{name}_score"] = (v * w).sum(axis=1)
            out[f"{name}_score_macro"] = (v * present).sum(axis=1) / n_present
    return out


def _cells_to_confusion(values: np.ndarray, counts: np.ndarray, k: int) -> tuple[FloatArray, FloatArray]:
    """Counts of cells ``(y * k + a) * k + b`` -> confusion matrices of A and of B."""
    y, rest = np.divmod(values, k * k)
    a, b = np.divmod(rest, k)
    cm_a = np.zeros((counts.shape[0], k * k))
    cm_b = np.zeros((counts.shape[0], k * k))
    np.add.at(cm_a.T, y * k + a, counts.T.astype(float))
    np.add.at(cm_b.T, y * k + b, counts.T.astype(float))
    return cm_a.reshape(-1, k, k), cm_b.reshape(-1, k, k)


def _row_loss(arrays: ClassificationArrays, rows: np.ndarray) -> FloatArray | None:
    if arrays.proba is None or arrays.true_col is None:
        return None
    tc = arrays.true_col[rows]
    if (tc < 0).any():
        return None
    p = np.clip(arrays.proba[rows][np.arange(rows.size), tc], _EPS, 1 - _EPS)
    return np.asarray(-np.log(p), dtype=float)


def _auc_inputs(arrays: ClassificationArrays, rows: np.ndarray) -> tuple[FloatArray, np.ndarray] | None:
    if arrays.proba is None or arrays.true_col is None or arrays.proba.shape[1] != 2 or not arrays.binary:
        return None
    return arrays.proba[rows, 1], arrays.true_col[rows] == 1


def _classification(y: np.ndarray, cand: Predictions, base: Predictions, cand_ev: Evaluation,
                    base_ev: Evaluation, rows: np.ndarray, wanted: set[str], scope: str,
                    options: DeltaOptions) -> dict[str, PairedDelta]:
    out: dict[str, PairedDelta] = {}
    n = int(rows.size)
    k, yt, pa, pb = _joint_codes(y[rows], base.y_pred[rows], cand.y_pred[rows])
    if "accuracy_score" in wanted:
        out["accuracy_score"] = mcnemar(pa == yt, pb == yt, confidence=options.confidence)
    names = [m for m in _CONFUSION if m in wanted]
    if names and k <= MAX_CLASSES:
        values, counts = resample_cells((yt * k + pa) * k + pb, options.resamples,
                                        seed=_seed(options, scope, "confusion"))
        full = np.bincount((yt * k + pa) * k + pb, minlength=k ** 3)[values][None, :]
        point_a, point_b = (_confusion_metrics(cm) for cm in _cells_to_confusion(values, full, k))
        rep_a, rep_b = (_confusion_metrics(cm) for cm in _cells_to_confusion(values, counts, k))
        for m in names:
            if m not in point_a:
                continue
            out[m] = bootstrap_delta(_finite(point_a[m][0]), _finite(point_b[m][0]), rep_a[m], rep_b[m],
                                     n=n, confidence=options.confidence,
                                     method="paired bootstrap of (label, baseline, candidate) counts, "
                                            f"{options.resamples} resamples")
    arrays_a, arrays_b = base_ev.arrays, cand_ev.arrays
    if arrays_a is None or arrays_b is None or n == 0:
        return out
    if "log_loss" in wanted:
        la, lb = _row_loss(arrays_a, rows), _row_loss(arrays_b, rows)
        if la is not None and lb is not None:
            sums = resample_sums(np.column_stack([la, lb]), options.resamples,
                                 seed=_seed(options, scope, "log_loss"))
            out["log_loss"] = bootstrap_delta(float(la.mean()), float(lb.mean()), sums[:, 0] / sums[:, 2],
                                              sums[:, 1] / sums[:, 2], n=n, confidence=options.confidence,
                                              method=_bootstrap_method(n, options))
    if "roc_auc" in wanted:
        ia, ib = _auc_inputs(arrays_a, rows), _auc_inputs(arrays_b, rows)
        if ia is not None and ib is not None and np.array_equal(ia[1], ib[1]):
            out["roc_auc"] = delong(ia[1], ia[0], ib[0], confidence=options.confidence)
        elif not arrays_a.binary and not arrays_b.binary:
            auc = _multiclass_auc(yt, arrays_a, arrays_b, rows, scope, options)
            if auc is not None:
                out["roc_auc"] = auc
    return out


def _ovr_columns(yt: IntArray, arrays: ClassificationArrays, rows: IntArray) -> dict[int, FloatArray] | None:
    """Per true class (joint code): that class's probability column of the model on ``rows``;
    None when the model has no probabilities or a true label it cannot score."""
    if arrays.proba is None or arrays.true_col is None:
        return None
    true_col = arrays.true_col[rows]
    if (true_col < 0).any():
        return None
    out = {}
    for c in np.unique(yt):
        cols = np.unique(true_col[yt == c])
        if cols.size != 1:
            return None
        out[int(c)] = np.asarray(arrays.proba[rows, int(cols[0])], dtype=float)
    return out


class _RankedScores:
    """One class's scores sorted once: for any row weights, the one-vs-rest AUC
    ``sum over positive i, negative j of w_i w_j ([s_i > s_j] + [s_i = s_j] / 2) / (P N)``."""

    def __init__(self, scores: FloatArray, positive: npt.NDArray[np.bool_]) -> None:
        self.order = np.argsort(scores, kind="stable")
        s = scores[self.order]
        self.pos = positive[self.order].astype(float)
        new = np.r_[True, s[1:] != s[:-1]]
        group = np.cumsum(new) - 1
        starts = np.flatnonzero(new)
        ends = np.r_[starts[1:], s.size] - 1
        self.start, self.end = starts[group], ends[group]  # each row's tie group

    def parts(self, weights: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per resample (rows of ``weights``): the pair sum, positive and negative weight."""
        w = weights[:, self.order]
        pos_w, neg_w = w * self.pos, w * (1.0 - self.pos)
        cum = np.cumsum(neg_w, axis=1)
        below = np.where(self.start > 0, cum[:, np.maximum(self.start - 1, 0)], 0.0)
        tied = cum[:, self.end] - below
        return (pos_w * (below + 0.5 * tied)).sum(axis=1), pos_w.sum(axis=1), neg_w.sum(axis=1)


def _ovr_weighted_auc(ranked: Mapping[int, _RankedScores], weights: FloatArray) -> FloatArray:
    """Weighted one-vs-rest ROC AUC for each row of ``weights`` (NaN where fewer than two classes
    have weight): the classes with positive weight, each weighted by it, as :mod:`.metrics`."""
    total = np.zeros(weights.shape[0])
    weight = np.zeros(weights.shape[0])
    classes = np.zeros(weights.shape[0])
    for r in ranked.values():
        pairs, pos, neg = r.parts(weights)
        present = pos > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = np.where(present & (neg > 0), pairs / (pos * neg), np.nan)
        total += np.where(present, auc * pos, 0.0)
        weight += pos
        classes += present
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(classes >= 2, total / weight, np.nan), dtype=float)


def _multiclass_auc(yt: IntArray, arrays_a: ClassificationArrays, arrays_b: ClassificationArrays,
                    rows: IntArray, scope: str, options: DeltaOptions) -> PairedDelta | None:
    cols_a, cols_b = _ovr_columns(yt, arrays_a, rows), _ovr_columns(yt, arrays_b, rows)
    if cols_a is None or cols_b is None or len(cols_a) < 2:
        return None
    ranked_a = {c: _RankedScores(v, yt == c) for c, v in cols_a.items()}
    ranked_b = {c: _RankedScores(v, yt == c) for c, v in cols_b.items()}
    n = int(rows.size)
    ones = np.ones((1, n))
    point_a, point_b = (_finite(_ovr_weighted_auc(r, ones)[0]) for r in (ranked_a, ranked_b))
    method = ("paired bootstrap of rows (one-vs-rest AUC weighted by prevalence), "
              f"{options.resamples} resamples")
    if n * len(cols_a) * options.resamples > MAX_AUC_BOOTSTRAP:
        estimate = None if point_a is None or point_b is None else point_b - point_a
        return PairedDelta(estimate, None, None, options.confidence, n, method,
                           note=f"no interval: {n:,} rows x {len(cols_a)} classes is too many to bootstrap")
    rep_a, rep_b = [], []
    for w in resample_weights(n, options.resamples, seed=_seed(options, scope, "roc_auc"),
                              chunk_elements=1 << 20):  # 8 MiB of weights, a few copies in flight
        wf = w.astype(float)
        rep_a.append(_ovr_weighted_auc(ranked_a, wf))
        rep_b.append(_ovr_weighted_auc(ranked_b, wf))
    return bootstrap_delta(point_a, point_b, np.concatenate(rep_a), np.concatenate(rep_b), n=n,
                           confidence=options.confidence, method=method)


def _bootstrap_method(n: int, options: DeltaOptions) -> str:
    if n > MAX_GROUPS:
        return f"paired bucket bootstrap ({MAX_GROUPS} random buckets of rows), {options.resamples} resamples"
    return f"paired bootstrap of rows, {options.resamples} resamples"


# --------------------------------------------------------------------------- regression

def _regression_from_sums(s: FloatArray) -> dict[str, FloatArray]:
    """Metrics from (weighted) sums of the per-row columns of :func:`_regression_columns`,
    the last column counting rows."""
    abs_e, sq_e, ape, y, y2, n = (s[:, i] for i in range(6))
    mse = sq_e / n
    with np.errstate(divide="ignore", invalid="ignore"):
        sst = y2 - y * y / n
        r2 = np.where(sst > 1e-12 * np.maximum(y2, 1.0), 1.0 - sq_e / sst, np.nan)
    return {"mean_absolute_error": abs_e / n, "mean_squared_error": mse,
            "root_mean_squared_error": np.sqrt(mse), "r2_score": r2,
            "mean_absolute_percentage_error": ape / n}


def _regression_columns(y: FloatArray, p: FloatArray) -> FloatArray:
    e = y - p
    return np.column_stack([np.abs(e), e * e, np.abs(e) / np.maximum(np.abs(y), _EPS), y, y * y])


def _regression(y: np.ndarray, cand: Predictions, base: Predictions, rows: np.ndarray, wanted: set[str],
                scope: str, options: DeltaOptions) -> dict[str, PairedDelta]:
    names = [m for m in _REGRESSION if m in wanted]
    n = int(rows.size)
    if not names or n == 0:
        return {}
    yy = np.asarray(y[rows], dtype=float)
    cols_a = _regression_columns(yy, np.asarray(base.y_pred[rows], dtype=float))
    cols_b = _regression_columns(yy, np.asarray(cand.y_pred[rows], dtype=float))
    width = cols_a.shape[1]
    ones = np.full((1, 1), float(n))
    point_a = _regression_from_sums(np.hstack([cols_a.sum(axis=0)[None, :], ones]))
    point_b = _regression_from_sums(np.hstack([cols_b.sum(axis=0)[None, :], ones]))
    sums = resample_sums(np.hstack([cols_a, cols_b]), options.resamples, seed=_seed(options, scope, "rows"))
    count = sums[:, -1:]
    rep_a = _regression_from_sums(np.hstack([sums[:, :width], count]))
    rep_b = _regression_from_sums(np.hstack([sums[:, width:2 * width], count]))
    return {m: bootstrap_delta(_finite(point_a[m][0]), _finite(point_b[m][0]), rep_a[m], rep_b[m], n=n,
                               confidence=options.confidence, method=_bootstrap_method(n, options))
            for m in names}


def _finite(v: float | np.floating) -> float | None:
    f = float(v)
    return f if np.isfinite(f) else None


def paired_deltas(task: str, y_true: np.ndarray, candidate: Predictions, baseline: Predictions,
                  candidate_eval: Evaluation, baseline_eval: Evaluation, metrics: Iterable[str], *,
                  mask: np.ndarray | None = None, scope: str = "", options: DeltaOptions | None = None,
                  ) -> dict[str, PairedDelta]:
    """``candidate - baseline`` for each metric in ``metrics`` that has a paired method, on the
    rows in ``mask`` (None: all). A delta whose full-data values do not reproduce the
    evaluation's (a label coding that differs between the versions) is dropped rather than
    shown with a wrong interval."""
    options = options or DeltaOptions()
    y = np.asarray(y_true)
    rows = np.flatnonzero(mask) if mask is not None else np.arange(len(y))
    wanted = set(metrics)
    if task == "regression":
        out = _regression(y, candidate, baseline, rows, wanted, scope, options)
    else:
        out = _classification(y, candidate, baseline, candidate_eval, baseline_eval, rows, wanted, scope,
                              options)
    expected_a: Mapping[str, float | None]
    expected_b: Mapping[str, float | None]
    if mask is None:
        expected_a, expected_b = baseline_eval.metrics, candidate_eval.metrics
    else:
        expected_a = baseline_eval.slice_metrics.get(scope, {})
        expected_b = candidate_eval.slice_metrics.get(scope, {})
    checked: dict[str, PairedDelta] = {}
    for m, d in out.items():
        a, b = expected_a.get(m), expected_b.get(m)
        if d.estimate is None or a is None or b is None:
            continue
        if np.isclose(d.estimate, b - a, rtol=1e-9, atol=1e-12):
            checked[m] = d
    return checked
