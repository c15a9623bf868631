"""Per-model Prometheus alerting rules generated from model.yaml's ``monitoring``.

``docs/operations/prometheus/rules.yml`` ships generic defaults (5% errors, 0.5 s p99...).
This renders the thresholds each model declares, for every environment that
pins it, so Prometheus alerts on the same bounds the ``monitor`` command checks:

- ``monitoring.max_error_rate``        -> 5xx ratio above it
- ``monitoring.max_latency_p95_ms``    -> p95 of ``mlops_request_duration_seconds`` above it
- ``monitoring.performance``           -> ``mlops_model_metric`` below/above ``threshold``, or
  worse than ``mlops_model_baseline_metric`` by ``min_absolute_change`` / ``min_relative_change``
- ``monitoring.prediction_drift_threshold`` -> ``mlops_prediction_drift_score`` above it
- dataset drift                        -> ``mlops_dataset_drift == 1``
"""

from __future__ import annotations

from typing import Any

from mlops_actions.config.loader import Repo
from mlops_actions.config.specs import ModelSpec, Threshold
from mlops_actions.monitoring.metrics import MODEL_METRICS

__all__ = ["GREATER_IS_BETTER", "model_rules", "render_rules"]

VERSION = "{{ $labels.version }}"
VALUE4 = '{{ $value | printf "%.4f" }}'
VALUE3 = '{{ $value | printf "%.3f" }}'

#: Default direction per metric when a threshold does not say.
GREATER_IS_BETTER: dict[str, bool] = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True, "r2": True,
    "log_loss": False, "rmse": False, "mae": False, "mse": False,
}


def _alert(name: str, expr: str, summary: str, severity: str, duration: str, labels: dict[str, str],
           description: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": duration,
            "labels": {"severity": severity, **labels},
            "annotations": {"summary": summary, "description": description}}


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_") if part)


def _threshold_rules(model: str, env: str, metric: str, t: Threshold, sel: str,
                     source: str) -> list[dict[str, Any]]:
    better_up = t.greater_is_better if t.greater_is_better is not None else GREATER_IS_BETTER[metric]
    worse, sign = ("<", "-") if better_up else (">", "+")
    msel = f'{sel},metric="{metric}"'
    labels = {"model": model, "environment": env, "check": metric}
    name = f"MlopsModel{_camel(metric)}"
    rules = []
    if t.threshold is not None:
        rules.append(_alert(
            f"{name}BelowThreshold" if better_up else f"{name}AboveThreshold",
            f"mlops_model_metric{{{msel}}} {worse} {t.threshold!r}",
            f"{model} {VERSION} in {env}: {metric} {VALUE4} {worse} threshold {t.threshold!r}",
            "error", "15m", labels,
            f"Declared in {source} (monitoring.performance.{metric}.threshold)."))
    if t.min_absolute_change is not None:
        rules.append(_alert(
            f"{name}WorseThanBaseline",
            f"mlops_model_metric{{{msel}}} {worse} "
            f"(mlops_model_baseline_metric{{{msel}}} {sign} {t.min_absolute_change!r})",
            f"{model} {VERSION} in {env}: {metric} {VALUE4} is more than {t.min_absolute_change!r} "
            "worse than its baseline", "error", "15m", labels,
            f"Declared in {source} (monitoring.performance.{metric}.min_absolute_change)."))
    if t.min_relative_change is not None:
        factor = 1 - t.min_relative_change if better_up else 1 + t.min_relative_change
        rules.append(_alert(
            f"{name}RelativelyWorseThanBaseline",
            f"mlops_model_metric{{{msel}}} {worse} (mlops_model_baseline_metric{{{msel}}} * {factor!r})",
            f"{model} {VERSION} in {env}: {metric} {VALUE4} is more than {t.min_relative_change:.0%} "
            "worse than its baseline", "error", "15m", labels,
            f"Declared in {source} (monitoring.performance.{metric}.min_relative_change)."))
    return rules


def model_rules(model: str, spec: ModelSpec, env: str, source: str = "model.yaml") -> list[dict[str, Any]]:
    """Alerting rules for one model in one environment."""
    mon = spec.monitoring
    sel = f'model="{model}",environment="{env}"'
    labels = {"model": model, "environment": env}
    rules = [
        _alert("MlopsModelErrorRate",
               f"sum by (model, environment, version) (rate(mlops_request_errors_total{{{sel}}}[5m]))\n"
               f"/\nsum by (model, environment, version) (rate(mlops_requests_total{{{sel}}}[5m]))\n"
               f"> {mon.max_error_rate!r}",
               f"{model} {VERSION} in {env}: error rate {{{{ $value | humanizePercentage }}}} "
               f"> {mon.max_error_rate:.2%}", "critical", "5m", {**labels, "check": "error_rate"},
               f"Declared in {source} (monitoring.max_error_rate)."),
        _alert("MlopsModelPredictionDrift",
               f"mlops_prediction_drift_score{{{sel}}} > {mon.prediction_drift_threshold!r}",
               f"{model} {VERSION} in {env}: prediction drift {VALUE3} > {mon.prediction_drift_threshold!r}",
               "warning", "30m",
               {**labels, "check": "prediction_drift"},
               f"Declared in {source} (monitoring.prediction_drift_threshold)."),
        _alert("MlopsModelDatasetDrift", f"mlops_dataset_drift{{{sel}}} == 1",
               f"{model} {VERSION} in {env}: dataset drift (drift_share "
               f"{mon.drift.drift_share!r} reached)", "warning", "30m", {**labels, "check": "dataset_drift"},
               f"Declared in {source} (monitoring.drift)."),
    ]
    if mon.max_latency_p95_ms is not None:
        rules.append(_alert(
            "MlopsModelLatencyP95",
            f"histogram_quantile(0.95, sum by (model, environment, version, le) "
            f"(rate(mlops_request_duration_seconds_bucket{{{sel}}}[5m])))\n"
            f"> {mon.max_latency_p95_ms / 1000!r}",
            f"{model} {VERSION} in {env}: p95 latency {{{{ $value | humanizeDuration }}}} > "
            f"{mon.max_latency_p95_ms!r} ms", "warning", "10m", {**labels, "check": "latency_p95_ms"},
            f"Declared in {source} (monitoring.max_latency_p95_ms)."))
    for metric, threshold in sorted(mon.performance.items()):
        if metric in MODEL_METRICS:
            rules.extend(_threshold_rules(model, env, metric, threshold, sel, source))
    return rules


def render_rules(repo: Repo, environments: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """``({"groups": [...]}, warnings)``: one group per model and environment that pins it.
    Performance metrics outside MODEL_METRICS cannot be exported, so they get a warning."""
    groups: list[dict[str, Any]] = []
    warnings: list[str] = []
    for env_key, env in sorted(repo.environments.items()):
        name = env.name or env_key
        if environments and name not in environments and env_key not in environments:
            continue
        for model in sorted(env.models):
            spec = repo.models.get(model)
            if spec is None:
                warnings.append(f"environments/{env_key}.yaml pins {model!r} but models/{model}/model.yaml "
                                "does not exist; no rules for it")
                continue
            for metric in sorted(set(spec.monitoring.performance) - set(MODEL_METRICS)):
                warnings.append(f"models/{model}/model.yaml: monitoring.performance.{metric} has no "
                                f"Prometheus metric (exported: {', '.join(MODEL_METRICS)}); no rule for it")
            groups.append({"name": f"mlops-{model}-{name}",
                           "rules": model_rules(model, spec, name, f"models/{model}/model.yaml")})
    return {"groups": groups}, warnings
