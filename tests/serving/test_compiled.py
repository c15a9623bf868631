"""Compiled scikit-learn models answer byte for byte as the models' own methods, and anything they
cannot answer exactly is left to scikit-learn."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_actions.serving.compiled import MAX_ROWS, compile_estimator
from mlops_actions.serving.fastpath import FastPath

pytestmark = pytest.mark.filterwarnings("ignore")


def _datasets() -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

    out = {}
    for name, loader in (("binary", load_breast_cancer), ("multiclass", load_iris),
                         ("regression", load_diabetes)):
        bunch = loader(as_frame=True)
        X = bunch.frame[bunch.feature_names].copy()
        X.columns = [f"f{i}" for i in range(X.shape[1])]
        out[name] = (X, bunch.target)
    return out


DATA = _datasets()


def _models() -> dict[str, tuple[str, Callable[[], Any], str]]:
    from sklearn import ensemble, linear_model, tree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def scaled(model: Any, **scaler: Any) -> Callable[[], Any]:
        return lambda: make_pipeline(StandardScaler(**scaler), model)

    seeded = {"random_state": 0}
    return {
        "forest": ("binary", partial(ensemble.RandomForestClassifier, n_estimators=50, **seeded), "predict"),
        "forest proba": ("binary", partial(ensemble.RandomForestClassifier, n_estimators=50, **seeded),
                         "predict_proba"),
        "forest, 3 classes": ("multiclass", partial(ensemble.RandomForestClassifier, n_estimators=40),
                              "predict_proba"),
        "extra trees": ("multiclass", partial(ensemble.ExtraTreesClassifier, n_estimators=30, **seeded),
                        "predict"),
        "forest regressor": ("regression", partial(ensemble.RandomForestRegressor, n_estimators=30, **seeded),
                             "predict"),
        "extra trees regressor": ("regression", partial(ensemble.ExtraTreesRegressor, n_estimators=30),
                                  "predict"),
        "tree": ("multiclass", partial(tree.DecisionTreeClassifier, **seeded), "predict_proba"),
        "tree regressor": ("regression", partial(tree.DecisionTreeRegressor, max_depth=6), "predict"),
        "scaled logistic": ("binary", scaled(linear_model.LogisticRegression(max_iter=5000)), "predict"),
        "scaled logistic, 3 classes": ("multiclass", scaled(linear_model.LogisticRegression()), "predict"),
        "logistic": ("multiclass", partial(linear_model.LogisticRegression, max_iter=5000), "predict"),
        "scaled without mean": ("regression", scaled(linear_model.Ridge(), with_mean=False), "predict"),
        "linear regression": ("regression", linear_model.LinearRegression, "predict"),
    }


def _fit(kind: str, make: Callable[[], Any]) -> tuple[Any, pd.DataFrame]:
    X, y = DATA[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make().fit(X, y), X


def _compile(model: Any, X: pd.DataFrame, method: str) -> tuple[Any, FastPath]:
    fast = FastPath(predict=getattr(model, method), names=tuple(X.columns))
    compiled = compile_estimator(model, method, fast.names or (), lambda v: fast.predict(fast.frame(v)))
    return compiled, fast


def _batches(X: pd.DataFrame, rng: np.random.Generator) -> list[np.ndarray]:
    """Rows of the data, the data perturbed, and values far outside it, in batches of 1 to 256."""
    values = X.to_numpy(dtype=np.float64)
    out = []
    for size in (1, 1, 2, 3, 16, 64, 200, MAX_ROWS):
        rows = values[rng.integers(0, len(values), size)]
        out.append(rows)
        out.append(rows * rng.normal(1.0, 0.05, rows.shape))
        out.append(rows * rng.choice([-100.0, 0.0, 1e6], rows.shape))
    return out


@pytest.mark.parametrize("name", list(_models()))
def test_compiled_answers_byte_for_byte(name: str) -> None:
    kind, make, method = _models()[name]
    model, X = _fit(kind, make)
    compiled, fast = _compile(model, X, method)
    assert compiled is not None, f"{name} should compile"
    rng = np.random.default_rng(7)
    for batch in _batches(X, rng):
        ours = compiled(batch)
        theirs = getattr(model, method)(fast.frame(batch))
        assert ours is not None
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs), f"{name}, {len(batch)} rows: {np.abs(ours - theirs).max()}"


def test_a_forest_is_much_faster_on_one_row() -> None:
    """The reason it exists: one row through a 200-tree forest without per-tree Python."""
    import time

    from sklearn.ensemble import RandomForestClassifier

    model, X = _fit("binary", lambda: RandomForestClassifier(n_estimators=200, random_state=0))
    compiled, fast = _compile(model, X, "predict")
    one = X.to_numpy()[:1]
    frame = fast.frame(one)

    def best(call: Callable[[], Any]) -> float:
        times = []
        for _ in range(15):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return min(times)

    assert best(lambda: compiled(one)) * 10 < best(lambda: model.predict(frame))


def test_what_is_not_compiled() -> None:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    class Tweaked(RandomForestClassifier):
        def predict_proba(self, X: Any) -> Any:
            return super().predict_proba(X) ** 2

    X, y = DATA["binary"]
    cases = {
        "another estimator": (GradientBoostingClassifier(n_estimators=5), "predict"),
        "a subclass overriding predict_proba": (Tweaked(n_estimators=5, random_state=0), "predict"),
        "a step not handled": (make_pipeline(SimpleImputer(), LogisticRegression(max_iter=5000)), "predict"),
        "a method not handled": (make_pipeline(StandardScaler(), LogisticRegression()), "predict_proba"),
    }
    for case, (model, method) in cases.items():
        model.fit(X, y)
        assert _compile(model, X, method)[0] is None, case
    # fitted without feature names, or with others than the signature's
    bare = RandomForestClassifier(n_estimators=5, random_state=0).fit(X.to_numpy(), y)
    assert _compile(bare, X, "predict")[0] is None
    renamed = RandomForestClassifier(n_estimators=5, random_state=0).fit(X.add_prefix("x"), y)
    assert _compile(renamed, X, "predict")[0] is None
    # two outputs
    two = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, np.c_[y, 1 - y])
    assert _compile(two, X, "predict")[0] is None


def test_a_compiled_model_that_would_answer_otherwise_is_not_used() -> None:
    """The probe check at load is what makes the rest safe: a reference that answers differently
    (as an unforeseen scikit-learn change would) leaves the model to scikit-learn."""
    from sklearn.ensemble import RandomForestClassifier

    model, X = _fit("binary", lambda: RandomForestClassifier(n_estimators=10, random_state=0))
    fast = FastPath(predict=model.predict_proba, names=tuple(X.columns))
    assert compile_estimator(model, "predict_proba", fast.names or (), lambda v: fast.predict(fast.frame(v)))
    nudged = compile_estimator(model, "predict_proba", fast.names or (),
                               lambda v: np.nextafter(fast.predict(fast.frame(v)), 2.0))
    assert nudged is None


def test_values_that_are_not_finite_and_large_batches_go_to_scikit_learn() -> None:
    """NaN follows the trees' missing-value rules, infinity scikit-learn's error, and more rows
    than MAX_ROWS the forest's own loops; FastPath.run gives scikit-learn's answer for all."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = DATA["binary"]
    gaps = X.mask(np.random.default_rng(0).random(X.shape) < 0.2)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(gaps, y)
    compiled, fast = _compile(model, X, "predict_proba")
    assert compiled is not None
    fast = FastPath(predict=model.predict_proba, names=fast.names, compiled=compiled)
    with_nan = gaps.to_numpy()[:50]
    assert np.isnan(with_nan).any()
    assert compiled(with_nan) is None
    assert np.array_equal(fast.run([with_nan]), model.predict_proba(fast.frame(with_nan)))
    many = X.to_numpy()[: MAX_ROWS + 1]
    assert compiled(many) is None
    assert np.array_equal(fast.run([many]), model.predict_proba(fast.frame(many)))
    beyond_float32 = X.to_numpy()[:1] * 1e300
    assert compiled(beyond_float32) is None
    with pytest.raises(ValueError, match="infinity"):
        fast.run([beyond_float32])


