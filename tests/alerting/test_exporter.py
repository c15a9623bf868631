"""Exporter: results -> gauges, bounded labels, textfile, the CLI command serving /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlops_actions.cli import main
from mlops_actions.errors import ConfigError
from mlops_actions.monitoring.exporter import (
    FeatureDrift,
    MonitoringResult,
    export_results,
    load_results,
    write_textfile,
)
from mlops_actions.monitoring.metrics import gateway_metrics, monitoring_metrics, status_class
from tests.conftest import free_port

RESULT = MonitoringResult(
    model="churn", version="1.3.0", environment="production",
    metrics={"accuracy": 0.91, "f1": 0.88, "latency_p95_ms": 12.0}, baseline={"accuracy": 0.93},
    feature_drift=(FeatureDrift("age", 0.003, "ks", True), FeatureDrift("plan", 0.04, "jensenshannon", False),
                   FeatureDrift("user_id_123", 0.5, "ks", False)),
    dataset_drift=False, prediction_drift=0.07, samples=412, timestamp=1_700_000_000.0)


def test_export_sets_gauges_and_drops_unbounded_labels() -> None:
    reg = CollectorRegistry()
    summary = export_results(monitoring_metrics(reg), [RESULT], declared_features={"churn": ["age", "plan"]})
    mve = {"model": "churn", "version": "1.3.0", "environment": "production"}
    assert reg.get_sample_value("mlops_model_accuracy", mve) == 0.91
    assert reg.get_sample_value("mlops_model_metric", {**mve, "metric": "f1"}) == 0.88
    assert reg.get_sample_value("mlops_model_baseline_metric", {**mve, "metric": "accuracy"}) == 0.93
    age = {**mve, "feature": "age", "method": "ks"}
    assert reg.get_sample_value("mlops_feature_drift_score", age) == 0.003
    assert reg.get_sample_value("mlops_feature_drifted", {**mve, "feature": "age"}) == 1
    assert reg.get_sample_value("mlops_feature_drifted", {**mve, "feature": "user_id_123"}) is None
    assert reg.get_sample_value("mlops_drifted_features_ratio", mve) == pytest.approx(1 / 3)
    assert reg.get_sample_value("mlops_dataset_drift", mve) == 0
    assert reg.get_sample_value("mlops_prediction_drift_score", mve) == 0.07
    assert reg.get_sample_value("mlops_monitor_samples", mve) == 412
    assert any("user_id_123" in d for d in summary.dropped)
    assert any("latency_p95_ms" in d for d in summary.dropped)


def test_replace_removes_versions_no_longer_monitored() -> None:
    reg = CollectorRegistry()
    m = monitoring_metrics(reg)
    export_results(m, [RESULT])
    newer = MonitoringResult(model="churn", version="1.4.0", environment="production",
                             metrics={"accuracy": 0.95})
    export_results(m, [newer])
    assert reg.get_sample_value("mlops_model_accuracy", {"model": "churn", "version": "1.3.0",
                                                         "environment": "production"}) is None
    assert reg.get_sample_value("mlops_model_accuracy", {"model": "churn", "version": "1.4.0",
                                                         "environment": "production"}) == 0.95


def test_textfile_is_parseable_and_needs_prom_suffix(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    export_results(monitoring_metrics(reg), [RESULT])
    out = tmp_path / "textfile" / "mlops.prom"
    write_textfile(reg, out)
    names = {f.name for f in text_string_to_metric_families(out.read_text())}
    assert {"mlops_model_accuracy", "mlops_feature_drift_score", "mlops_dataset_drift"} <= names
    assert [p.name for p in out.parent.iterdir()] == ["mlops.prom"]  # no temp file left
    with pytest.raises(ConfigError, match=r"\.prom"):
        write_textfile(reg, tmp_path / "mlops.txt")


def test_bad_results_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text(json.dumps([{"model": "churn", "environment": "production"}]))
    with pytest.raises(ConfigError, match="version"):
        load_results(p)
    p.write_text("{oops")
    with pytest.raises(ConfigError, match="not JSON"):
        load_results(p)


def test_gateway_helpers_keep_one_live_series() -> None:
    reg = CollectorRegistry()
    g = gateway_metrics(reg)
    mvev = {"model": "m", "version": "1.0.0", "environment": "prod", "variant": "stable"}
    g.observe_request(**mvev, code=503, seconds=0.004)
    g.observe_request(**mvev, code=200, seconds=0.002)
    assert status_class(404) == "4xx" and status_class(42) == "other"
    base = {"model": "m", "version": "1.0.0", "environment": "prod", "variant": "stable"}
    assert reg.get_sample_value("mlops_requests_total", {**base, "code": "5xx"}) == 1
    assert reg.get_sample_value("mlops_request_errors_total", base) == 1
    assert reg.get_sample_value("mlops_request_duration_seconds_bucket", {**base, "le": "0.005"}) == 2
    g.set_deployment(model="m", environment="prod", version="1.0.0", strategy="canary", phase="progressing")
    g.set_deployment(model="m", environment="prod", version="1.1.0", strategy="canary", phase="healthy")
    info = next(s for s in reg.collect() if s.name == "mlops_deployment_info").samples
    assert [s.labels["version"] for s in info] == ["1.1.0"]
    assert reg.get_sample_value("mlops_rollout_phase",
                                {"model": "m", "environment": "prod", "phase": "progressing"}) == 0
    g.set_weights(model="m", environment="prod", weights={("1.0.0", "stable"): 0.9, ("1.1.0", "canary"): 0.1})
    g.set_weights(model="m", environment="prod", weights={("1.1.0", "stable"): 1.0})
    weights = next(s for s in reg.collect() if s.name == "mlops_traffic_weight").samples
    assert [(s.labels["version"], s.value) for s in weights] == [("1.1.0", 1.0)]


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "models" / "churn").mkdir(parents=True)
    (tmp_path / "models" / "churn" / "model.yaml").write_text(
        "name: churn\ntask: binary_classification\ndata: {test: test.csv, label: churned}\n")
    (tmp_path / "models" / "churn" / "test.csv").write_text("age,plan,churned\n30,a,0\n")
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": [
        {"model": "churn", "version": "1.3.0", "environment": "production", "metrics": {"accuracy": 0.91},
         "feature_drift": {"age": {"score": 0.01, "method": "ks", "drifted": True},
                           "injected": {"score": 0.5, "method": "ks", "drifted": False}},
         "dataset_drift": True, "prediction_drift": 0.2, "samples": 100},
        {"model": "churn", "version": "1.2.0", "environment": "staging", "metrics": {"accuracy": 0.5}}]}))
    return results


def test_cli_textfile_once_filters_env_and_undeclared_features(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    results = _repo(tmp_path)
    out = tmp_path / "mlops.prom"
    rc = main(["-C", str(tmp_path), "exporter", "--env", "production", "--results", str(results),
               "--textfile", str(out), "--once"])
    assert rc == 0
    text = out.read_text()
    assert 'mlops_feature_drifted{environment="production",feature="age"' in text
    assert "injected" not in text and "staging" not in text
    assert "feature 'injected' is not declared" in capsys.readouterr().err


def test_cli_needs_an_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _repo(tmp_path)
    assert main(["-C", str(tmp_path), "exporter", "--env", "production", "--results", str(results)]) == 2
    assert "--port or --textfile" in capsys.readouterr().err


def test_cli_serves_metrics_on_loopback(tmp_path: Path) -> None:
    results = _repo(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_actions", "-C", str(tmp_path), "exporter", "--env", "production",
         "--results", str(results), "--port", str(port), "--interval", "0.2"],
        cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert 'mlops_model_accuracy{environment="production",model="churn",version="1.3.0"} 0.91' in body
        # the results file is re-read: a new value shows up without a restart
        data = json.loads(results.read_text())
        data["results"][0]["metrics"]["accuracy"] = 0.5
        results.write_text(json.dumps(data))
        while time.monotonic() < deadline:
            body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            if 'mlops_model_accuracy{environment="production",model="churn",version="1.3.0"} 0.5' in body:
                break
            time.sleep(0.1)
        assert 'mlops_model_accuracy{environment="production",model="churn",version="1.3.0"} 0.5' in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_route_metrics_count_like_observe_request() -> None:
    reg = CollectorRegistry()
    r = gateway_metrics(reg).route(model="m", version="2.0.0", environment="prod", variant="canary")
    for code in (200, 200, 404, 500):
        r.observe(code, 0.003)
    base = {"model": "m", "version": "2.0.0", "environment": "prod", "variant": "canary"}
    assert reg.get_sample_value("mlops_requests_total", {**base, "code": "2xx"}) == 2
    assert reg.get_sample_value("mlops_requests_total", {**base, "code": "4xx"}) == 1
    assert reg.get_sample_value("mlops_request_errors_total", base) == 1
    assert reg.get_sample_value("mlops_request_duration_seconds_count", base) == 4


def test_drift_report_dict_from_monitoring_is_accepted() -> None:
    # the shape of mlops_actions.monitoring.drift.DriftReport.to_dict() (branch monitoring)
    report = {"verdict": "failed", "dataset_drift": True, "share": 0.5, "drift_share": 0.5,
              "columns": [
                  {"column": "age", "kind": "numeric", "method": "ks", "statistic": 0.001, "threshold": 0.05,
                   "drifted": True, "verdict": "failed"},
                  {"column": "plan", "kind": "categorical", "method": "jensenshannon", "statistic": 0.02,
                   "threshold": 0.1, "drifted": False, "verdict": "passed"},
                  {"column": "broken", "kind": "numeric", "method": "", "statistic": None, "threshold": None,
                   "drifted": None, "verdict": "error"}]}
    r = load_results_from([{"model": "churn", "version": "1.3.0", "environment": "production",
                            "drift": report}])[0]
    assert [(f.feature, f.method, f.drifted) for f in r.feature_drift] == [
        ("age", "ks", True), ("plan", "jensenshannon", False)]
    assert r.dataset_drift is True and r.drifted_features_ratio == 0.5


def load_results_from(data: list[dict[str, object]]) -> list[MonitoringResult]:
    from mlops_actions.monitoring.exporter import result_from_dict
    return [result_from_dict(d) for d in data]


def test_cli_rejects_unknown_env_and_once_without_textfile(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    results = _repo(tmp_path)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "production.yaml").write_text('models:\n  churn: {version: "1.3.0"}\n')
    assert main(["-C", str(tmp_path), "exporter", "--env", "prod", "--results", str(results),
                 "--textfile", str(tmp_path / "m.prom"), "--once"]) == 2
    assert "unknown environment 'prod'" in capsys.readouterr().err
    assert main(["-C", str(tmp_path), "exporter", "--env", "production", "--results", str(results),
                 "--port", "0", "--once"]) == 2
    assert "--once needs --textfile" in capsys.readouterr().err


def test_docs_table_lists_every_metric_and_names_follow_conventions() -> None:
    from prometheus_client import Counter, Histogram
    docs = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    reg = CollectorRegistry()
    objs = [*vars(gateway_metrics(reg)).values(), *vars(monitoring_metrics(reg)).values()]
    for m in objs:
        name = m._name
        assert f"`{name}" in docs, f"{name} missing from docs/metrics.md"
        assert name.startswith("mlops_")
        if isinstance(m, Counter):
            assert f"`{name}_total`" in docs
        if isinstance(m, Histogram):
            assert name.endswith("_seconds")
        for label in m._labelnames:
            assert label in {"model", "version", "environment", "variant", "code", "feature", "metric",
                             "method", "strategy", "phase", "sink", "result", "severity"}, label


def test_monitor_out_json_is_a_results_file(tmp_path: Path) -> None:
    # the shape `mlops-actions monitor --out DIR` writes (branch monitoring, ModelHealth.to_dict())
    payload = {"environment": "production", "healthy": False, "models": [{
        "model": "churn", "version": "1.2.0", "environment": "production", "verdict": "failed",
        "performance": {"n_predictions": 300, "n_labelled": 300,
                        "metrics": {"accuracy": 0.61, "f1": 0.6, "latency_p95_ms": 14.0, "error_rate": 0.0},
                        "checks": [{"metric": "accuracy", "value": 0.61, "verdict": "failed",
                                    "message": "accuracy 0.61 < 0.8", "baseline": 0.9, "bound": 0.8}]},
        "data_drift": {"dataset_drift": False, "share": 0.25, "columns": [
            {"column": "monthly_charges", "method": "ks", "statistic": 1e-9, "drifted": True},
            {"column": "plan", "method": "chisquare", "statistic": 0.4, "drifted": False}]},
        "prediction_drift": {"column": "prediction", "method": "jensenshannon", "statistic": 0.12,
                             "drifted": True},
        "quality": None}]}
    path = tmp_path / "monitor-production.json"
    path.write_text(json.dumps(payload))
    (r,) = load_results(path)
    assert (r.model, r.version, r.environment) == ("churn", "1.2.0", "production")
    assert r.metrics == {"accuracy": 0.61, "f1": 0.6} and r.baseline == {"accuracy": 0.9}
    assert [f.feature for f in r.feature_drift if f.drifted] == ["monthly_charges"]
    assert r.prediction_drift == 0.12 and r.prediction_drifted is True and r.samples == 300
