"""The monitoring branch's real reports -> exporter gauges and alert findings.

Skipped until ``mlops_actions.monitoring.drift`` / ``performance`` / ``quality`` are on the
branch (they live on branch ``monitoring``; the lead merges both)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from mlops_actions.config.specs import Threshold
from mlops_actions.monitoring.alerts import MemorySink, notify
from mlops_actions.monitoring.alerts.notify import findings_from_reports
from mlops_actions.monitoring.exporter import export_results, result_from_reports
from mlops_actions.monitoring.metrics import monitoring_metrics

drift_mod = pytest.importorskip("mlops_actions.monitoring.drift")
perf_mod = pytest.importorskip("mlops_actions.monitoring.performance")
quality_mod = pytest.importorskip("mlops_actions.monitoring.quality")


def _reports() -> tuple[object, object, object, object]:
    rng = np.random.default_rng(0)
    n = 400
    ref = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50, 5, n),
                        "plan": rng.choice(["a", "b", "c"], n)})
    cur = pd.DataFrame({"age": rng.normal(55, 10, n), "income": rng.normal(50, 5, n),
                        "plan": rng.choice(["a", "b", "c"], n, p=[0.8, 0.1, 0.1])})
    drift = drift_mod.detect_drift(ref, cur)
    quality = quality_mod.check_quality(drift, list(cur.columns))
    actual = rng.integers(0, 2, n)
    output = np.where(rng.random(n) < 0.7, actual, 1 - actual)  # 70 % accurate
    rows = pd.DataFrame({"request_id": [str(i) for i in range(n)], "model": "churn", "version": "1.3.0",
                         "timestamp": np.linspace(0, 3600, n), "features": [{}] * n,
                         "output": output.tolist(),
                         "actual": actual.tolist(), "latency_ms": rng.uniform(1, 20, n), "status": 200,
                         "environment": "production", "variant": "stable"})
    performance = perf_mod.compute_performance(
        rows, model="churn", version="1.3.0", task="binary_classification",
        thresholds={"accuracy": Threshold(threshold=0.9)}, baseline={"accuracy": 0.93})
    pred = drift_mod.detect_prediction_drift(rng.random(n).tolist(), (rng.random(n) ** 3).tolist())
    return performance, drift, quality, pred


def test_real_reports_export_and_alert(tmp_path: Path) -> None:
    performance, drift, quality, pred = _reports()
    reg = CollectorRegistry()
    result = result_from_reports("churn", "1.3.0", "production", performance=performance, drift=drift,
                                 prediction_drift=pred)
    summary = export_results(monitoring_metrics(reg), [result], declared_features={"churn": ["age", "income",
                                                                                               "plan"]})
    mve = {"model": "churn", "version": "1.3.0", "environment": "production"}
    acc = reg.get_sample_value("mlops_model_accuracy", mve)
    assert acc is not None and 0.6 < acc < 0.8
    assert reg.get_sample_value("mlops_model_baseline_metric", {**mve, "metric": "accuracy"}) == 0.93
    assert reg.get_sample_value("mlops_feature_drifted", {**mve, "feature": "age"}) == 1
    assert reg.get_sample_value("mlops_feature_drifted", {**mve, "feature": "income"}) == 0
    assert reg.get_sample_value("mlops_prediction_drifted", mve) == 1
    assert not any("latency" in d or "error_rate" in d for d in summary.dropped)

    findings = findings_from_reports("churn", "production", "1.3.0", performance=performance, drift=drift,
                                     quality=quality, prediction_drift=pred)
    by_check = {f.check: f for f in findings}
    assert by_check["accuracy"].verdict == "failed" and "0.9" in by_check["accuracy"].message
    assert by_check["prediction_drift"].verdict == "failed"
    sink = MemorySink("slack")
    report = notify(findings, [], tmp_path / "alerts.json", sinks={"slack": sink})
    fired = {a.key for a in sink.alerts}
    assert "churn/production/accuracy" in fired and "churn/production/prediction_drift" in fired
    assert set(report.firing) == fired
