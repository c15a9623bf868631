"""staging-check end to end: a real MLflow registry (SQLite), a real sklearn model, the real
gateway on 127.0.0.1, rows replayed over HTTP and compared with offline predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_actions.cli import main

pytestmark = pytest.mark.slow

MODEL_YAML = """\
name: iris_clf
task: multiclass_classification
data:
  test: test.csv
  label: target
"""


def _register(tmp: Path) -> tuple[str, Any]:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    data = load_iris(as_frame=True)
    X = data.frame[data.feature_names].copy()
    X.columns = ["a", "b", "c", "d"]
    model = LogisticRegression(max_iter=300).fit(X, data.target)
    exp = mlflow.create_experiment("staging", artifact_location=str(tmp / "artifacts"))
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)),
                                        pip_requirements=["scikit-learn"])
    client = MlflowClient(uri)
    client.create_registered_model("iris_clf")
    client.create_model_version("iris_clf", info.model_uri, run_id=info.run_id,
                                tags={"mlops.semver": "1.0.0"})
    frame = X.assign(target=data.target)
    return uri, frame


def test_staging_check_serves_and_compares(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    uri, frame = _register(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    (repo / "models" / "iris").mkdir(parents=True)
    (repo / "models" / "iris" / "model.yaml").write_text(MODEL_YAML)
    frame.to_csv(repo / "models" / "iris" / "test.csv", index=False)
    (repo / "environments" / "staging.yaml").write_text('models:\n  iris:\n    version: "1.0.0"\n')
    md = tmp_path / "staging.md"
    code = main(["-C", str(repo), "staging-check", "--env", "staging", "--rows", "20",
                 "--latency-budget-ms", "0.001", "--markdown", str(md)])
    out = capsys.readouterr().out
    assert "PASSED       health" in out
    assert "PASSED       errors   iris" in out and "20 of 20 requests answered 200" in out
    assert "PASSED       parity   iris" in out
    assert "FAILED       latency  iris" in out  # a budget of 1 microsecond cannot be met
    assert code == 1
    assert "| ❌ failed | latency | iris |" in md.read_text()
