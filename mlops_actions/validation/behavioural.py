"""Behavioural tests declared in model.yaml (``validation.behavioural``).

One function per test type, one dispatcher (:func:`run_behavioural`). Each gets
the loaded model, the model's input frame and the predictions already made on
it, and returns a four-valued :class:`CheckResult`. A model that raises on a
perturbed input gives *error*; a test that cannot apply (no numeric output for
a range, no output signature) gives *inconclusive*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, assert_never

import numpy as np
import pandas as pd

from mlops_actions.config.specs import (
    AllowedClassesTest,
    BehaviouralTest,
    DeterminismTest,
    DirectionalTest,
    FiniteOutputsTest,
    InvarianceTest,
    LatencyTest,
    OutputRangeTest,
    OutputSchemaTest,
)
from mlops_actions.validation.evaluate import LoadedModel, Predictions, row_latencies_ms
from mlops_actions.validation.results import CheckKind, CheckResult, Verdict

__all__ = ["BehaviouralContext", "run_behavioural"]

#: rows perturbed by invariance/directional tests (a sample keeps big test sets fast)
MAX_PERTURBED_ROWS = 20_000


@dataclass(frozen=True)
class BehaviouralContext:
    model: LoadedModel
    frame: pd.DataFrame  # the model's input
    preds: Predictions
    task: str
    location: str | None = None


def _result(test: Any, ctx: BehaviouralContext, verdict: Verdict, message: str) -> CheckResult:
    name = test.name or test.type
    see = f"; see {ctx.location}" if ctx.location else ""
    return CheckResult(name=name, kind=CheckKind.BEHAVIOURAL, verdict=verdict, message=message + see,
                       location=ctx.location)


def _predict(ctx: BehaviouralContext, frame: pd.DataFrame) -> np.ndarray:
    out = ctx.model.pyfunc.predict(frame)
    arr = np.asarray(out.iloc[:, 0] if isinstance(out, pd.DataFrame) else out)
    return arr.reshape(len(frame), -1)[:, 0] if arr.ndim > 1 else arr


def _score(ctx: BehaviouralContext, frame: pd.DataFrame) -> np.ndarray | None:
    """Regression: the prediction; binary: the positive-class probability; else None."""
    if ctx.task == "regression":
        return np.asarray(_predict(ctx, frame), dtype=np.float64)
    raw = ctx.model.raw
    if ctx.task == "binary_classification" and raw is not None and hasattr(raw, "predict_proba"):
        return np.asarray(raw.predict_proba(frame), dtype=np.float64)[:, -1]
    return None


def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:MAX_PERTURBED_ROWS]


def _numeric_column(test: InvarianceTest | DirectionalTest, ctx: BehaviouralContext) -> str | None:
    if test.column not in ctx.frame.columns:
        return (f"column {test.column!r} is not a model input; inputs: "
                f"{', '.join(map(str, ctx.frame.columns))}")
    if not pd.api.types.is_numeric_dtype(ctx.frame[test.column].dtype):
        return (f"column {test.column!r} is not numeric ({ctx.frame[test.column].dtype}); "
                "it cannot be perturbed")
    return None


def check_determinism(test: DeterminismTest, ctx: BehaviouralContext) -> CheckResult:
    rows = ctx.frame.iloc[:test.rows]
    a, b = _predict(ctx, rows), _predict(ctx, rows)
    same = pd.Series(a).equals(pd.Series(b))
    n_diff = int((pd.Series(a) != pd.Series(b)).sum()) if not same else 0
    if same:
        return _result(test, ctx, Verdict.PASSED, f"determinism: {len(rows)} rows predicted twice, identical")
    return _result(test, ctx, Verdict.FAILED,
                   f"determinism: {n_diff} of {len(rows)} rows changed between two predicts of the same "
                   "input; "
                   "fix random state at inference (seed, dropout off)")


def check_output_schema(test: OutputSchemaTest, ctx: BehaviouralContext) -> CheckResult:
    schema = ctx.model.output_schema
    if schema is None:
        return _result(test, ctx, Verdict.INCONCLUSIVE,
                       "output_schema: the model was logged without an output signature; log it with "
                       "signature=infer_signature(X, model.predict(X))")
    y = ctx.preds.y_pred
    specs = list(schema.inputs)
    if len(specs) != 1:
        return _result(test, ctx, Verdict.FAILED,
                       f"output_schema: signature declares {len(specs)} outputs, the model returns "
                       "one column")
    typ = str(getattr(specs[0].type, "name", specs[0].type))
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    ok = {"double": numeric, "float": numeric, "long": pd.api.types.is_integer_dtype(y.dtype),
          "integer": pd.api.types.is_integer_dtype(y.dtype), "boolean": pd.api.types.is_bool_dtype(y.dtype),
          "string": y.dtype == object or pd.api.types.is_string_dtype(y.dtype)}.get(typ, True)
    if ok:
        return _result(test, ctx, Verdict.PASSED,
                       f"output_schema: predictions ({y.dtype}) match signature ({typ})")
    return _result(test, ctx, Verdict.FAILED,
                   f"output_schema: predictions are {y.dtype}, the signature says {typ}; re-log the model "
                   "with a signature inferred from its real output")


def check_finite_outputs(test: FiniteOutputsTest, ctx: BehaviouralContext) -> CheckResult:
    y = ctx.preds.y_pred
    if pd.api.types.is_numeric_dtype(y.dtype):
        bad = int((~np.isfinite(y.astype(np.float64))).sum())
    else:
        bad = int(pd.isna(pd.Series(y)).sum())
    if ctx.preds.proba is not None:
        bad += int((~np.isfinite(ctx.preds.proba)).any(axis=1).sum())
    if bad == 0:
        return _result(test, ctx, Verdict.PASSED, f"finite_outputs: all {len(y)} outputs finite")
    return _result(test, ctx, Verdict.FAILED,
                   f"finite_outputs: {bad} of {len(y)} rows have NaN/inf/empty outputs; expected none")


def check_output_range(test: OutputRangeTest, ctx: BehaviouralContext) -> CheckResult:
    y = ctx.preds.y_pred
    if not pd.api.types.is_numeric_dtype(y.dtype):
        return _result(test, ctx, Verdict.INCONCLUSIVE,
                       f"output_range: predictions are {y.dtype}, not numbers; use allowed_classes instead")
    y = y.astype(np.float64)
    lo = -np.inf if test.min is None else test.min
    hi = np.inf if test.max is None else test.max
    out = int(((y < lo) | (y > hi)).sum())
    lo_text = "" if test.min is None else f"{test.min:g}"
    hi_text = "" if test.max is None else f"{test.max:g}"
    rng = f"[{lo_text}, {hi_text}]"
    if out == 0:
        return _result(test, ctx, Verdict.PASSED, f"output_range: all {len(y)} predictions in {rng} "
                       f"(min {np.nanmin(y):.4g}, max {np.nanmax(y):.4g})")
    return _result(test, ctx, Verdict.FAILED,
                   f"output_range: {out} of {len(y)} predictions outside {rng} "
                   f"(min {np.nanmin(y):.4g}, max {np.nanmax(y):.4g})")


def check_allowed_classes(test: AllowedClassesTest, ctx: BehaviouralContext) -> CheckResult:
    allowed = {str(c) for c in test.classes}
    seen = pd.unique(pd.Series(ctx.preds.y_pred).astype(str))
    extra = sorted(set(seen) - allowed)
    if not extra:
        return _result(test, ctx, Verdict.PASSED, f"allowed_classes: predictions within {sorted(allowed)}")
    return _result(test, ctx, Verdict.FAILED,
                   f"allowed_classes: predicted {extra[:10]} outside the allowed {sorted(allowed)}")


def check_invariance(test: InvarianceTest, ctx: BehaviouralContext) -> CheckResult:
    problem = _numeric_column(test, ctx)
    if problem:
        return _result(test, ctx, Verdict.ERROR, f"invariance: {problem}")
    frame = _sample(ctx.frame)
    rng = np.random.default_rng(0)
    perturbed = frame.copy()
    col = perturbed[test.column].astype(np.float64)
    perturbed[test.column] = (col + rng.uniform(-test.delta, test.delta, len(frame))).astype(
        frame[test.column].dtype if pd.api.types.is_float_dtype(frame[test.column].dtype) else np.float64)
    before = ctx.preds.y_pred[:len(frame)]
    after = _predict(ctx, perturbed)
    if ctx.task == "regression":
        changed = np.abs(after.astype(np.float64) - before.astype(np.float64)) > test.tolerance
    else:
        changed = pd.Series(after).astype(str).to_numpy() != pd.Series(before).astype(str).to_numpy()
    share = float(changed.mean()) if len(changed) else 0.0
    text = (f"invariance on {test.column} ±{test.delta:g}: {share:.2%} of {len(frame)} predictions changed, "
            f"expected <= {test.max_changed:.2%}")
    return _result(test, ctx, Verdict.PASSED if share <= test.max_changed else Verdict.FAILED, text)


def check_directional(test: DirectionalTest, ctx: BehaviouralContext) -> CheckResult:
    problem = _numeric_column(test, ctx)
    if problem:
        return _result(test, ctx, Verdict.ERROR, f"directional: {problem}")
    frame = _sample(ctx.frame)
    before = _score(ctx, frame)
    if before is None:
        return _result(test, ctx, Verdict.INCONCLUSIVE,
                       "directional: needs a score (regression output or a binary classifier's probability); "
                       f"this {ctx.task} model has none")
    shifted = frame.copy()
    shifted[test.column] = shifted[test.column].astype(np.float64) + test.delta
    after = _score(ctx, shifted)
    assert after is not None
    eps = 1e-12
    wrong = after < before - eps if test.direction == "increasing" else after > before + eps
    share = float(wrong.mean()) if len(wrong) else 0.0
    text = (f"directional: raising {test.column} by {test.delta:g} should not make the score "
            f"{'fall' if test.direction == 'increasing' else 'rise'}; violated on {share:.2%} of "
            f"{len(frame)} rows, "
            f"allowed {test.max_violations:.2%}")
    return _result(test, ctx, Verdict.PASSED if share <= test.max_violations else Verdict.FAILED, text)


def check_latency(test: LatencyTest, ctx: BehaviouralContext) -> CheckResult:
    ms = row_latencies_ms(ctx.model, ctx.frame, test.rows)
    p95 = float(np.percentile(ms, 95))
    text = f"latency: p95 {p95:.2f} ms per row over {len(ms)} single-row predicts, budget {test.p95_ms:g} ms"
    return _result(test, ctx, Verdict.PASSED if p95 <= test.p95_ms else Verdict.FAILED, text)


def _check_for(test: BehaviouralTest) -> Callable[[Any, BehaviouralContext], CheckResult]:
    if isinstance(test, DeterminismTest):
        return check_determinism
    if isinstance(test, OutputSchemaTest):
        return check_output_schema
    if isinstance(test, FiniteOutputsTest):
        return check_finite_outputs
    if isinstance(test, OutputRangeTest):
        return check_output_range
    if isinstance(test, AllowedClassesTest):
        return check_allowed_classes
    if isinstance(test, InvarianceTest):
        return check_invariance
    if isinstance(test, DirectionalTest):
        return check_directional
    if isinstance(test, LatencyTest):
        return check_latency
    assert_never(test)


def run_behavioural(test: BehaviouralTest, ctx: BehaviouralContext) -> CheckResult:
    """Run one declared test; a model that raises gives an *error* result, never an exception."""
    try:
        return _check_for(test)(test, ctx)
    except Exception as exc:
        return _result(test, ctx, Verdict.ERROR,
                       f"{test.type}: version {ctx.model.version} raised: {type(exc).__name__}: {exc}")
