"""The fast path answers like ``mlflow.pyfunc.load_model(...).predict``: same predictions, or an
error the gateway answers alike (400 for the signature or the input, 500 for the model).

The reference is what the gateway did before the fast path: ``pyfunc.predict`` on the DataFrame
built from the request's rows (``batching._frame``)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_actions.serving.batching import _frame, _predict_batch, predict_one
from mlops_actions.serving.protocol import ParsedInput, input_mismatch, input_problem, to_row_outputs
from mlops_actions.serving.pyfunc import PyfuncBackend

pytestmark = pytest.mark.filterwarnings("ignore")


def _save(path: Path, model: Any, X: pd.DataFrame | None, **kwargs: Any) -> Any:
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(X, model.predict(X)) if X is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            model, str(path), signature=signature, serialization_format="cloudpickle", **kwargs
        )
        return mlflow.pyfunc.load_model(str(path))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer(as_frame=True)
    X = bc.frame[bc.feature_names].iloc[:, :4].copy()
    X.columns = ["a", "b", "c", "d"]
    X["y"] = bc.target
    return X


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    root = tmp_path_factory.mktemp("fastpath-models")
    X, y = data[["a", "b", "c", "d"]], data["y"]
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    imputing = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    X_long = (X * 10).round().astype(np.int64)
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X_long, y)
    X_text = X.assign(kind=np.where(X["a"] > 14, "big", "small"))
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    with_gaps = X.mask(np.random.default_rng(0).random(X.shape) < 0.1)  # trees learn where NaN goes
    gappy_forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(with_gaps, y)
    regressor = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y * 10.0 + X["a"])
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    mixed = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["kind"]), remainder="passthrough"),
        LogisticRegression(max_iter=2000),
    ).fit(X_text, y)
    return {
        "double": _save(root / "double", linear, X),
        "double_proba": _save(root / "proba", linear, X, pyfunc_predict_fn="predict_proba"),
        "imputing": _save(root / "imputing", imputing, X),
        "long": _save(root / "long", tree, X_long),
        "unsigned": _save(root / "unsigned", linear, None),
        "mixed": _save(root / "mixed", mixed, X_text),
        "forest": _save(root / "forest", forest, X),
        "forest_proba": _save(root / "forest_proba", forest, X, pyfunc_predict_fn="predict_proba"),
        "gappy_forest": _save(root / "gappy_forest", gappy_forest, X),
        "regressor": _save(root / "regressor", regressor, X),
    }

#: models the gateway predicts with numpy calls (:mod:`mlops_actions.serving.compiled`)
COMPILED = {"double", "forest", "forest_proba", "gappy_forest", "regressor"}


def _reference(model: Any, backend: PyfuncBackend, parsed: ParsedInput) -> Any:
    """What pyfunc answers: the outputs, or how the gateway answers its exception."""
    try:
        return to_row_outputs(model.predict(_frame(parsed.columns, parsed.rows, backend)), parsed.n_rows)
    except Exception as exc:
        return _answer(exc, parsed)


def _answer(exc: BaseException, parsed: ParsedInput) -> str:
    if input_mismatch(exc) is not None:
        return "400 signature"
    if input_problem(parsed, exc) is not None:
        return "400 input"
    return "500"


def _fast(backend: PyfuncBackend, parsed: ParsedInput) -> Any:
    try:
        return predict_one(backend, parsed)
    except Exception as exc:
        return _answer(exc, parsed)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))


def _same_value(x: Any, y: Any) -> bool:
    if isinstance(x, list):
        return isinstance(y, list) and _same(x, y)
    if isinstance(x, float) and math.isnan(x):
        return isinstance(y, float) and math.isnan(y)
    return bool(x == y) and type(x) is type(y)  # exact: same floats to the last bit


COLS = ("a", "b", "c", "d")


def _cases(data: pd.DataFrame, ints: bool = False) -> dict[str, ParsedInput]:
    X = data[list(COLS)]
    rows = ((X * 10).round().astype(int) if ints else X).values.tolist()
    row = rows[0]
    x = 17 if not ints else 17.5  # the "other" numeric type for this schema
    return {
        "one row": ParsedInput(COLS, [row]),
        "many rows": ParsedInput(COLS, rows),
        "a batch the compiled model takes": ParsedInput(COLS, rows[:200]),
        "ints for the other type": ParsedInput(COLS, [[17, 10, 100, 1000]]),
        "other type in one column": ParsedInput(COLS, [[x, *row[1:]]]),
        "0/1 ints": ParsedInput(COLS, [[1, 0, 1, 1], [0, 0, 1, 0]]),
        "mixed ints and floats in a column": ParsedInput(COLS, [[17, *row[1:]], [17.5, *row[1:]]]),
        "numeric text": ParsedInput(COLS, [["17.5", *row[1:]]]),
        "text": ParsedInput(COLS, [["abc", *row[1:]]]),
        "null": ParsedInput(COLS, [[None, *row[1:]]]),
        "null in two rows": ParsedInput(COLS, [[None, *row[1:]], row]),
        "NaN": ParsedInput(COLS, [[float("nan"), *row[1:]]]),
        "infinity": ParsedInput(COLS, [[float("inf"), *row[1:]]]),
        "boolean": ParsedInput(COLS, [[True, *row[1:]]]),
        "missing column": ParsedInput(COLS[:3], [row[:3]]),
        "extra column": ParsedInput((*COLS, "e"), [[*row, 5.0]]),
        "other order": ParsedInput(COLS[::-1], [row[::-1]]),
        "other order, many rows": ParsedInput(COLS[::-1], [r[::-1] for r in rows[:50]]),
        "repeated column": ParsedInput(("a", "a", "c", "d"), [row]),
        "list in a cell": ParsedInput(COLS, [[[1.0], *row[1:]]]),
        "object in a cell": ParsedInput(COLS, [[{"x": 1}, *row[1:]]]),
        "int beyond int64": ParsedInput(COLS, [[2**70, *row[1:]]]),
        "bare rows": ParsedInput(None, [row]),
        "bare rows, too few values": ParsedInput(None, [row[:3]]),
    }


@pytest.mark.parametrize(
    "name", ["double", "double_proba", "imputing", "unsigned", "long", *sorted(COMPILED - {"double"})]
)
def test_fast_path_answers_like_pyfunc(models: dict[str, Any], data: pd.DataFrame, name: str) -> None:
    model = models[name]
    backend = PyfuncBackend(f"models:/{name}/1", model)
    assert backend.fast is not None, "the scikit-learn flavour must take the fast path"
    assert (backend.fast.compiled is not None) == (name in COMPILED), backend.fast.compiled
    for case, parsed in _cases(data, ints=name == "long").items():
        expected, got = _reference(model, backend, parsed), _fast(backend, parsed)
        assert _same(expected, got), f"{name}, {case}: pyfunc {expected!r:.200} vs fast {got!r:.200}"


def test_the_common_requests_skip_pyfunc(
    models: dict[str, Any], data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Well-formed requests never reach pyfunc's predict (its schema enforcement is the cost)."""
    backend = PyfuncBackend("models:/imputing/1", models["imputing"])
    monkeypatch.setattr(backend, "_predict", lambda frame: pytest.fail("pyfunc.predict was called"))
    cases = _cases(data)
    for case in (
        "one row",
        "many rows",
        "0/1 ints",
        "mixed ints and floats in a column",
        "NaN",
        "extra column",
        "other order",
        "other order, many rows",
        "bare rows",
    ):
        predict_one(backend, cases[case])


