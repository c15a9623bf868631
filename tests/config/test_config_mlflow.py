"""`check` online against the real MLflow registry adapter (embedded SQLite, no server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from config_helpers import VALID

from mlops_actions.cli import main
from mlops_actions.registry.memory import MemoryRegistry


def _saved_model(tmp_path: Path) -> Path:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    target = tmp_path / "saved"
    mlflow.sklearn.save_model(model, target)
    return target


@pytest.mark.slow
def test_check_resolves_pins_in_embedded_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_actions.registry.mlflow_registry import get_registry

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    repo = tmp_path / "repo"
    shutil.copytree(VALID, repo)
    registry = get_registry(repo_root=repo)  # the embedded default: SQLite under repo/.mlops/
    source = str(_saved_model(tmp_path))
    for version in ("1.1.0", "1.2.0"):
        registry.register("breast-cancer-classifier", source, version=version)
    registry.register("diabetes-regressor", source, version="0.3.1")

    assert main(["-C", str(repo), "check"]) == 0
    assert "every pin resolved in the registry" in capsys.readouterr().out

    staging = repo / "environments" / "staging.yaml"
    staging.write_text(staging.read_text().replace('version: "1.2.0"', 'version: "1.3.0"'))
    assert main(["-C", str(repo), "check"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        'error: environments/staging.yaml:7:14: models.cancer.version: version "1.3.0" of registered model '
        "`breast-cancer-classifier` does not exist; versions that exist: 1.1.0, 1.2.0",
        "  hint: register it first (mlops-actions register) or pin an existing version",
    ]


def test_rules_accept_the_registry_areas_in_memory_fake(repo_dir: Path) -> None:
    from mlops_actions.config.loader import load_repo
    from mlops_actions.config.rules import check_registry

    registry = MemoryRegistry()
    for version in ("1.1.0", "1.2.0"):
        registry.register("breast-cancer-classifier", f"runs:/r/{version}", version=version)
    errors = check_registry(load_repo(repo_dir), registry)  # diabetes-regressor is not registered at all
    assert [f"{e.location}: {e.message}" for e in errors] == [
        'environments/production.yaml:19:14: models.diabetes.version: version "0.3.1" of registered model '
        "`diabetes-regressor` does not exist; versions that exist: none",
        'environments/staging.yaml:22:14: models.diabetes.version: version "0.3.1" of registered model '
        "`diabetes-regressor` does not exist; versions that exist: none",
    ]


@pytest.mark.slow
def test_check_against_a_down_server_is_one_line_and_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from tests.conftest import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    assert main(["-C", str(VALID), "check", "--tracking-uri", uri]) == 3
    elapsed = time.monotonic() - start
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"error: cannot reach MLflow at {uri}")
    assert len([line for line in lines if line.startswith("error:")]) == 1
    assert elapsed < 90, f"took {elapsed:.0f} s"
