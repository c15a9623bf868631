"""The brief's monitoring snippets, run literally (package renamed), plus the rest of the facade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_actions.monitoring import model_monitor as mm


@pytest.fixture(autouse=True)
def _fresh_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_PREDICTION_STORE", raising=False)
    monkeypatch.setattr(mm, "_MONITORS", {})


def test_brief_snippet_model_monitoring(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    current_features = pd.DataFrame({"x": rng.normal(1, 1, 300), "c": rng.choice(["a", "b"], 300)})
    prediction, actual = 1, 1
    # --- from seed/mlops-infrastructure.md, section "2. Model Monitoring" ---
    from mlops_actions.monitoring.model_monitor import get_model_monitor

    monitor = get_model_monitor()

    # Record prediction
    monitor.record_prediction(
        model_name="task_classifier",
        prediction=prediction,
        actual=actual,
        latency_ms=50
    )

    # Check performance
    performance = monitor.check_model_performance("task_classifier")

    # Detect drift
    drift = monitor.detect_data_drift("task_classifier", current_features)
    # --- end of snippet ---
    assert performance["accuracy"] == 1.0 and performance["latency_p50_ms"] == 50.0
    assert performance["n_predictions"] == 1 and performance["error_rate"] == 0.0
    assert drift["verdict"] == "inconclusive" and "set_reference" in drift["message"]
    assert (tmp_path / ".mlops" / "predictions.db").exists()
    assert get_model_monitor() is monitor


def test_brief_snippet_monitor_in_production() -> None:
    metrics = {"accuracy": 0.9, "precision": 0.88, "recall": 0.86, "f1_score": 0.87}
    # --- from seed/mlops-infrastructure.md, section "5. Monitoring" ---
    from mlops_actions.monitoring.model_monitor import get_model_monitor

    # Monitor in production
    monitor = get_model_monitor()
    monitor.set_baseline("my_model", metrics)
    # --- end of snippet ---
    for i in range(100):
        monitor.record_prediction("my_model", prediction=i % 2, actual=1, latency_ms=10)
    perf = monitor.check_model_performance("my_model", min_samples=50)
    assert perf["accuracy"] == 0.5 and perf["verdict"] == "failed"
    failed = {c["metric"] for c in perf["checks"] if c["verdict"] == "failed"}
    assert failed == {"accuracy", "recall", "f1"}  # precision is 1.0: every predicted 1 was right
    assert monitor.get_baseline("my_model") == metrics


def test_drift_against_reference_and_logged_features() -> None:
    rng = np.random.default_rng(1)
    monitor = mm.get_model_monitor()
    ref = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b", "c"], 2000)})
    monitor.set_reference("churn", ref)
    shifted = {"x": rng.normal(1, 1, 500).tolist(), "c": rng.choice(["a", "b", "c"], 500).tolist()}
    out = monitor.detect_data_drift("churn", shifted)
    assert out["drifted_features"] == ["x"] and out["features"]["x"]["method"] == "wasserstein"
    assert out["drift_detected"] is True  # 1 of 2 columns >= 0.5
    # a fresh monitor finds the stored profile
    mm._MONITORS.clear()
    again = mm.get_model_monitor().detect_data_drift("churn", [{"x": 0.1, "c": "a"}] * 10)
    assert again["features"]["x"]["n_reference"] == 2000
    # without a reference: logged features are the reference
    for _ in range(200):
        monitor.record_prediction("other", 0, features={"x": float(rng.normal())})
    logged = monitor.detect_data_drift("other", {"x": rng.normal(3, 1, 100).tolist()})
    assert logged["drifted_features"] == ["x"]


def test_prediction_drift_and_late_actuals() -> None:
    monitor = mm.get_model_monitor()
    ids = [monitor.record_prediction("m", prediction=i % 2, latency_ms=1) for i in range(400)]
    assert monitor.set_prediction_baseline("m") == 400
    same = monitor.detect_prediction_drift("m")
    assert same["drift_detected"] is False and same["method"] == "z"
    shifted = monitor.detect_prediction_drift("m", [1] * 300 + [0] * 20)
    assert shifted["drift_detected"] is True
    assert monitor.record_actual(ids[0], 0) is True
    assert monitor.record_actual("never-logged", 1) is False
    assert monitor.store.pending_actuals() == 1


def test_bad_current_features_type_is_a_clear_error() -> None:
    from mlops_actions.errors import ValidationError

    with pytest.raises(ValidationError, match="DataFrame, a dict or a list of dicts"):
        mm.get_model_monitor().detect_data_drift("m", 42)
