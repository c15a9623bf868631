"""Evaluation of one model version on the test data named in model.yaml.

Loading (data, model) and predicting are here; scoring is in :mod:`.metrics`.
The model predicts ONCE on the whole test set:

* labels through the pyfunc's ``predict`` (MLflow enforces the signature), except
  for scikit-learn models with a signature, where the columns and types are checked
  here once and the estimator's ``predict`` is called directly (what
  ``mlflow.models.evaluate`` does too; MLflow's schema enforcement on 200k rows
  costs far more than the prediction);
* probabilities, for scikit-learn models, through the underlying estimator's
  ``predict_proba``: the pyfunc wrapper only exposes ``predict``, so, like
  ``mlflow.models.evaluate`` does, the raw model is taken from the pyfunc
  (``PyFuncModel._model_impl.get_raw_model()`` for the ``mlflow.sklearn`` loader
  module). Other flavours get no probabilities, so no ROC AUC or log loss.

Every slice is then a boolean mask over those arrays.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_actions.config.specs import ModelSpec
from mlops_actions.errors import CheckFailed, Location, RegistryError, ValidationError
from mlops_actions.validation.locate import YamlLocator
from mlops_actions.validation.metrics import (
    ClassificationArrays,
    classification_metrics,
    confusion_matrix,
    encode_classification,
    regression_metrics,
)

__all__ = [
    "Evaluation",
    "LoadedModel",
    "ModelFailed",
    "Predictions",
    "TestData",
    "evaluate_predictions",
    "load_model",
    "load_test_data",
    "predict",
    "row_latencies_ms",
]

_NUMERIC_TYPES = {"double", "float", "long", "integer"}


class ModelFailed(CheckFailed):
    """The model raised (or returned garbage) while predicting: the version fails validation."""


@dataclass(frozen=True)
class TestData:
    """The test set: every column (slices may use non-features), the model's input and the label."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    label: str
    path: Path

    @property
    def X(self) -> pd.DataFrame:
        return self.frame.loc[:, list(self.features)]

    @property
    def y(self) -> np.ndarray:
        labels: np.ndarray = self.frame[self.label].to_numpy()
        return labels


@dataclass(frozen=True)
class LoadedModel:
    uri: str
    version: str
    pyfunc: Any
    raw: Any | None  # the underlying scikit-learn estimator, when there is one
    input_names: tuple[str, ...] | None  # from the signature
    input_types: Mapping[str, str] = field(default_factory=dict)

    @property
    def classes(self) -> np.ndarray | None:
        classes = getattr(self.raw, "classes_", None)
        return None if classes is None else np.asarray(classes)

    @property
    def output_schema(self) -> Any | None:
        sig = getattr(getattr(self.pyfunc, "metadata", None), "signature", None)
        return None if sig is None else sig.outputs


