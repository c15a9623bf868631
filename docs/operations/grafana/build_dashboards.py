"""Writes dashboards/*.json (Grafana 10+ JSON model, provisioning-ready).

Run from anywhere: ``python docs/operations/grafana/build_dashboards.py``. The JSON is
committed; tests/alerting/test_prometheus.py runs every query against a real
Prometheus, and test_dashboards checks the files match this generator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'model=~"$model",environment=~"$environment"'
RI = "$__rate_interval"


def _var(name: str, label: str) -> dict[str, Any]:
    query = f'label_values({{__name__=~"mlops_.+"}}, {name})'
    return {"name": name, "label": label, "type": "query", "datasource": DS, "refresh": 2,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".+", "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}


TEMPLATING = {"list": [
    {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
     "current": {}, "hide": 0},
    _var("model", "Model"), _var("environment", "Environment")]}


def panel(title: str, targets: list[tuple[str, str]], *, unit: str = "short", kind: str = "timeseries",
          w: int = 12, h: int = 8, description: str = "", instant: bool = False,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend,
                     "instant": instant, "range": not instant,
                     **({"format": "table"} if kind == "table" else {})}
                    for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]}}
        if kind == "timeseries" else {},
    }
    p.update(extra or {})
    return p


def dashboard(uid: str, title: str, description: str, panels: list[dict[str, Any]],
              templating: dict[str, Any] | None = None) -> dict[str, Any]:
    x = y = 0
    row_h = 0
    for i, p in enumerate(panels, start=1):
        g = p["gridPos"]
        if x + g["w"] > 24:
            x, y = 0, y + row_h
            row_h = 0
        g["x"], g["y"] = x, y
        x += g["w"]
        row_h = max(row_h, g["h"])
        p["id"] = i
    return {"uid": uid, "title": title, "description": description, "tags": ["mlops-actions"],
            "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "timezone": "utc",
            "templating": templating or TEMPLATING,
            "annotations": {"list": []}, "links": [], "panels": panels}


def _ratio(num: str, den: str, by: str) -> str:
    return f"sum by ({by}) (rate({num}[{RI}]))\n/\nsum by ({by}) (rate({den}[{RI}]))"


def _quantile(q: float, by: str, sel: str = SEL) -> str:
    return (f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate(mlops_request_duration_seconds_bucket{{{sel}}}[{RI}])))")


MV = "model, environment, version"

PERFORMANCE = dashboard("mlops-model-performance", "MLOps: model performance",
                        "Quality on labelled predictions (from the exporter) and serving health (gateway).", [
    panel("Accuracy", [(f"mlops_model_accuracy{{{SEL}}}", "{{model}} {{version}} ({{environment}})")],
          unit="percentunit"),
    panel("Quality metrics", [(f"mlops_model_metric{{{SEL}}}", "{{metric}} {{model}} {{version}}")]),
    panel("Accuracy minus baseline", [(
        f"mlops_model_accuracy{{{SEL}}}\n- ignoring(metric)\n"
        f'mlops_model_baseline_metric{{{SEL},metric="accuracy"}}',
        "{{model}} {{version}} ({{environment}})")], unit="percentunit",
        description="Below -0.05 for 15 minutes fires MlopsAccuracyDrop."),
    panel("Labelled samples in the window", [(f"mlops_monitor_samples{{{SEL}}}", "{{model}} {{version}}")]),
    panel("Requests per second", [(f"sum by ({MV}) (rate(mlops_requests_total{{{SEL}}}[{RI}]))",
                                   "{{model}} {{version}} ({{environment}})")], unit="reqps"),
    panel("Error ratio (5xx)", [(_ratio(f"mlops_request_errors_total{{{SEL}}}",
                                        f"mlops_requests_total{{{SEL}}}",
                                        MV), "{{model}} {{version}}")], unit="percentunit"),
    panel("Latency p50 / p95 / p99", [(_quantile(0.5, MV), "p50 {{model}} {{version}}"),
                                      (_quantile(0.95, MV), "p95 {{model}} {{version}}"),
                                      (_quantile(0.99, MV), "p99 {{model}} {{version}}")], unit="s"),
    panel("Prediction log", [(f"sum by ({MV}) (rate(mlops_predictions_logged_total{{{SEL}}}[{RI}]))",
                              "logged/s {{model}} {{version}}"),
                             ("mlops_prediction_queue_depth", "queue depth {{instance}}")]),
    panel("Time since the last monitoring run", [
        (f"time() - mlops_monitor_last_run_timestamp_seconds{{{SEL}}}", "{{model}} ({{environment}})")],
        unit="s", kind="stat", instant=True, description="Above 2 hours fires MlopsMonitorStale."),
])

DRIFT = dashboard("mlops-drift", "MLOps: data and prediction drift",
                  "Per-feature drift scores, dataset drift and prediction drift from the exporter.", [
    panel("Dataset drift", [(f"mlops_dataset_drift{{{SEL}}}", "{{model}} {{version}} ({{environment}})")],
          kind="stat", instant=True, w=8, extra={"options": {"colorMode": "background"}}),
    panel("Share of drifted features", [(f"mlops_drifted_features_ratio{{{SEL}}}", "{{model}} {{version}}")],
          unit="percentunit", w=16),
    panel("Drift score per feature", [(f"mlops_feature_drift_score{{{SEL}}}",
                                       "{{feature}} ({{method}}) {{model}} {{version}}")],
          description="p-value for ks, chisquare, z (lower = more drift); "
                      "a distance otherwise (higher = more)."),
    panel("Drifted features", [(f"sort_desc(mlops_feature_drifted{{{SEL}}})", "")], kind="table",
          instant=True),
    panel("Prediction drift", [(f"mlops_prediction_drift_score{{{SEL}}}", "score {{model}} {{version}}"),
                               (f"mlops_prediction_drifted{{{SEL}}}", "drifted {{model}} {{version}}")]),
    panel("Drift and quality alerts", [(
        'ALERTS{alertname=~"MlopsDatasetDrift|MlopsPredictionDrift|MlopsAccuracyDrop|MlopsMonitorStale"}',
        "{{alertname}} {{model}} ({{alertstate}})")], kind="table", instant=True),
])

DEPLOYMENTS = dashboard("mlops-deployments", "MLOps: deployments and rollouts",
                        "What runs where, traffic weights, rollout phase and step (from the gateway).", [
    panel("Live deployments", [(f"mlops_deployment_info{{{SEL}}} == 1", "")], kind="table", instant=True,
          w=24),
    panel("Traffic weight", [(f"mlops_traffic_weight{{{SEL}}}", "{{model}} {{version}} {{variant}}")],
          unit="percentunit"),
    panel("Rollout phase", [(f"max by (model, environment, phase) (mlops_rollout_phase{{{SEL}}}) == 1",
                             "{{model}} ({{environment}}): {{phase}}")], kind="state-timeline"),
    panel("Rollout step", [(f"mlops_rollout_step{{{SEL}}}", "{{model}} ({{environment}})")]),
    panel("Requests per second by version and variant", [(
        f"sum by (model, version, variant) (rate(mlops_requests_total{{{SEL}}}[{RI}]))",
        "{{model}} {{version}} {{variant}}")], unit="reqps"),
    panel("Requests refused (prediction log full)", [(
        f"sum by (model, environment) (rate(mlops_predictions_rejected_total{{{SEL}}}[{RI}]))",
        "{{model}} ({{environment}})")], unit="reqps"),
    panel("Serving alerts", [('ALERTS{alertname=~"Mlops.*"}', "{{alertname}} ({{alertstate}})")],
          kind="table", instant=True),
])

VAR = "model, environment, variant, version"
AB = dashboard("mlops-ab-comparison", "MLOps: A/B and canary comparison",
               "Variants of one model side by side: traffic, errors, latency and quality per version.", [
    panel("Requests per second by variant", [(f"sum by ({VAR}) (rate(mlops_requests_total{{{SEL}}}[{RI}]))",
                                              "{{variant}} {{version}}")], unit="reqps"),
    panel("Observed traffic share vs declared weight", [
        (f"sum by ({VAR}) (rate(mlops_requests_total{{{SEL}}}[{RI}]))\n"
         "/ ignoring(variant, version) group_left\n"
         f"sum by (model, environment) (rate(mlops_requests_total{{{SEL}}}[{RI}]))", "observed {{variant}}"),
        (f"mlops_traffic_weight{{{SEL}}}", "declared {{variant}}")], unit="percentunit"),
    panel("Error ratio by variant", [(_ratio(f"mlops_request_errors_total{{{SEL}}}",
                                             f"mlops_requests_total{{{SEL}}}", VAR),
                                      "{{variant}} {{version}}")],
          unit="percentunit"),
    panel("Latency p95 by variant", [(_quantile(0.95, VAR), "{{variant}} {{version}}")], unit="s"),
    panel("Accuracy by version", [(f"mlops_model_accuracy{{{SEL}}}", "{{model}} {{version}}")],
          unit="percentunit"),
    panel("Quality metrics by version", [(f"mlops_model_metric{{{SEL}}}", "{{metric}} {{version}}")],
          kind="table", instant=True),
])

JOB = 'job=~"$job"'
JOB_VAR = {"name": "job", "label": "Job", "type": "query", "datasource": DS, "refresh": 2,
           "query": {"query": "label_values(process_cpu_seconds_total, job)", "refId": "job-var"},
           "definition": "label_values(process_cpu_seconds_total, job)", "includeAll": True, "multi": True,
           "allValue": ".+", "sort": 1, "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}
SYSTEM = dashboard("mlops-system", "MLOps: system resources",
                   "Processes of the gateway and the exporter "
                   "(process_* metrics from metrics.process_metrics).", [
    panel("Scrape targets up", [(f"up{{{JOB}}}", "{{job}} {{instance}}")], kind="stat", instant=True, w=8),
    panel("Uptime", [(f"time() - process_start_time_seconds{{{JOB}}}", "{{job}} {{instance}}")], unit="s",
          kind="stat", instant=True, w=8),
    panel("Open file descriptors (share of the limit)", [
        (f"process_open_fds{{{JOB}}} / process_max_fds{{{JOB}}}", "{{job}} {{instance}}")],
          unit="percentunit", kind="stat", instant=True, w=8),
    panel("CPU (cores)", [(f"rate(process_cpu_seconds_total{{{JOB}}}[{RI}])", "{{job}} {{instance}}")]),
    panel("Resident memory", [(f"process_resident_memory_bytes{{{JOB}}}", "{{job}} {{instance}}")],
          unit="bytes"),
    panel("Prediction log queue depth", [(f"mlops_prediction_queue_depth{{{JOB}}}", "{{job}} {{instance}}")]),
    panel("Scrape duration", [(f"scrape_duration_seconds{{{JOB}}}", "{{job}} {{instance}}")], unit="s"),
], templating={"list": [TEMPLATING["list"][0], JOB_VAR]})

DASHBOARDS = {"model-performance.json": PERFORMANCE, "drift.json": DRIFT,
              "deployments.json": DEPLOYMENTS, "ab-comparison.json": AB, "system.json": SYSTEM}


def render() -> dict[str, str]:
    return {name: json.dumps(d, indent=2, sort_keys=True) + "\n" for name, d in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
