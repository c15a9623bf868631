"""The brief's registry snippets run as written, on the embedded default, with real pickled models."""

from __future__ import annotations

import json
import pickle
import runpy
from pathlib import Path

import joblib
import pytest

from mlops_actions.registry.mlflow_registry import get_registry
from tests.conftest import ASSETS
from tests.registry.conftest import fit_model


def _pickle(path: Path, c: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model, _ = fit_model(("x1", "x2"), c)
    with path.open("wb") as f:
        pickle.dump(model, f)


def test_registry_snippet_runs_as_written(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_dir)
    _pickle(repo_dir / "models" / "v0.pkl", c=0.1)
    _pickle(repo_dir / "models" / "v1.pkl")
    # The snippet A/B-tests 1.0.0 against 1.1.0: those exist before it runs.
    setup = get_registry(repo_root=repo_dir)
    assert setup.register("task_classifier", "models/v0.pkl").version == "1.0.0"
    assert setup.register("task_classifier", "models/v0.pkl").version == "1.1.0"

    scope = runpy.run_path(str(ASSETS / "registry" / "seed_usage.py"))

    assert scope["version"] == "1.2.0"  # a semver string, the next one
    reg = get_registry(repo_root=repo_dir)
    mv = reg.get("task_classifier", "1.2.0")
    assert mv.metadata == {"accuracy": "0.85", "training_data": "data/train.csv",
                           "algorithm": "transformer"}
    assert reg.aliases("task_classifier") == {"production": "1.2.0"}
    assert mv.stage == "production"
    ab = json.loads(reg.model_tags("task_classifier")["mlops.ab_test"])
    assert (ab["version_a"], ab["version_b"], ab["traffic_split"]) == ("1.0.0", "1.1.0", 0.5)
    assert (repo_dir / "mlflow.db").is_file()
    # the registered pickle is a loadable model
    model = reg.load_pyfunc("task_classifier", "production")
    _, x = fit_model(("x1", "x2"))
    assert len(model.predict(x)) == len(x)  # type: ignore[arg-type]


def test_the_readmes_python_example_runs_as_written(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.readme_examples import example

    monkeypatch.chdir(repo_dir)
    _pickle(repo_dir / "models" / "v0.pkl", c=0.1)
    _pickle(repo_dir / "models" / "v1.pkl")
    setup = get_registry(repo_root=repo_dir)  # the A/B line names 1.0.0 and 1.1.0: they exist first
    setup.register("task_classifier", "models/v0.pkl")
    setup.register("task_classifier", "models/v0.pkl")
    snippet = repo_dir / "readme_example.py"
    snippet.write_text(example("python-api"), encoding="utf-8")

    scope = runpy.run_path(str(snippet))

    assert scope["version"] == "1.2.0"
    reg = get_registry(repo_root=repo_dir)
    assert reg.aliases("task_classifier") == {"production": "1.2.0"}
    ab = json.loads(reg.model_tags("task_classifier")["mlops.ab_test"])
    assert (ab["version_a"], ab["version_b"], ab["traffic_split"]) == ("1.0.0", "1.1.0", 0.5)


def test_workflow_snippets_run_as_written(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_dir)
    _pickle(repo_dir / "models" / "model.pkl")
    model_a, _ = fit_model(("x1", "x2"), 0.1)
    model_b, _ = fit_model(("x1", "x2"), 1.0)
    joblib.dump(model_a, repo_dir / "path_a")
    joblib.dump(model_b, repo_dir / "path_b")
    scope = runpy.run_path(str(ASSETS / "registry" / "seed_workflow.py"), init_globals={
        "metrics": {"accuracy": 0.91, "f1": 0.88},
        "metadata_a": {"accuracy": 0.9}, "metadata_b": {"accuracy": 0.93}})
    assert scope["version"] == "1.0.0"
    assert (scope["version_a"], scope["version_b"]) == ("1.0.0", "1.1.0")
    facade = scope["registry"]
    assert facade.get_ab_test("model")["traffic_split"] == 0.5
    assert facade.get_stage_version("model", "production") == "1.1.0"
    assert facade.get_version("my_model", "1.0.0")["metadata"] == {"accuracy": "0.91", "f1": "0.88"}


def test_not_a_model_is_a_clear_error(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_actions.registry.interface import RegistryNotFound
    from mlops_actions.registry.model_registry import get_model_registry

    monkeypatch.chdir(repo_dir)
    (repo_dir / "notes.txt").write_text("not a pickle")
    joblib.dump({"a": 1}, repo_dir / "dict.pkl")
    registry = get_model_registry()
    with pytest.raises(RegistryNotFound, match=r"cannot load notes.txt as a pickled model"):
        registry.register_model("m", "notes.txt", {})
    with pytest.raises(RegistryNotFound, match=r"holds a dict, not a model with predict\(\)"):
        registry.register_model("m", "dict.pkl", {})
    with pytest.raises(RegistryNotFound, match=r"the path does not exist"):
        registry.register_model("m", "models/missing.pkl", {})
