"""The brief's pipeline snippet, literally (package renamed to mlops_actions)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tests.validation.conftest import Registry


@pytest.fixture(scope="module")
def trained(registry: Registry) -> bytes:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = [c for c in registry.bc_test.columns if c not in ("target", "region")]
    train = registry.bc_test.iloc[:150]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        train[features], train["target"]
    )
    return pickle.dumps(model)


@pytest.fixture
def workdir(tmp_path: Path, registry: Registry, trained: bytes) -> Path:
    """models/task_classifier.pkl and data/test.csv as the brief's snippet expects them."""
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "models" / "task_classifier.pkl").write_bytes(trained)
    registry.bc_test.iloc[150:].drop(columns=["region"]).assign(
        segment=lambda f: (f.index % 2).astype(int)
    ).to_csv(tmp_path / "data" / "test.csv", index=False)
    return tmp_path


def test_brief_snippet(workdir: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    assert os.environ["MLFLOW_TRACKING_URI"] == registry.tracking_uri
    from mlops_actions.ci.model_ci_pipeline import ModelCIPipeline

    pipeline = ModelCIPipeline()
    result = pipeline.run_full_pipeline(
        model_path="models/task_classifier.pkl",
        model_name="task_classifier",
        test_data_path="data/test.csv",
        validation_metrics={"accuracy": 0.85, "precision": 0.82, "recall": 0.80, "f1_score": 0.81},
    )
    stages = result["stages"]
    assert list(stages) == [
        "unit_tests",
        "validation",
        "registration",
        "staging_deployment",
        "staging_tests",
        "production_deployment",
    ]
    assert stages["unit_tests"]["status"] == "passed"  # automatic slices segment-0 and segment-1
    assert len(stages["unit_tests"]["details"]["checks"]) == 8
    assert stages["validation"]["status"] == "passed"
    assert stages["registration"]["status"] == "passed"
    assert stages["staging_deployment"]["status"] == "not_available"
    assert result.success and result["status"] == "partial"
    from mlflow.tracking import MlflowClient

    versions = MlflowClient(registry.tracking_uri).search_model_versions("name = 'task_classifier'")
    assert [v.tags.get("mlops.semver") for v in versions] == [result.version]


def test_failing_validation_stops_before_registration(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    from mlops_actions.ci.model_ci_pipeline import ModelCIPipeline

    calls: list[tuple[str, str, str, str]] = []
    pipeline = ModelCIPipeline(deployer=lambda *a: (calls.append(a), (True, "ok"))[1])
    result = pipeline.run_full_pipeline(
        model_path="models/task_classifier.pkl",
        model_name="strict",
        test_data_path="data/test.csv",
        validation_metrics={"accuracy": 0.999},
    )
    assert result.stage("validation").status == "failed"
    assert "accuracy_score" in result.stage("validation").message
    assert result.stage("registration").status == "skipped"
    assert not result.success and calls == []


def test_deployer_runs_the_deploy_stages(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    from mlops_actions.ci.model_ci_pipeline import ModelCIPipeline

    calls: list[tuple[str, ...]] = []

    def deployer(name: str, version: str, env: str, strategy: str) -> tuple[bool, str]:
        calls.append((name, env, strategy))
        return env == "staging", f"{env} {strategy}"

    result = ModelCIPipeline(deployer=deployer).run_full_pipeline(
        model_path="models/task_classifier.pkl",
        model_name="deployed",
        test_data_path="data/test.csv",
        validation_metrics={"accuracy": 0.8},
    )
    assert [s.status.value for s in result.stages][-3:] == ["passed", "passed", "failed"]
    assert calls[-1] == ("deployed", "production", "canary")


def test_bad_input_is_a_failed_stage_not_a_traceback(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    from mlops_actions.ci.model_ci_pipeline import ModelCIPipeline

    result = ModelCIPipeline().run_full_pipeline(
        model_path="models/missing.pkl", model_name="x", test_data_path="data/test.csv", validation_metrics={}
    )
    assert result.stage("unit_tests").status == "failed" and "not found" in result.stage("unit_tests").message
    assert result["status"] == "failed"