def test_a_batch_answers_each_request_as_alone(models: dict[str, Any], data: pd.DataFrame) -> None:
    """Stacked requests: each gets what pyfunc gives it alone (a request of ints only fails
    alone even when stacked with floats, which would make its column float64)."""
    for name in ("double", "imputing"):
        model = models[name]
        backend = PyfuncBackend(f"models:/{name}/1", model)
        items = list(_cases(data).values())
        same_columns = [p for p in items if p.columns == COLS]
        for batch in (items, same_columns):
            results = _predict_batch(backend, batch)
            for parsed, result in zip(batch, results, strict=True):
                got = _answer(result, parsed) if isinstance(result, BaseException) else result
                assert _same(_reference(model, backend, parsed), got), (name, parsed)


def test_other_schemas_are_served_by_pyfunc(models: dict[str, Any], data: pd.DataFrame) -> None:
    """A text column in the signature: no compiled fast path, pyfunc's predictions as before."""
    model = models["mixed"]
    backend = PyfuncBackend("models:/mixed/1", model)
    assert backend.fast is None
    X = data[list(COLS)].assign(kind=np.where(data["a"] > 14, "big", "small"))
    parsed = ParsedInput(tuple(X.columns), X.values.tolist()[:20])
    assert (
        predict_one(backend, parsed) == model.predict(pd.DataFrame(parsed.rows, columns=X.columns)).tolist()
    )


def test_layout_matches_schema_enforcement(models: dict[str, Any], data: pd.DataFrame) -> None:
    """Probabilities equal to the last bit on every row: the frame has the memory layout that
    schema enforcement produces (a row-major array would change BLAS's summation order)."""
    model = models["double_proba"]
    backend = PyfuncBackend("models:/double_proba/1", model)
    rows = data[list(COLS)].values.tolist()
    expected = model.predict(pd.DataFrame(rows, columns=list(COLS)))
    got = np.array(predict_one(backend, ParsedInput(COLS, rows)))
    assert np.array_equal(expected, got)


def test_the_gateway_freezes_the_loaded_heap() -> None:
    """After start the objects alive (MLflow, the models) are out of the collector's reach, so a
    full collection does not walk them while requests wait (the p99 stalls)."""
    import asyncio
    import gc

    from mlops_actions.serving.gateway import Gateway, GatewayConfig

    gc.unfreeze()
    gateway = Gateway(GatewayConfig(environment="t", state_dir=Path("."), token="x"))
    try:
        asyncio.run(gateway.start())
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        gateway.executor.shutdown()