@dataclass(frozen=True)
class Predictions:
    y_pred: np.ndarray
    proba: np.ndarray | None
    classes: np.ndarray | None
    batch_seconds: float
    rows: int


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one version on the whole set and on every slice, from one set of predictions."""

    metrics: dict[str, float | None]
    slice_metrics: dict[str, dict[str, float | None]]
    slice_rows: dict[str, int]
    confusion: np.ndarray | None
    labels: tuple[str, ...]
    arrays: ClassificationArrays | None = None


def load_test_data(spec: ModelSpec, model_dir: Path, locator: YamlLocator) -> TestData:
    """Read ``data.test`` (CSV or Parquet, relative to model.yaml's directory) and check its columns."""
    path = (model_dir / spec.data.test).resolve()
    loc = locator.locate("data", "test")
    if not path.is_file():
        raise ValidationError(f"test data {spec.data.test!r} not found (looked for {path})",
                              hint="data.test is relative to the model.yaml directory", location=loc)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt"):
            frame = pd.read_csv(path)
        elif suffix == ".tsv":
            frame = pd.read_csv(path, sep="\t")
        else:
            raise ValidationError(f"test data {spec.data.test!r}: unsupported file type {suffix!r}",
                                  hint="use a .csv or .parquet file", location=loc)
    except ValidationError:
        raise
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except Exception as exc:
        raise ValidationError(f"cannot read test data {path}: {type(exc).__name__}: {exc}",
                              hint="check that the file is valid CSV or Parquet", location=loc) from None
    if len(frame) == 0:
        raise ValidationError(f"test data {spec.data.test!r} is empty (0 rows)",
                              hint="a validation needs labelled rows; check the file", location=loc)
    label = spec.data.label
    if label not in frame.columns:
        raise ValidationError(
            f"label column {label!r} is missing from {spec.data.test!r}",
            hint=f"columns present: {', '.join(map(str, frame.columns))}; fix data.label or the file",
            location=locator.locate("data", "label"))
    if frame[label].isna().any():
        n = int(frame[label].isna().sum())
        raise ValidationError(f"label column {label!r} has {n} empty value(s) in {spec.data.test!r}",
                              hint="drop unlabelled rows from the test set",
                              location=locator.locate("data", "label"))
    if spec.data.features is not None:
        missing = [c for c in spec.data.features if c not in frame.columns]
        if missing:
            raise ValidationError(
                f"feature column(s) {', '.join(map(repr, missing))} missing from {spec.data.test!r}",
                hint=f"columns present: {', '.join(map(str, frame.columns))}",
                location=locator.locate("data", "features"))
        features = tuple(spec.data.features)
    else:
        features = tuple(str(c) for c in frame.columns if c != label)
    return TestData(frame=frame, features=features, label=label, path=path)


def _raw_model(pyfunc: Any) -> Any | None:
    """The estimator under an ``mlflow.sklearn`` pyfunc, as mlflow.models.evaluate extracts it."""
    metadata = getattr(pyfunc, "metadata", None)
    if metadata is None:
        return None
    loader = metadata.flavors.get("python_function", {}).get("loader_module")
    if loader != "mlflow.sklearn":
        return None
    impl = pyfunc._model_impl
    return impl.get_raw_model() if hasattr(impl, "get_raw_model") else getattr(impl, "sklearn_model", impl)


@contextlib.contextmanager
def _mlflow_uris(tracking_uri: str | None, registry_uri: str | None) -> Iterator[None]:
    """Point MLflow's fluent API (which resolves ``models:/``) at the registry in use, then restore."""
    if tracking_uri is None:
        yield
        return
    import mlflow

    old_tracking, old_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_tracking)
        mlflow.set_registry_uri(old_registry)


def load_model(uri: str, version: str, *, tracking_uri: str | None = None,
               registry_uri: str | None = None) -> LoadedModel:
    """``mlflow.pyfunc.load_model(uri)``; RegistryError (exit 3) when MLflow cannot give it.

    ``tracking_uri``/``registry_uri``: the MLflow the version lives in (default: MLflow's own
    resolution, i.e. ``MLFLOW_TRACKING_URI``).
    """
    import mlflow.pyfunc

    try:
        with _mlflow_uris(tracking_uri, registry_uri):
            pyfunc = mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise RegistryError(f"cannot load model version {version} from {uri}: {type(exc).__name__}: {exc}",
                            hint="check MLFLOW_TRACKING_URI and that the version's artifacts exist") from None
    names: tuple[str, ...] | None = None
    types: dict[str, str] = {}
    schema = pyfunc.metadata.get_input_schema()
    if schema is not None and schema.has_input_names():
        names = tuple(schema.input_names())
        for col in schema.inputs:
            t = getattr(col, "type", None)
            types[str(col.name)] = str(getattr(t, "name", t))
    return LoadedModel(uri=uri, version=version, pyfunc=pyfunc, raw=_raw_model(pyfunc),
                       input_names=names, input_types=types)


def model_input(model: LoadedModel, data: TestData, *, spec_location: Location | None = None) -> pd.DataFrame:
    """The frame the model gets: the signature's columns when it has one; checked for bad values."""
    if model.input_names is None:
        return data.X
    missing = [c for c in model.input_names if c not in data.frame.columns]
    if missing:
        raise ValidationError(
            f"test data does not match the signature of version {model.version}: missing column(s) "
            f"{', '.join(map(repr, missing))}",
            hint=f"the model expects {', '.join(model.input_names)}; test data has "
                 f"{', '.join(map(str, data.frame.columns))}",
            location=spec_location)
    frame = data.frame.loc[:, list(model.input_names)]
    for name, typ in model.input_types.items():
        col = frame[name]
        if typ in _NUMERIC_TYPES and not pd.api.types.is_numeric_dtype(col.dtype):
            coerced = pd.to_numeric(col, errors="coerce")
            bad = coerced.isna() & col.notna()
            if bad.any():
                pos = int(np.flatnonzero(bad.to_numpy())[0])
                raise ValidationError(
                    f"column {name!r} must be numeric ({typ}) for version {model.version}, but row "
                    f"{pos + 1} of {data.path.name} holds {col.iloc[pos]!r} ({int(bad.sum())} bad value(s))",
                    hint="clean the test data: numeric columns must hold numbers", location=spec_location)
    return frame


