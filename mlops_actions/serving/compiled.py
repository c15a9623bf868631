"""Scikit-learn models compiled to a few numpy calls, checked bit for bit against the model at load.

On one row a 200-tree random forest spends almost all its ``predict`` in per-tree Python
(input validation and a joblib dispatch per tree: ~8 ms here for ~50 µs of arithmetic),
and a scaler + logistic-regression pipeline spends most of its ``predict`` validating a
DataFrame twice. The gateway already holds each request as a float64 array of the
signature's columns (:mod:`.fastpath`), so for the models below it computes what
scikit-learn computes, in the same order of floating-point operations:

- tree ensembles (``DecisionTree*``, ``RandomForest*``, ``ExtraTrees*``; one output):
  every tree walked at once, one vectorised step per level, on the input cast to
  float32 as scikit-learn casts it; the trees' leaf values summed in tree order (a
  cumulative sum: ``np.add.reduce`` sums pairwise when there is one row and one
  output) and divided by the number of trees, as ``_accumulate_prediction`` does;
- ``StandardScaler`` steps, then a linear model's ``predict`` (``X @ coef_.T +
  intercept_`` on an array laid out as scikit-learn's own validation lays it out, so
  BLAS sums in the same order), inside a ``Pipeline`` or alone.

A model is compiled only when it is one of these exact classes (a subclass may override
what is computed here), its fitted feature names are the signature's,
and the compiled function gives byte-identical answers to the model's own method on
probe batches of 1 to 200 rows built from the model's thresholds and scales; anything
else, or a batch holding a value that is not finite (scikit-learn's own error or
missing-value rules then apply), is predicted by scikit-learn as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Compiled", "compile_estimator"]

#: above this many rows a batch goes to scikit-learn: its per-tree Cython loops catch up
#: with the vectorised walk at a few hundred rows (measured on a 200-tree forest)
MAX_ROWS = 256
_PROBE_SIZES = (1, 2, 7, 32, 200)
#: the longest a batch may hold the gateway's event loop (every other request waits meanwhile);
#: a thread hand-off costs ~50-100 µs, a one-row forest of 200 trees ~50 µs
INLINE_SECONDS = 0.0005

ArrayFn = Callable[[np.ndarray], "np.ndarray | None"]


@dataclass(frozen=True)
class Compiled:
    """A model's ``predict`` (or ``predict_proba``) as numpy calls on a float64 array of its
    input columns; returns None when scikit-learn must answer (a value that is not finite)."""

    run: ArrayFn
    #: what it compiles, for the log
    kind: str
    max_rows: int = MAX_ROWS
    #: seconds per row, measured on the largest probe batch at load
    row_seconds: float = 0.0

    def __call__(self, values: np.ndarray) -> np.ndarray | None:
        if len(values) > self.max_rows:
            return None
        return self.run(values)

    def quick(self, rows: int) -> bool:
        """Whether ``rows`` rows take under ``INLINE_SECONDS`` (by the timing at load), so the
        gateway may predict them on its event loop instead of handing them to a thread."""
        return rows <= self.max_rows and rows * self.row_seconds <= INLINE_SECONDS


def compile_estimator(
    estimator: Any,
    method: str,
    names: Sequence[str],
    reference: Callable[[np.ndarray], Any],
) -> Compiled | None:
    """``estimator.<method>`` compiled, or None when it is not one handled here or the compiled
    function does not answer exactly as ``reference`` (the model's own method on a batch laid out
    as the gateway lays it out) on probe batches."""
    try:
        built = _build(estimator, method, tuple(names))
    except (AttributeError, TypeError, ValueError, ImportError):
        return None
    if built is None:
        return None
    run, kind, probes = built
    rng = np.random.default_rng(0)
    row_seconds = 0.0
    try:
        for size in _PROBE_SIZES:
            batch = probes(rng, size)
            started = time.perf_counter()
            ours = run(batch)
            row_seconds = (time.perf_counter() - started) / size
            theirs = np.asarray(reference(batch))
            if ours is None or ours.dtype != theirs.dtype or not np.array_equal(ours, theirs):
                return None
    except Exception:  # the reference refused a probe: leave the model to scikit-learn
        return None
    return Compiled(run=run, kind=kind, row_seconds=row_seconds)


Probes = Callable[[np.random.Generator, int], np.ndarray]


def _build(estimator: Any, method: str, names: tuple[str, ...]) -> tuple[ArrayFn, str, Probes] | None:
    from sklearn.pipeline import Pipeline

    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is None or tuple(map(str, fitted_names)) != names:
        return None  # fitted without names, or others: scikit-learn's own check and warning
    if type(estimator) is Pipeline:
        if method != "predict":  # the exact class: its predict chains transform and predict
            return None
        steps = [step for _, step in estimator.steps if step is not None and step != "passthrough"]
        if not steps:
            return None
        *transforms, final = steps
    else:
        transforms, final = [], estimator
    scalers = [_scaler(step) for step in transforms]
    if any(s is None for s in scalers):
        return None
    trees = _trees(final, method)
    if trees is not None:
        if scalers:
            return None  # a scaler before trees: rare, left to scikit-learn
        return trees.run, f"{type(final).__name__}.{method} ({trees.n_trees} trees)", trees.probes
    linear = _linear(final, method)
    if linear is None:
        return None
    chain = [s for s in scalers if s is not None]

    def run(values: np.ndarray) -> np.ndarray | None:
        if not np.isfinite(values).all():
            return None
        # a copy (the steps work in place), laid out as scikit-learn's validation lays out a
        # frame of one float64 block: column-major
        x = np.array(values.T, order="C", copy=True).T
        for mean, scale in chain:
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
            if not np.isfinite(x).all():
                return None  # an overflow: scikit-learn's "Input X contains infinity"
        return linear(x)

    def probes(rng: np.random.Generator, size: int) -> np.ndarray:
        centre = np.zeros(len(names))
        spread = np.ones(len(names))
        if chain:
            mean, scale = chain[0]
            centre = mean if mean is not None else centre
            spread = scale if scale is not None else spread
        return centre + spread * rng.normal(0.0, 1.5, (size, len(names)))

    label = " + ".join([*("StandardScaler" for _ in chain), f"{type(final).__name__}.{method}"])
    return run, label, probes


def _scaler(step: Any) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    from sklearn.preprocessing import StandardScaler

    if type(step) is not StandardScaler:
        return None
    if getattr(step, "_sklearn_output_config", {}).get("transform", "default") != "default":
        return None
    mean = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
    scale = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
    return mean, scale


def _linear(model: Any, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """``predict`` of a linear classifier (scikit-learn's ``LinearClassifierMixin``) or regressor
    (``LinearModel._decision_function``): the exact classes listed, whose ``predict`` is those."""
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.svm import LinearSVC

    classifier = type(model) in (LogisticRegression, LinearSVC)
    regressor = type(model) in (LinearRegression, Ridge, Lasso, ElasticNet)
    if method != "predict" or not (classifier or regressor):
        return None
    coef = np.asarray(model.coef_)
    intercept = model.intercept_
    if coef.dtype != np.float64:
        return None
    if classifier:
        classes = np.asarray(model.classes_)
        coef_t = coef.T if coef.ndim == 2 else coef

        def classify(x: np.ndarray) -> np.ndarray:
            scores = x @ coef_t + intercept
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores.reshape(-1)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            out: np.ndarray = classes.take(indices, axis=0)
            return out

        return classify
    weights = coef if coef.ndim == 1 else coef.T

    def regress(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x @ weights + intercept
        return out

    return regress


@dataclass(frozen=True)
class _Forest:
    """Every tree's nodes in flat arrays (leaves point to themselves), walked level by level."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    #: per node, the output the tree's own predict gives for a row ending there
    value: np.ndarray
    roots: np.ndarray
    depth: int
    n_features: int
    #: the classes (a classifier), None for a regressor
    classes: np.ndarray | None
    #: a classifier's predict_proba rather than its predict
    proba: bool
    #: a forest averages its trees; a lone tree returns its leaf's value as is
    averaged: bool

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def run(self, values: np.ndarray) -> np.ndarray | None:
        x32 = values.astype(np.float32)  # what scikit-learn's validation gives a tree
        if not np.isfinite(x32).all():
            return None  # NaN (missing-value rules) or beyond float32: scikit-learn decides
        n = len(x32)
        flat = x32.astype(np.float64).ravel()  # float32 compared with a float64 threshold, as in C
        base = (np.arange(n, dtype=np.intp) * self.n_features)[:, None]
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        for _ in range(self.depth):
            go_left = flat[base + self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        leaves = self.value[node.T]  # (trees, rows, outputs)
        if self.averaged:
            total = np.cumsum(leaves, axis=0)[-1] + 0.0  # 0.0 + v0 + v1 + ... in tree order
            total /= len(self.roots)
        else:
            total = leaves[0]
        if self.classes is None:
            out: np.ndarray = total[:, 0]
            return out
        if self.proba:
            proba: np.ndarray = total
            return proba
        labels: np.ndarray = self.classes.take(np.argmax(total, axis=1), axis=0)
        return labels

    def probes(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Rows whose values sit on, just below and just above the trees' thresholds (in float32,
        where scikit-learn compares), so every kind of branch is taken."""
        out = np.empty((size, self.n_features))
        splits = (self.left != np.arange(len(self.left))) & np.isfinite(self.threshold)
        for j in range(self.n_features):
            cuts = self.threshold[splits & (self.feature == j)]
            if not len(cuts):
                out[:, j] = rng.normal(size=size)
                continue
            picked = rng.choice(cuts, size=size).astype(np.float32)
            nudge = rng.integers(-1, 2, size=size).astype(np.float32)
            out[:, j] = np.nextafter(picked, picked + nudge).astype(np.float64)
        return out


def _trees(model: Any, method: str) -> _Forest | None:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import (
        DecisionTreeClassifier,
        DecisionTreeRegressor,
        ExtraTreeClassifier,
        ExtraTreeRegressor,
    )

    cls = type(model)
    classifier = cls in (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)
    if not classifier and cls not in (RandomForestRegressor, ExtraTreesRegressor, DecisionTreeRegressor):
        return None
    if method not in (("predict", "predict_proba") if classifier else ("predict",)):
        return None
    if getattr(model, "n_outputs_", 1) != 1:
        return None
    averaged = cls not in (DecisionTreeClassifier, DecisionTreeRegressor)
    if averaged:
        members = list(model.estimators_)
        allowed = (DecisionTreeClassifier, ExtraTreeClassifier) if classifier \
            else (DecisionTreeRegressor, ExtraTreeRegressor)
        if not members or any(type(m) not in allowed for m in members):
            return None
    else:
        members = [model]
    n_classes = int(model.n_classes_) if classifier else 1
    trees = [m.tree_ for m in members]
    sizes = [t.node_count for t in trees]
    offsets = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
    own = [np.arange(size, dtype=np.intp) for size in sizes]
    left = np.concatenate([np.where(t.children_left < 0, i, t.children_left) + o
                           for t, i, o in zip(trees, own, offsets, strict=True)])
    right = np.concatenate([np.where(t.children_right < 0, i, t.children_right) + o
                            for t, i, o in zip(trees, own, offsets, strict=True)])
    width = n_classes if classifier else 1
    return _Forest(
        feature=np.concatenate([np.maximum(t.feature, 0) for t in trees]).astype(np.intp),
        threshold=np.concatenate([t.threshold for t in trees]).astype(np.float64),
        left=left.astype(np.intp),
        right=right.astype(np.intp),
        value=np.concatenate([t.value[:, 0, :width] for t in trees]).astype(np.float64),
        roots=offsets,
        depth=max(t.max_depth for t in trees),
        n_features=int(model.n_features_in_),
        classes=np.asarray(model.classes_) if classifier else None,
        proba=method == "predict_proba",
        averaged=averaged,
    )