def _scaled_logistic() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return _fit("binary", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)))


def test_linear_overflow_is_scikit_learns_error() -> None:
    model, X = _scaled_logistic()
    compiled, fast = _compile(model, X, "predict")
    fast = FastPath(predict=model.predict, names=fast.names, compiled=compiled)
    huge = np.full((1, X.shape[1]), 1.7e308)
    huge[0, 0] = -1.7e308
    assert compiled(huge) is None
    with pytest.raises(ValueError, match="infinity"):
        fast.run([huge])


def test_the_input_array_is_left_as_it_was() -> None:
    model, X = _scaled_logistic()
    compiled, _ = _compile(model, X, "predict")
    for rows in (X.to_numpy()[:1].copy(), X.to_numpy()[:5].copy()):
        before = rows.copy()
        compiled(rows)
        assert np.array_equal(rows, before)


def test_small_compiled_batches_skip_the_thread_hand_off() -> None:
    """The micro-batcher predicts a compiled model's small batch on the event loop; a request it
    cannot take (text in a cell), or a model too slow for the loop, goes to the worker thread."""
    import asyncio
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.ensemble import RandomForestClassifier

    from mlops_actions.serving.batching import MicroBatcher
    from mlops_actions.serving.protocol import ParsedInput

    model, X = _fit("binary", lambda: RandomForestClassifier(n_estimators=20, random_state=0))
    compiled, fast = _compile(model, X, "predict")
    assert compiled is not None and compiled.quick(1)

    class Counting(ThreadPoolExecutor):
        handed = 0

        def submit(self, *args: Any, **kwargs: Any) -> Any:
            Counting.handed += 1
            return super().submit(*args, **kwargs)

    class Backend:
        uri = "models:/forest/1"
        input_columns = fast.names

        def __init__(self, fast: FastPath) -> None:
            self.fast = fast

        def predict(self, frame: pd.DataFrame) -> Any:
            return model.predict(frame)

    columns = tuple(X.columns)
    rows = X.to_numpy().tolist()

    async def ask(backend: Backend, requests: list[ParsedInput]) -> list[Any]:
        batcher = MicroBatcher(backend, executor)
        return await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)

    with Counting(max_workers=1) as executor:
        quick = Backend(dataclasses.replace(fast, compiled=compiled))
        answers = asyncio.run(ask(quick, [ParsedInput(columns, [row]) for row in rows[:8]]))
        assert answers == [[int(v)] for v in model.predict(X.iloc[:8])]
        assert Counting.handed == 0
        text = ParsedInput(columns, [["abc", *rows[0][1:]]])
        asyncio.run(ask(quick, [ParsedInput(columns, [rows[0]]), text]))
        assert Counting.handed == 1
        slow = Backend(dataclasses.replace(fast, compiled=dataclasses.replace(compiled, row_seconds=0.01)))
        first = int(model.predict(X.iloc[:1])[0])
        assert asyncio.run(ask(slow, [ParsedInput(columns, [rows[0]])])) == [[first]]
        assert Counting.handed == 2
