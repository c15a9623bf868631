"""``mlops-actions register``, ``versions``, ``resolve`` on the embedded default."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from mlops_actions.cli import main
from tests.registry.conftest import fit_model


@pytest.fixture
def repo(repo_dir: Path) -> Path:
    model, _ = fit_model(("x1", "x2"))
    (repo_dir / "artifacts").mkdir()
    with (repo_dir / "artifacts" / "model.pkl").open("wb") as f:
        pickle.dump(model, f)
    churn = repo_dir / "models" / "churn"
    churn.mkdir(parents=True)
    (churn / "model.yaml").write_text(
        "name: churn_model\ntask: binary_classification\ndata: {test: data/test.csv, label: y}\n")
    return repo_dir


def test_register_versions_resolve(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = str(repo)
    assert main(["-C", r, "register", "models/churn", "--source", "artifacts/model.pkl",
                 "--meta", "accuracy=0.91", "--meta", "training_data=data/train.csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("registered churn_model 1.0.0 (MLflow version 1, models:/churn_model/1)")
    assert main(["-C", r, "register", "churn", "--source", "artifacts/model.pkl", "--bump", "major",
                 "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert (created["model_name"], created["version"], created["registry_version"]) == \
        ("churn_model", "2.0.0", "2")

    from mlops_actions.registry.mlflow_registry import get_registry

    get_registry(repo_root=repo).set_alias("churn_model", "production", "1.0.0")

    assert main(["-C", r, "versions", "churn_model"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["VERSION", "MLFLOW", "ALIASES", "CREATED", "(UTC)", "RUN", "METRICS"]
    assert lines[1].split()[:3] == ["1.0.0", "1", "production"]
    assert lines[1].endswith("accuracy=0.91")
    assert lines[2].split()[:3] == ["2.0.0", "2", "-"]

    assert main(["-C", r, "versions", "models/churn", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in listed] == ["1.0.0", "2.0.0"]
    assert listed[0]["metadata"] == {"accuracy": "0.91", "training_data": "data/train.csv"}

    for ref in ("1.0.0", "production", "1"):
        assert main(["-C", r, "resolve", "churn_model", ref]) == 0
        assert capsys.readouterr().out.strip() == \
            "churn_model 1.0.0 = MLflow version 1 (models:/churn_model/1); aliases: production"


def test_errors_exit_2_with_the_choices(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = str(repo)
    assert main(["-C", r, "register", "churn", "--source", "artifacts/model.pkl"]) == 0
    capsys.readouterr()
    assert main(["-C", r, "resolve", "churn_model", "3.0.0"]) == 2
    assert "has no version '3.0.0'; versions that exist: 1.0.0" in capsys.readouterr().err
    assert main(["-C", r, "resolve", "churn_model", "staging"]) == 2
    assert "has no alias 'staging'" in capsys.readouterr().err
    assert main(["-C", r, "resolve", "churn_model", "7"]) == 2
    assert "no MLflow version 7; MLflow versions: 1 (1.0.0)" in capsys.readouterr().err
    assert main(["-C", r, "register", "churn", "--source", "artifacts/model.pkl", "--meta", "oops"]) == 2
    assert "--meta 'oops' is not KEY=VALUE" in capsys.readouterr().err
    assert main(["-C", r, "register", "churn", "--source", "artifacts/model.pkl",
                 "--version", "1.0.0"]) == 2
    assert "already has version '1.0.0'" in capsys.readouterr().err
    assert main(["-C", r, "versions", "nobody"]) == 0
    assert capsys.readouterr().out.strip() == "nobody: no versions registered"


def test_help_for_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("register", "versions", "resolve"):
        assert main([command, "--help"]) == 0
        assert "MLFLOW_TRACKING_URI" in capsys.readouterr().out


def test_register_and_versions_use_the_registered_name_of_a_model_directory(tmp_path: Path) -> None:
    # issue 16: one name, declared once in model.yaml, default the directory
    from mlops_actions.commands.registry import model_name

    (tmp_path / "models" / "churn").mkdir(parents=True)
    (tmp_path / "models" / "plain").mkdir(parents=True)
    spec = "task: binary_classification\ndata: {test: t.csv, label: y}\n"
    (tmp_path / "models" / "churn" / "model.yaml").write_text("registered_name: churn-classifier\n" + spec)
    (tmp_path / "models" / "plain" / "model.yaml").write_text(spec)
    assert model_name("churn", tmp_path) == "churn-classifier"
    assert model_name("models/churn", tmp_path) == "churn-classifier"
    assert model_name(str(tmp_path / "models" / "churn" / "model.yaml"), tmp_path) == "churn-classifier"
    assert model_name("plain", tmp_path) == "plain"  # default: the directory
    assert model_name("unknown", tmp_path) == "unknown"  # a registered name given as is
