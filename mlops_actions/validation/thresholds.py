"""Thresholds with MLflow ``MetricThreshold`` semantics, four-valued.

Given a :class:`~mlops_actions.config.specs.Threshold` (config) and the
candidate's and baseline's values of one metric (data), :func:`check_threshold`
decides, exactly as ``mlflow.validate_evaluation_results`` does:

* ``threshold``: candidate ``>=`` it (``<=`` when lower is better);
* ``min_absolute_change``: candidate ``>=`` baseline + change (``<=`` baseline - change);
* ``min_relative_change``: (candidate - baseline) / |baseline| ``>=`` change (mirrored when
  lower is better); a baseline of 0 falls back to "strictly better by 1e-10".

Where MLflow raises or skips, this says *inconclusive* (the metric is undefined on
the data, e.g. ROC AUC on a slice holding one class) or *error* (a baseline
comparison was asked but there is no baseline version).
"""

from __future__ import annotations

from mlops_actions.config.specs import Threshold
from mlops_actions.validation.metrics import GREATER_IS_BETTER
from mlops_actions.validation.results import CheckKind, CheckResult, Verdict

__all__ = ["check_threshold", "describe_threshold", "greater_is_better"]


def greater_is_better(metric: str, spec: Threshold) -> bool:
    if spec.greater_is_better is not None:
        return spec.greater_is_better
    return GREATER_IS_BETTER.get(metric, True)


def describe_threshold(metric: str, spec: Threshold) -> str:
    """``>= 0.9; >= baseline + 0.01`` for tables."""
    gib = greater_is_better(metric, spec)
    cmp = ">=" if gib else "<="
    sign = "+" if gib else "-"
    parts = []
    if spec.threshold is not None:
        parts.append(f"{cmp} {spec.threshold:g}")
    if spec.min_absolute_change is not None:
        parts.append(f"{cmp} baseline {sign} {spec.min_absolute_change:g}")
    if spec.min_relative_change is not None:
        parts.append(f"{cmp} baseline {sign} {spec.min_relative_change:.4g}x|baseline|")
    return "; ".join(parts)


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.4g}"


def check_threshold(metric: str, spec: Threshold, candidate: float | None, baseline: float | None, *,
                    slice_name: str | None = None, rows: int | None = None,
                    baseline_version: str | None = None, location: str | None = None) -> CheckResult:
    """One metric against one threshold spec; see the module docstring for the rules."""
    gib = greater_is_better(metric, spec)
    where = f" on slice `{slice_name}` (n={rows})" if slice_name else (f" (n={rows})" if rows else "")
    see = f"; see {location}" if location else ""
    name = f"{slice_name}: {metric}" if slice_name else metric
    bound = describe_threshold(metric, spec)

    def result(verdict: Verdict, message: str) -> CheckResult:
        return CheckResult(
            name=name, kind=CheckKind.SLICE if slice_name else CheckKind.METRIC, verdict=verdict,
            message=message + see, metric=metric, slice=slice_name, rows=rows, candidate=candidate,
            baseline=baseline, threshold=bound, location=location)

    if candidate is None:
        return result(Verdict.INCONCLUSIVE,
                      f"{metric} is undefined{where} (e.g. a single class, no predicted positives or a "
                      "constant target), so `" + bound + "` cannot be checked; widen the slice or add rows")
    def better(a: float, b: float) -> bool:
        return a >= b if gib else a <= b

    failures: list[str] = []
    if spec.threshold is not None and not better(candidate, spec.threshold):
        failures.append(
            f"{metric} {_fmt(candidate)} {'<' if gib else '>'} threshold {spec.threshold:g}{where}")
    needs_baseline = spec.min_absolute_change is not None or spec.min_relative_change is not None
    if needs_baseline and baseline is None:
        if failures:
            return result(Verdict.FAILED, "; ".join(failures))
        why = ("no baseline version is live in the target environment" if baseline_version is None
               else f"{metric} is undefined for baseline {baseline_version}{where}")
        return result(Verdict.ERROR if baseline_version is None else Verdict.INCONCLUSIVE,
                      f"{metric}: a change against the baseline is required but {why}; "
                      "pass --baseline-env or drop min_absolute_change/min_relative_change")
    if baseline is not None and spec.min_absolute_change is not None:
        target = baseline + spec.min_absolute_change if gib else baseline - spec.min_absolute_change
        if not better(candidate, target):
            failures.append(
                f"{metric} {_fmt(candidate)} vs baseline {_fmt(baseline)}: change "
                f"{candidate - baseline:+.4g}, expected {'>=' if gib else '<='} "
                f"{'+' if gib else '-'}{spec.min_absolute_change:g}{where}")
    if baseline is not None and spec.min_relative_change is not None:
        if baseline == 0:
            ok = better(candidate, baseline + 1e-10 if gib else baseline - 1e-10)
            rel_text = "baseline is 0: must be strictly better"
        else:
            rel = (candidate - baseline) / abs(baseline) if gib else (baseline - candidate) / abs(baseline)
            ok = rel >= spec.min_relative_change
            rel_text = f"relative improvement {rel:+.4%}, expected >= {spec.min_relative_change:.4%}"
        if not ok:
            failures.append(f"{metric} {_fmt(candidate)} vs baseline {_fmt(baseline)}: {rel_text}{where}")
    if failures:
        return result(Verdict.FAILED, "; ".join(failures) + "; improve the model or change the threshold "
                      "in model.yaml (reviewers will see that change)")
    return result(Verdict.PASSED, f"{metric} {_fmt(candidate)} meets `{bound}`{where}")
