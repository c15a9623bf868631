"""Per-model rules from model.yaml: rendered, checked and unit-tested with promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_actions.cli import main
from mlops_actions.config.loader import load_repo
from mlops_actions.monitoring.prometheus_rules import render_rules

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def _repo(root: Path) -> Path:
    d = root / "models" / "churn"
    d.mkdir(parents=True)
    (d / "model.yaml").write_text("""
name: churn
task: binary_classification
data: {test: t.csv, label: y}
monitoring:
  max_error_rate: 0.02
  max_latency_p95_ms: 50
  prediction_drift_threshold: 0.2
  performance:
    accuracy: {threshold: 0.9, min_absolute_change: 0.03}
    rmse: {threshold: 4.5}
    f1: {min_relative_change: 0.1}
    brier: {threshold: 0.2}
""")
    (root / "environments").mkdir()
    (root / "environments" / "production.yaml").write_text(
        'models:\n  churn: {version: "1.3.0"}\n  ghost: {version: "0.1.0"}\n')
    (root / "environments" / "staging.yaml").write_text('models:\n  churn: {version: "1.4.0"}\n')
    return root


def test_rules_follow_the_declared_thresholds(tmp_path: Path) -> None:
    rules, warnings = render_rules(load_repo(_repo(tmp_path)))
    assert [g["name"] for g in rules["groups"]] == ["mlops-churn-production", "mlops-churn-staging"]
    by_name = {r["alert"]: r for r in rules["groups"][0]["rules"]}
    assert by_name["MlopsModelErrorRate"]["expr"].endswith("> 0.02")
    assert by_name["MlopsModelLatencyP95"]["expr"].endswith("> 0.05")
    assert by_name["MlopsModelAccuracyBelowThreshold"]["expr"] == \
        'mlops_model_metric{model="churn",environment="production",metric="accuracy"} < 0.9'
    assert by_name["MlopsModelRmseAboveThreshold"]["expr"].endswith("> 4.5")  # lower is better
    assert "* 0.9" in by_name["MlopsModelF1RelativelyWorseThanBaseline"]["expr"]
    assert "- 0.03" in by_name["MlopsModelAccuracyWorseThanBaseline"]["expr"]
    assert any("brier" in w for w in warnings) and any("ghost" in w for w in warnings)


@pytest.mark.prometheus
@needs_promtool
def test_generated_rules_pass_promtool_and_fire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo(tmp_path)
    out = tmp_path / "out" / "models.rules.yml"
    assert main(["-C", str(repo), "prometheus-rules", "--env", "production", "--out", str(out)]) == 0
    assert "wrote 8 rule(s) in 1 group(s)" in capsys.readouterr().out
    check = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    sel = 'model="churn",environment="production",version="1.3.0"'
    test = {"rule_files": [out.name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": f'mlops_model_metric{{{sel},metric="accuracy"}}', "values": "0.88x30"},
            {"series": f'mlops_model_baseline_metric{{{sel},metric="accuracy"}}', "values": "0.90x30"},
            {"series": f'mlops_model_metric{{{sel},metric="f1"}}', "values": "0.80x30"},
            {"series": f'mlops_model_baseline_metric{{{sel},metric="f1"}}', "values": "0.85x30"},
            {"series": f"mlops_prediction_drift_score{{{sel}}}", "values": "0.3x40"}],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "MlopsModelAccuracyBelowThreshold", "exp_alerts": [{
                "exp_labels": {"severity": "error", "model": "churn", "environment": "production",
                               "version": "1.3.0", "metric": "accuracy", "check": "accuracy"},
                "exp_annotations": {
                    "summary": "churn 1.3.0 in production: accuracy 0.8800 < threshold 0.9",
                    "description": "Declared in models/churn/model.yaml "
                                   "(monitoring.performance.accuracy.threshold)."}}]},
            # 0.88 is only 0.02 below its baseline: not more than 0.03 worse
            {"eval_time": "20m", "alertname": "MlopsModelAccuracyWorseThanBaseline", "exp_alerts": []},
            # 0.80 vs 0.85 is 5.9% worse: not more than 10%
            {"eval_time": "20m", "alertname": "MlopsModelF1RelativelyWorseThanBaseline", "exp_alerts": []},
            {"eval_time": "35m", "alertname": "MlopsModelPredictionDrift", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "model": "churn", "environment": "production",
                               "version": "1.3.0", "check": "prediction_drift"},
                "exp_annotations": {
                    "summary": "churn 1.3.0 in production: prediction drift 0.300 > 0.2",
                    "description": "Declared in models/churn/model.yaml "
                                   "(monitoring.prediction_drift_threshold)."}}]},
        ]}]}
    (out.parent / "test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=out.parent, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
