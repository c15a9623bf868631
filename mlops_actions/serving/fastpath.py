"""The single-request fast path: a model's signature compiled once, the flavour's model called directly.

``mlflow.pyfunc``'s ``predict`` enforces the input schema column by column on every
call (``mlflow.models.utils._enforce_schema``): on a one-row request that costs as
much as the model's own ``predict``. Here the signature is read once, at load, and a
request's rows are checked and converted with C-level numpy calls into the array
that enforcement would have produced; the flavour's own model (for scikit-learn the
estimator ``PyFuncModel.get_raw_model()`` returns, and the method the model was
logged with, ``pyfunc_predict_fn``) predicts on it.

Only inputs whose answer is certain take this path; everything else goes to
``pyfunc.predict`` as before, so MLflow's semantics (and its error messages) stay the
reference by construction:

- handled: scikit-learn models with no signature (pyfunc passes the frame as is), or a
  signature of named, required columns that are all ``double`` or all ``long``;
- a request is converted when every cell is a float or an int: floats and mixed
  int/float columns become float64 for ``double`` columns; a column of ints only is
  accepted for ``double`` only when every value is 0 or 1 (MLflow refuses any other
  int64 -> float64 conversion) and is int64 for ``long``; extra columns are dropped and
  the columns reordered to the signature's order, as enforcement does;
- anything else (text, booleans, null, nested values, missing or repeated columns, ints
  beyond int64, another flavour or column type) goes to ``pyfunc.predict``, which
  answers it or raises what it always raised.

``tests/serving/test_fastpath.py`` checks the two paths give the same predictions, or
fail alike, on the same requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from mlops_actions.serving.compiled import Compiled, compile_estimator

__all__ = ["FastPath", "compile_fast_path"]

#: pyfunc predict functions MLflow's scikit-learn wrapper exposes (``_SklearnModelWrapper``)
_SKLEARN_PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


@dataclass(frozen=True)
class FastPath:
    """A model's compiled signature and its flavour's predict function."""

    #: the flavour's own predict (e.g. ``Pipeline.predict``), called with a DataFrame
    predict: Callable[[pd.DataFrame], Any]
    #: the signature's column names in order; None when the model has no signature
    names: tuple[str, ...] | None
    #: the dtype every signature column converts to (float64 for ``double``, int64 for ``long``)
    dtype: type[np.generic] = np.float64
    #: the model compiled to numpy calls (:mod:`.compiled`), when it could be
    compiled: Compiled | None = None
    #: ``names`` as an object Index, built once: scikit-learn's feature-name check reads it without
    #: the per-call conversion a pandas string Index needs
    _columns: pd.Index | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        columns = pd.Index(list(self.names), dtype=object) if self.names is not None else None
        object.__setattr__(self, "_columns", columns)

    def array(self, columns: tuple[str, ...] | None, rows: list[list[Any]]) -> np.ndarray | None:
        """The request as the (rows x signature columns) array schema enforcement would
        produce, or None when only ``pyfunc.predict`` can say what it does with it."""
        names = self.names
        if names is None or not rows:
            return None
        width = len(rows[0])
        index: list[int] | None = None
        if columns is None:  # bare rows: the gateway names them with the signature's columns
            if width != len(names):
                return None
        elif columns != names:
            position = {c: i for i, c in enumerate(columns)}
            if len(position) != len(columns) or len(columns) != width:
                return None
            try:
                index = [position[n] for n in names]
            except KeyError:  # missing column: pyfunc's own error
                return None
        kinds = set(map(type, chain.from_iterable(rows)))
        if not kinds <= {float, int}:
            return None  # text, bool, null, nested values: pyfunc decides
        try:
            if int in kinds:
                return self._with_ints(rows, width, index)
            if self.dtype is not np.float64:
                return None  # floats in a long column: MLflow refuses (its message)
            values = np.array(rows, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):  # ragged rows: pyfunc's own error
            return None
        if values.ndim != 2 or values.shape[1] != width:
            return None
        return values if index is None else values[:, index]

    def _with_ints(self, rows: list[list[Any]], width: int, index: list[int] | None) -> np.ndarray | None:
        """Rows with some ints, column by column as pandas infers them and MLflow converts."""
        cells = np.array(rows, dtype=object)
        if cells.ndim != 2 or cells.shape[1] != width:
            return None
        is_int = np.frompyfunc(_is_int, 1, 1)(cells).astype(bool)
        if self.dtype is np.int64:
            if not is_int.all():
                return None  # a float in a long column: MLflow refuses
            as_ints = cells if index is None else cells[:, index]
            if any(v > _INT64_MAX or v < _INT64_MIN for v in as_ints.flat):
                return None
            return as_ints.astype(np.int64)
        order = index if index is not None else range(cells.shape[1])
        out = np.empty((cells.shape[0], len(order)), dtype=np.float64)
        for j, source in enumerate(order):
            column = cells[:, source]
            ints = is_int[:, source]
            if ints.any():
                whole = column[ints]
                if any(v > _INT64_MAX or v < _INT64_MIN for v in whole):
                    return None  # pandas keeps such a column as objects
                if ints.all() and not all(v == 0 or v == 1 for v in whole):
                    return None  # int64 -> float64 only for 0/1: MLflow's error
            out[:, j] = column.astype(np.float64)
        return out

    def run(self, arrays: Sequence[np.ndarray]) -> Any:
        """The model's answer for the converted requests, predicted together: by the compiled
        model when there is one and it takes the batch, else by the flavour's predict."""
        values = _stacked(arrays)
        out = self.compiled(values) if self.compiled is not None else None
        return out if out is not None else self.predict(self.frame(values))

    def run_compiled(self, arrays: Sequence[np.ndarray]) -> np.ndarray | None:
        """The compiled model's answer for the converted requests, or None when there is no
        compiled model or it leaves this batch to the flavour's predict."""
        return self.compiled(_stacked(arrays)) if self.compiled is not None else None

    def frame(self, values: np.ndarray) -> pd.DataFrame:
        """The converted requests as one DataFrame, laid out as schema enforcement lays it out
        (one column-major block), so the model sees the same memory order and gives the same
        floating-point results."""
        assert self.names is not None
        block = np.ascontiguousarray(values.T)  # (columns x rows), as pandas consolidates columns
        return pd.DataFrame(block.T, columns=self._columns, copy=False)


