"""Thresholds with MLflow ``MetricThreshold`` semantics, four-valued.

Given a :class:`~mlops_actions.config.specs.Threshold` (config) and the
candidate's and baseline's values of one metric (data), :func:`check_threshold`
decides, exactly as ``mlflow.validate_evaluation_results`` does:

* ``threshold``: candidate ``>=`` it (``<=`` when lower is better);
* ``min_absolute_change``: candidate ``>=`` baseline + change (``<=`` baseline - change);
* ``min_relative_change``: (candidate - baseline) / |baseline| ``>=`` change (mirrored when
  lower is better); a baseline of 0 falls back to "strictly better by 1e-10".

With ``min_change_on: ci_bound`` the two change rules judge the worse end of the paired
confidence interval of ``candidate - baseline`` (:mod:`.deltas`; the lower bound when greater
is better, the upper when lower is better) instead of the measured change, so the change must
hold at the interval's confidence; the relative rule divides that bound by ``|baseline|``. A
change with no interval (a count, ``max_error``, too few rows) is then *inconclusive*.

Where MLflow raises or skips, this says *inconclusive* (the metric is undefined on
the data, e.g. ROC AUC on a slice holding one class) or *error* (a baseline
comparison was asked but there is no baseline version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_actions.config.specs import Threshold
from mlops_actions.validation.metrics import GREATER_IS_BETTER
from mlops_actions.validation.results import CheckKind, CheckResult, Verdict

if TYPE_CHECKING:
    from mlops_actions.stats.paired import PairedDelta

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
    text = "; ".join(parts)
    if spec.min_change_on == "ci_bound":
        text += " (change judged on its CI bound)"
    return text


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.4g}"


def check_threshold(metric: str, spec: Threshold, candidate: float | None, baseline: float | None, *,
                    slice_name: str | None = None, rows: int | None = None,
                    baseline_version: str | None = None, location: str | None = None,
                    paired: PairedDelta | None = None) -> CheckResult:
    """One metric against one threshold spec; see the module docstring for the rules."""
    gib = greater_is_better(metric, spec)
    where = f" on slice `{slice_name}` (n={rows})" if slice_name else (f" (n={rows})" if rows else "")
    see = f"; see {location}" if location else ""
    name = f"{slice_name}: {metric}" if slice_name else metric
    bound = describe_threshold(metric, spec)
    on_ci = spec.min_change_on == "ci_bound"

    def result(verdict: Verdict, message: str) -> CheckResult:
        return CheckResult(
            name=name, kind=CheckKind.SLICE if slice_name else CheckKind.METRIC, verdict=verdict,
            message=message + see, metric=metric, slice=slice_name, rows=rows, candidate=candidate,
            baseline=baseline, threshold=bound, location=location, paired=paired)

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
    ci_bound: float | None = None  # the worse end of the CI of candidate - baseline
    if on_ci and baseline is not None and paired is not None and paired.ci is not None:
        ci_bound = paired.ci[0] if gib else paired.ci[1]
    ci_name = (f"{paired.confidence:.0%} CI {'lower' if gib else 'upper'} bound" if paired is not None
               else "CI bound")
    no_ci = on_ci and baseline is not None and ci_bound is None
    if baseline is not None and spec.min_absolute_change is not None:
        change = candidate - baseline
        target = spec.min_absolute_change if gib else -spec.min_absolute_change
        expected = f"{'>=' if gib else '<='} {'+' if gib else '-'}{spec.min_absolute_change:g}"
        if not better(candidate, baseline + target):
            failures.append(
                f"{metric} {_fmt(candidate)} vs baseline {_fmt(baseline)}: change "
                f"{change:+.4g}, expected {expected}{where}")
        elif ci_bound is not None and not better(ci_bound, target):
            failures.append(
                f"{metric} {_fmt(candidate)} vs baseline {_fmt(baseline)}: change {change:+.4g} meets "
                f"{expected}, but its {ci_name} {ci_bound:+.4g} does not (min_change_on: ci_bound; "
                f"{_ci_text(paired)}){where}")
    if baseline is not None and spec.min_relative_change is not None:
        if baseline == 0:
            ok = better(candidate, baseline + 1e-10 if gib else baseline - 1e-10)
            rel_text = "baseline is 0: must be strictly better"
            if ok and ci_bound is not None and not better(ci_bound, 1e-10 if gib else -1e-10):
                ok = False
                rel_text = f"baseline is 0: must be strictly better, and its {ci_name} {ci_bound:+.4g} is not"
        else:
            rel = (candidate - baseline) / abs(baseline) if gib else (baseline - candidate) / abs(baseline)
            ok = rel >= spec.min_relative_change
            rel_text = f"relative improvement {rel:+.4%}, expected >= {spec.min_relative_change:.4%}"
            if ok and ci_bound is not None:
                rel_ci = ci_bound / abs(baseline) if gib else -ci_bound / abs(baseline)
                if rel_ci < spec.min_relative_change:
                    ok = False
                    rel_text += (f" (met), but at the {ci_name} it is {rel_ci:+.4%} "
                                 f"(min_change_on: ci_bound; {_ci_text(paired)})")
        if not ok:
            failures.append(f"{metric} {_fmt(candidate)} vs baseline {_fmt(baseline)}: {rel_text}{where}")
    if failures:
        return result(Verdict.FAILED, "; ".join(failures) + "; improve the model or change the threshold "
                      "in model.yaml (reviewers will see that change)")
    if no_ci:
        why = paired.note if paired is not None and paired.note else "no paired interval for this metric"
        return result(Verdict.INCONCLUSIVE,
                      f"{metric} {_fmt(candidate)} meets `{bound}`{where} on the measured change, but "
                      f"min_change_on: ci_bound needs a confidence interval of the change and there is "
                      f"none ({why}); add test rows, or use min_change_on: estimate")
    text = f"{metric} {_fmt(candidate)} meets `{bound}`{where}"
    if ci_bound is not None:
        text += f", also at the {ci_name} of the change ({_ci_text(paired)})"
    return result(Verdict.PASSED, text)


def _ci_text(paired: PairedDelta | None) -> str:
    """``change +0.012, 95% CI [+0.003, +0.021], p=0.008``"""
    if paired is None or paired.estimate is None:
        return "no paired change"
    text = f"change {paired.estimate:+.4g}"
    if paired.ci is not None:
        text += f", {paired.confidence:.0%} CI [{paired.ci[0]:+.4g}, {paired.ci[1]:+.4g}]"
    if paired.p_value is not None:
        text += f", p={paired.p_value:.3g}"
    return text
