"""Behavioural tests on small in-memory models (the port the checks use is ``pyfunc.predict``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_actions.config.specs import (
    AllowedClassesTest,
    DeterminismTest,
    DirectionalTest,
    FiniteOutputsTest,
    InvarianceTest,
    LatencyTest,
    OutputRangeTest,
)
from mlops_actions.validation.behavioural import BehaviouralContext, run_behavioural
from mlops_actions.validation.evaluate import LoadedModel, Predictions
from mlops_actions.validation.results import Verdict

FRAME = pd.DataFrame({"x": np.linspace(-1, 1, 200), "name": ["a"] * 200})


class FnModel:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fn(frame))


def ctx(fn: Any, task: str = "regression") -> BehaviouralContext:
    model = LoadedModel(uri="mem", version="9.9.9", pyfunc=FnModel(fn), raw=None, input_names=None)
    y = np.asarray(fn(FRAME))
    return BehaviouralContext(
        model=model,
        frame=FRAME,
        task=task,
        preds=Predictions(y_pred=y, proba=None, classes=None, batch_seconds=0.0, rows=200),
    )


def verdict(test: Any, c: BehaviouralContext) -> Verdict:
    return run_behavioural(test, c).verdict


def test_determinism() -> None:
    assert verdict(DeterminismTest(type="determinism"), ctx(lambda f: 2 * f["x"])) is Verdict.PASSED
    rng = np.random.default_rng()
    result = run_behavioural(
        DeterminismTest(type="determinism", rows=50), ctx(lambda f: f["x"] + rng.normal(size=len(f)))
    )
    assert result.verdict is Verdict.FAILED and "of 50 rows changed" in result.message


def test_finite_range_and_classes() -> None:
    assert (
        verdict(FiniteOutputsTest(type="finite_outputs"), ctx(lambda f: 1 / f["x"].round(1)))
        is Verdict.FAILED
    )
    assert verdict(FiniteOutputsTest(type="finite_outputs"), ctx(lambda f: f["x"])) is Verdict.PASSED
    r = run_behavioural(OutputRangeTest(type="output_range", min=0, max=1), ctx(lambda f: f["x"]))
    assert r.verdict is Verdict.FAILED and "outside [0, 1]" in r.message
    assert verdict(OutputRangeTest(type="output_range", min=-1), ctx(lambda f: f["x"])) is Verdict.PASSED
    classes = ctx(lambda f: np.where(f["x"] > 0.9, "maybe", "yes"), task="multiclass_classification")
    r = run_behavioural(AllowedClassesTest(type="allowed_classes", classes=["yes", "no"]), classes)
    assert r.verdict is Verdict.FAILED and "'maybe'" in r.message
    assert verdict(OutputRangeTest(type="output_range", min=0), classes) is Verdict.INCONCLUSIVE


def test_invariance_and_directional() -> None:
    step = ctx(lambda f: (f["x"] > 0).astype(int), task="binary_classification")
    assert (
        verdict(InvarianceTest(type="invariance", column="x", delta=0.001, max_changed=0.05), step)
        is Verdict.PASSED
    )
    r = run_behavioural(InvarianceTest(type="invariance", column="x", delta=0.5, max_changed=0.05), step)
    assert r.verdict is Verdict.FAILED and "predictions changed" in r.message
    assert verdict(InvarianceTest(type="invariance", column="name", delta=1), step) is Verdict.ERROR
    linear = ctx(lambda f: 3 * f["x"])
    assert (
        verdict(DirectionalTest(type="directional", column="x", delta=0.1, direction="increasing"), linear)
        is Verdict.PASSED
    )
    assert (
        verdict(DirectionalTest(type="directional", column="x", delta=0.1, direction="decreasing"), linear)
        is Verdict.FAILED
    )


def test_latency_and_a_model_that_raises() -> None:
    assert verdict(LatencyTest(type="latency", p95_ms=1000, rows=5), ctx(lambda f: f["x"])) is Verdict.PASSED

    calls = {"n": 0}

    def flaky(f: pd.DataFrame) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("out of memory")
        return f["x"]

    r = run_behavioural(DeterminismTest(type="determinism"), ctx(flaky))
    assert r.verdict is Verdict.ERROR and "version 9.9.9 raised: RuntimeError: out of memory" in r.message
