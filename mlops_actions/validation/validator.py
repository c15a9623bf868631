"""Validate one model version: the whole path from model.yaml to a :class:`ValidationResult`.

Order of work (cheap and certain first, so bad input fails fast):

1. check the spec against the task (a threshold on a metric that does not apply);
2. load the test data, build every slice mask (unknown columns fail here);
3. load candidate (and baseline) from the registry, check the data against the
   signature, predict once each;
4. score the whole set and every slice from those predictions;
5. with a baseline: every metric's change, paired on the same rows, with a CI and a p-value
   (:mod:`.deltas`);
6. thresholds, slice thresholds, behavioural tests -> four-valued checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_actions.config.specs import ModelSpec, Threshold
from mlops_actions.errors import ConfigError, ValidationError
from mlops_actions.registry.interface import ModelVersion
from mlops_actions.stats.paired import PairedDelta
from mlops_actions.validation.behavioural import BehaviouralContext, run_behavioural
from mlops_actions.validation.deltas import DeltaOptions, paired_deltas
from mlops_actions.validation.evaluate import (
    Evaluation,
    LoadedModel,
    ModelFailed,
    Predictions,
    TestData,
    evaluate_predictions,
    load_model,
    load_test_data,
    model_input,
    predict,
    row_latencies_ms,
)
from mlops_actions.validation.locate import YamlLocator
from mlops_actions.validation.metrics import (
    BINARY_METRICS,
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    metric_name,
)
from mlops_actions.validation.results import CheckKind, CheckResult, ValidationResult, Verdict
from mlops_actions.validation.slices import describe, slice_mask
from mlops_actions.validation.thresholds import check_threshold

__all__ = ["ValidationOptions", "check_spec", "validate_uri", "validate_version"]

_TASK_METRICS = {
    "binary_classification": BINARY_METRICS,
    "multiclass_classification": MULTICLASS_METRICS,
    "regression": REGRESSION_METRICS,
}


@dataclass(frozen=True)
class ValidationOptions:
    latency_rows: int = 50  # single-row predicts timed for the latency figures
    baseline_env: str | None = None
    repo_root: Path | None = None  # messages show model.yaml relative to it
    tracking_uri: str | None = None  # the MLflow holding the versions (default: MLFLOW_TRACKING_URI)
    registry_uri: str | None = None
    #: confidence, resamples and seed of the paired candidate-vs-baseline intervals
    deltas: DeltaOptions = field(default_factory=DeltaOptions)


def check_spec(spec: ModelSpec, locator: YamlLocator) -> None:
    """Every threshold names a metric that applies to the task; all problems at once."""
    valid = _TASK_METRICS[spec.task]
    errors: list[ConfigError] = []

    def check(thresholds: dict[str, Threshold], *keys: str | int) -> None:
        for name in thresholds:
            if metric_name(name) not in valid:
                errors.append(ConfigError(
                    f"threshold on {name!r}, which does not apply to task {spec.task}",
                    hint=f"metrics for {spec.task}: {', '.join(valid)} (short names such as accuracy, f1, "
                         "rmse, mae, r2, mape also work)",
                    location=locator.locate(*keys, name)))

    check(spec.validation.thresholds, "validation", "thresholds")
    for i, s in enumerate(spec.validation.slices):
        check(s.thresholds, "validation", "slices", i, "thresholds")
    if errors:
        raise ConfigError(f"{len(errors)} problem(s) in {locator.path}", errors=errors)


def _masks(spec: ModelSpec, frame: pd.DataFrame, locator: YamlLocator) -> dict[str, np.ndarray]:
    masks: dict[str, np.ndarray] = {}
    errors: list[ConfigError] = []
    for i, s in enumerate(spec.validation.slices):
        locs = [locator.locate("validation", "slices", i, "where", j, "column") for j in range(len(s.where))]
        try:
            masks[s.name] = slice_mask(frame, s, locations=locs)
        except ValidationError as exc:
            errors.append(ConfigError(f"slice {s.name!r}: {exc.message}", hint=exc.hint,
                                      location=exc.location))
    if errors:
        raise ConfigError(f"{len(errors)} problem(s) with slices in {locator.path}", errors=errors)
    return masks


def _evaluate(model: LoadedModel, spec: ModelSpec, data: TestData, masks: dict[str, np.ndarray],
              locator: YamlLocator) -> tuple[Evaluation, pd.DataFrame, Predictions]:
    frame = model_input(model, data, spec_location=locator.locate("data", "test"))
    preds = predict(model, frame, with_proba=spec.task != "regression")
    return evaluate_predictions(spec.task, data.y, preds, masks), frame, preds


def _curves(task: str, y_true: np.ndarray, preds: Predictions, ev: Evaluation,
            bins: int = 10, sample: int = 500) -> dict[str, dict[str, list[float]]]:
    """Calibration bins (binary) or a residual sample (regression), small enough for the JSON report."""
    if task == "regression":
        y = np.asarray(y_true, dtype=np.float64)
        p = np.asarray(preds.y_pred, dtype=np.float64)
        pick = np.random.default_rng(0).choice(len(y), min(sample, len(y)), replace=False)
        return {"residuals": {"predicted": p[pick].tolist(), "residual": (y[pick] - p[pick]).tolist()}}
    arrays = ev.arrays
    if arrays is None or arrays.proba is None or arrays.true_col is None or arrays.proba.shape[1] != 2 \
            or not arrays.binary:
        return {}
    p_pos = arrays.proba[:, 1]
    idx = np.clip((p_pos * bins).astype(np.int64), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    mean_p = np.bincount(idx, weights=p_pos, minlength=bins)
    freq = np.bincount(idx, weights=(arrays.true_col == 1).astype(np.float64), minlength=bins)
    ok = count > 0
    return {"calibration": {"mean_predicted": (mean_p[ok] / count[ok]).tolist(),
                            "observed": (freq[ok] / count[ok]).tolist(),
                            "count": count[ok].astype(float).tolist()}}


def validate_version(spec: ModelSpec, model_yaml: str | Path, candidate: ModelVersion,
                     baseline: ModelVersion | None = None,
                     options: ValidationOptions | None = None) -> ValidationResult:
    """Evaluate ``candidate`` (and ``baseline``) on model.yaml's test data and run every declared check.

    Raises :class:`ConfigError`/:class:`ValidationError` (exit 2) for bad input,
    :class:`ModelFailed` (exit 1) when the candidate raises on predict,
    :class:`RegistryError` (exit 3) when a version cannot be loaded.
    """
    return validate_uri(spec, model_yaml, candidate.uri, candidate.version,
                        baseline.uri if baseline else None, baseline.version if baseline else None, options)


def validate_uri(spec: ModelSpec, model_yaml: str | Path, candidate_uri: str, candidate_version: str,
                 baseline_uri: str | None = None, baseline_version: str | None = None,
                 options: ValidationOptions | None = None) -> ValidationResult:
    """:func:`validate_version` for any model URI ``mlflow.pyfunc.load_model`` accepts (a saved-model
    directory, ``runs:/...``), e.g. before the model is registered. ``model_yaml`` need not exist: it
    locates the test data (relative paths) and the lines named in messages."""
    options = options or ValidationOptions()
    model_yaml = Path(model_yaml)
    locator = YamlLocator(model_yaml, options.repo_root)
    check_spec(spec, locator)
    data = load_test_data(spec, model_yaml.parent, locator)
    masks = _masks(spec, data.frame, locator)

    cand_model = load_model(candidate_uri, candidate_version, tracking_uri=options.tracking_uri,
                            registry_uri=options.registry_uri)
    cand, frame, preds = _evaluate(cand_model, spec, data, masks, locator)
    latency = {"batch_seconds": preds.batch_seconds,
               "batch_ms_per_row": preds.batch_seconds * 1000.0 / max(preds.rows, 1)}
    if options.latency_rows > 0:
        ms = row_latencies_ms(cand_model, frame, options.latency_rows)
        latency.update(row_p50_ms=float(np.percentile(ms, 50)), row_p95_ms=float(np.percentile(ms, 95)),
                       row_samples=float(len(ms)))

    checks: list[CheckResult] = []
    base: Evaluation | None = None
    base_preds: Predictions | None = None
    if baseline_uri is not None:
        baseline_version = baseline_version or baseline_uri
        try:
            base_model = load_model(baseline_uri, baseline_version, tracking_uri=options.tracking_uri,
                                    registry_uri=options.registry_uri)
            base, _, base_preds = _evaluate(base_model, spec, data, masks, locator)
        except (ModelFailed, ValidationError) as exc:
            checks.append(CheckResult(
                name="baseline", kind=CheckKind.METRIC, verdict=Verdict.ERROR,
                message=f"baseline {baseline_version} could not be evaluated on the same data: "
                        f"{exc.message}; "
                        "comparisons against it are errors"))
    base_label = baseline_version if base is not None else None

    deltas: dict[str, PairedDelta] = {}
    slice_deltas: dict[str, dict[str, PairedDelta]] = {}
    if base is not None and base_preds is not None:
        deltas = paired_deltas(spec.task, data.y, preds, base_preds, cand, base, cand.metrics,
                               options=options.deltas)
        for s in spec.validation.slices:
            if s.thresholds and cand.slice_rows[s.name] >= s.min_rows:
                slice_deltas[s.name] = paired_deltas(
                    spec.task, data.y, preds, base_preds, cand, base,
                    [metric_name(t) for t in s.thresholds], mask=masks[s.name], scope=s.name,
                    options=options.deltas)

    n = len(data.frame)
    for name, th in spec.validation.thresholds.items():
        m = metric_name(name)
        loc = str(locator.locate("validation", "thresholds", name))
        checks.append(check_threshold(
            m, th, cand.metrics.get(m), base.metrics.get(m) if base else None, rows=n,
            baseline_version=base_label, location=loc, paired=deltas.get(m)))
    for i, s in enumerate(spec.validation.slices):
        rows = cand.slice_rows[s.name]
        label = f"{s.name} ({describe(s.where)})"
        for name, th in s.thresholds.items():
            m = metric_name(name)
            loc = str(locator.locate("validation", "slices", i, "thresholds", name))
            if rows < s.min_rows:
                checks.append(CheckResult(
                    name=f"{s.name}: {m}", kind=CheckKind.SLICE, verdict=Verdict.INCONCLUSIVE,
                    message=f"slice `{label}` has {rows} rows, fewer than min_rows {s.min_rows}: "
                            f"{m} not judged; add test rows or lower min_rows; see {loc}",
                    metric=m, slice=s.name, rows=rows, candidate=cand.slice_metrics[s.name].get(m),
                    location=loc))
                continue
            checks.append(check_threshold(
                m, th, cand.slice_metrics[s.name].get(m),
                base.slice_metrics[s.name].get(m) if base else None,
                slice_name=s.name, rows=rows, baseline_version=base_label, location=loc,
                paired=slice_deltas.get(s.name, {}).get(m)))
    for i, test in enumerate(spec.validation.behavioural):
        ctx = BehaviouralContext(model=cand_model, frame=frame, preds=preds, task=spec.task,
                                 location=str(locator.locate("validation", "behavioural", i)))
        checks.append(run_behavioural(test, ctx))

    return ValidationResult(
        model=spec.name, version=candidate_version, task=spec.task, checks=tuple(checks),
        metrics=cand.metrics, baseline_version=base_label,
        baseline_metrics=base.metrics if base else {},
        slice_metrics=cand.slice_metrics, slice_rows=cand.slice_rows,
        baseline_slice_metrics=base.slice_metrics if base else {},
        confusion_matrix=tuple(tuple(int(x) for x in row) for row in cand.confusion)
        if cand.confusion is not None else None,
        labels=cand.labels, latency=latency, rows=n, data_path=str(data.path),
        curves=_curves(spec.task, data.y, preds, cand),
        deltas=deltas, slice_deltas=slice_deltas,
    )