def _as_1d(out: Any, version: str) -> np.ndarray:
    if isinstance(out, pd.DataFrame):
        if out.shape[1] != 1:
            raise ModelFailed(f"version {version} returned {out.shape[1]} output columns; expected one "
                              "prediction per row", hint="log the model with a single output")
        out = out.iloc[:, 0]
    arr = np.asarray(out)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ModelFailed(f"version {version} returned predictions of shape {arr.shape}; expected (rows,)",
                          hint="log the model with a single output")
    return arr


def predict(model: LoadedModel, frame: pd.DataFrame, *, with_proba: bool) -> Predictions:
    """Predict once on the whole frame (labels, and probabilities when the model has them)."""
    start = time.perf_counter()
    try:
        # scikit-learn: the estimator itself, as mlflow.models.evaluate does; the signature was
        # already checked by model_input (MLflow's per-call schema enforcement costs more than
        # the prediction on large sets). Other flavours: the pyfunc, with MLflow's enforcement.
        raw_predict = getattr(model.raw, "predict", None) if model.input_names is not None else None
        out = raw_predict(frame) if raw_predict is not None else model.pyfunc.predict(frame)
        y_pred = _as_1d(out, model.version)
        proba = None
        if with_proba and model.raw is not None and hasattr(model.raw, "predict_proba"):
            proba = np.asarray(model.raw.predict_proba(frame), dtype=np.float64)
    except ModelFailed:
        raise
    except Exception as exc:
        raise ModelFailed(f"version {model.version} raised on predict: {type(exc).__name__}: {exc}",
                          hint="the model cannot score the test data; fix the model (or its input "
                               "schema) before promoting it") from None
    elapsed = time.perf_counter() - start
    if len(y_pred) != len(frame):
        raise ModelFailed(f"version {model.version} returned {len(y_pred)} predictions for {len(frame)} rows",
                          hint="a model must return one prediction per input row")
    return Predictions(y_pred=y_pred, proba=proba, classes=model.classes if proba is not None else None,
                       batch_seconds=elapsed, rows=len(frame))


def row_latencies_ms(model: LoadedModel, frame: pd.DataFrame, rows: int) -> np.ndarray:
    """Milliseconds for single-row predicts of the first ``rows`` rows (what serving pays per request)."""
    n = min(rows, len(frame))
    out = np.empty(n)
    if n:
        with contextlib.suppress(Exception):  # warm-up; the timed loop below reports failures
            model.pyfunc.predict(frame.iloc[:1])
    for i in range(n):
        row = frame.iloc[i:i + 1]
        start = time.perf_counter()
        try:
            model.pyfunc.predict(row)
        except Exception as exc:
            raise ModelFailed(f"version {model.version} raised on a single-row predict: "
                              f"{type(exc).__name__}: {exc}") from None
        out[i] = (time.perf_counter() - start) * 1000.0
    return out


def evaluate_predictions(task: str, y_true: np.ndarray, preds: Predictions,
                         masks: Mapping[str, np.ndarray]) -> Evaluation:
    """Metrics on the whole set and on each slice mask, from the same arrays."""
    if task == "regression":
        try:
            y = np.asarray(y_true, dtype=np.float64)
            p = np.asarray(preds.y_pred, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"regression needs numeric labels and predictions: {exc}",
                                  hint="check the label column's values") from None
        metrics = regression_metrics(y, p)
        slices = {name: regression_metrics(y, p, m) for name, m in masks.items()}
        return Evaluation(metrics=metrics, slice_metrics=slices,
                          slice_rows={k: int(m.sum()) for k, m in masks.items()}, confusion=None, labels=())
    arrays = encode_classification(np.asarray(y_true), preds.y_pred, preds.proba, preds.classes,
                                   binary=task == "binary_classification")
    if task == "binary_classification" and len(arrays.labels) > 2:
        raise ValidationError(
            f"binary_classification, but labels and predictions hold {len(arrays.labels)} classes: "
            f"{', '.join(map(str, arrays.labels[:10]))}",
            hint="set task: multiclass_classification in model.yaml, or fix the label column")
    metrics = classification_metrics(arrays)
    slices = {name: classification_metrics(arrays, m) for name, m in masks.items()}
    cm = confusion_matrix(arrays.y_true, arrays.y_pred, len(arrays.labels))
    return Evaluation(metrics=metrics, slice_metrics=slices,
                      slice_rows={k: int(m.sum()) for k, m in masks.items()}, confusion=cm,
                      labels=tuple(str(x) for x in arrays.labels), arrays=arrays)