def _stacked(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _is_int(value: Any) -> bool:
    return type(value) is int


def compile_fast_path(model: Any) -> FastPath | None:
    """The fast path of a loaded ``PyFuncModel``, or None when its flavour, predict function or
    signature is not one handled here (the model is then served by ``pyfunc.predict``)."""
    try:
        meta = model.metadata
        pyfunc_conf = meta.flavors.get("python_function") or {}
        if pyfunc_conf.get("loader_module") != "mlflow.sklearn":
            return None
        predict_fn = pyfunc_conf.get("predict_fn", "predict")
        if predict_fn not in _SKLEARN_PREDICT_FNS:
            return None
        if meta._is_signature_from_type_hint() or meta._is_type_hint_from_example():
            return None
        raw = model.get_raw_model()
        predict = getattr(raw, predict_fn, None)
        schema = meta.get_input_schema()
    except Exception:  # an MLflow without these: pyfunc.predict serves it
        return None
    if predict is None:
        return None
    if schema is None:
        return FastPath(predict=predict, names=None)
    if not schema.has_input_names() or schema.is_tensor_spec():
        return None
    specs = list(schema.inputs)
    if not specs or any(not getattr(spec, "required", True) for spec in specs):
        return None
    types = {str(getattr(spec.type, "name", spec.type)) for spec in specs}
    if types == {"double"}:
        dtype: type[np.generic] = np.float64
    elif types == {"long"}:
        dtype = np.int64
    else:
        return None
    fast = FastPath(predict=predict, names=tuple(str(spec.name) for spec in specs), dtype=dtype)
    if dtype is not np.float64:
        return fast
    compiled = compile_estimator(raw, predict_fn, fast.names or (),
                                 reference=lambda values: predict(fast.frame(values)))
    return replace(fast, compiled=compiled) if compiled is not None else fast
