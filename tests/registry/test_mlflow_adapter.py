"""MLflow-specific behaviour of the adapter: call budget, sources, the embedded layout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.errors import RegistryError
from mlops_actions.registry.interface import RegistryNotFound
from mlops_actions.registry.mlflow_registry import get_registry
from tests.registry.conftest import Backend, fit_model, unique

SERVER = pytest.param("server_sqlite", marks=[pytest.mark.mlflow_server, pytest.mark.slow])


@pytest.fixture
def http_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every HTTP request MLflow's REST client makes, as 'METHOD endpoint'."""
    from mlflow.utils import rest_utils

    calls: list[str] = []
    real = rest_utils.http_request

    def counting(host_creds: object, endpoint: str, method: str, *args: object, **kwargs: object) -> object:
        calls.append(f"{method} {endpoint}")
        return real(host_creds, endpoint, method, *args, **kwargs)

    monkeypatch.setattr(rest_utils, "http_request", counting)
    yield calls


@pytest.mark.parametrize("backend", [SERVER], indirect=True)
def test_plan_reads_aliases_in_at_most_two_http_calls(backend: Backend, http_calls: list[str]) -> None:
    reg, name = backend.registry, unique()
    for _ in range(3):
        reg.register(name, backend.sources["base"])
    reg.set_alias(name, "staging", "1.2.0")
    reg.set_alias(name, "production", "1.1.0")
    http_calls.clear()
    assert reg.aliases(name) == {"staging": "1.2.0", "production": "1.1.0"}
    assert len(http_calls) <= 2, http_calls
    http_calls.clear()
    assert reg.get(name, "1.1.0").aliases == ("production",)
    assert len(http_calls) <= 2, http_calls


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_runs_uri_and_registered_model_uri_are_accepted(backend: Backend) -> None:
    import mlflow

    reg = backend.registry
    name = unique()
    first = reg.register(name, backend.sources["base"])
    logged = mlflow.MlflowClient(reg.tracking_uri).get_logged_model(  # type: ignore[attr-defined]
        backend.sources["base"].removeprefix("models:/"))
    via_run = reg.register(name, f"runs:/{logged.source_run_id}/model")
    assert via_run.version == "1.1.0" and via_run.run_id == logged.source_run_id
    assert first.metadata == {}  # its run logged no metrics
    with reg.logging_run("with-metrics"):  # type: ignore[attr-defined]
        mlflow.log_metric("accuracy", 0.93)
        model, _ = fit_model(("x1", "x2"))
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    with_metrics = reg.register(name, info.model_uri, metadata={"owner": "ml"})
    assert with_metrics.metadata == {"accuracy": "0.93", "owner": "ml"}  # the run's metrics by default
    copy = reg.register(unique("copy"), first.uri)  # models:/<name>/<version>
    assert copy.version == "1.0.0"
    with pytest.raises(RegistryNotFound, match=r"has no model at 'nope'"):
        reg.register(name, f"runs:/{logged.source_run_id}/nope")


def test_saved_model_directory_is_logged_then_registered(repo_dir: Path) -> None:
    import mlflow
    from mlflow.models import infer_signature

    model, x = fit_model(("x1", "x2"))
    saved = repo_dir / "saved_model"
    mlflow.sklearn.save_model(model, saved, signature=infer_signature(x, model.predict(x)),  # type: ignore[attr-defined]
                              pip_requirements=["scikit-learn"])
    reg = get_registry(repo_root=repo_dir)
    mv = reg.register("saved", str(saved), metadata={"from": "dir"})
    assert mv.version == "1.0.0" and mv.run_id
    assert "mlops.signature" in mv.tags  # kept for the next version's major/minor decision
    predictions = reg.load_pyfunc("saved", "1.0.0").predict(x)
    assert len(predictions) == len(x)
    import os

    with reg.activated():  # the fluent API sees this registry, then is restored
        assert len(mlflow.pyfunc.load_model(mv.uri).predict(x)) == len(x)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    # the embedded layout is MLflow's own default, anchored at the repository root
    assert (repo_dir / "mlflow.db").is_file()
    assert any((repo_dir / "mlruns").rglob("MLmodel"))
    assert not (repo_dir / ".mlops" / "mlflow.db").exists()


def test_tracking_uri_env_wins_over_embedded(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = repo_dir / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    reg = get_registry(repo_root=repo_dir)
    assert reg.tracking_uri == f"sqlite:///{other}" and not reg.embedded
    explicit = get_registry(f"sqlite:///{repo_dir / 'explicit.db'}", repo_root=repo_dir)
    assert explicit.tracking_uri.endswith("explicit.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    embedded = get_registry(repo_root=repo_dir)
    assert embedded.embedded and embedded.tracking_uri == f"sqlite:///{repo_dir.resolve()}/mlflow.db"


TRAIN = """
import mlflow, mlflow.sklearn
from sklearn.linear_model import LogisticRegression
model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
with mlflow.start_run() as run:  # no tracking URI: MLflow's default store
    mlflow.sklearn.log_model(model, name="model")
print(run.info.run_id)
"""


@pytest.mark.slow
def test_a_run_logged_with_mlflows_defaults_is_found_by_register(repo_dir: Path) -> None:
    # before: the training script logged to ./mlflow.db, register looked in .mlops/mlflow.db and
    # said "not found" without saying where it had looked
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    (repo_dir / "train.py").write_text(TRAIN)
    trained = subprocess.run([sys.executable, "train.py"], cwd=repo_dir, env=env, capture_output=True,
                             text=True, timeout=300, check=True)
    run_id = trained.stdout.strip().splitlines()[-1]
    registered = subprocess.run(
        [sys.executable, "-m", "mlops_actions", "register", "churn", "--source", f"runs:/{run_id}/model"],
        cwd=repo_dir, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert registered.returncode == 0, registered.stderr
    assert get_registry(repo_root=repo_dir).get("churn", "1.0.0").run_id == run_id


def test_not_found_errors_name_the_tracking_uri(repo_dir: Path) -> None:
    reg = get_registry(repo_root=repo_dir)
    where = f"(looked in MLflow at sqlite:///{repo_dir.resolve()}/mlflow.db (the default, shared with MLflow"
    with pytest.raises(RegistryNotFound) as info:
        reg.get("nope", "1.0.0")
    assert where in info.value.message
    model, _ = fit_model(("x1", "x2"))
    saved = repo_dir / "m.pkl"
    import pickle

    saved.write_bytes(pickle.dumps(model))
    reg.register("there", str(saved))
    for call in (lambda: reg.get("there", "9.9.9"), lambda: reg.register("x", "runs:/0123abcd/model")):
        with pytest.raises(RegistryNotFound) as info:
            call()
        assert f"MLflow at sqlite:///{repo_dir.resolve()}/mlflow.db" in info.value.message, info.value.message


def test_a_registry_left_at_the_old_default_says_how_to_move_it(repo_dir: Path) -> None:
    (repo_dir / ".mlops").mkdir(exist_ok=True)
    (repo_dir / ".mlops" / "mlflow.db").write_bytes(b"SQLite format 3\x00")
    with pytest.raises(RegistryError) as info:
        get_registry(repo_root=repo_dir)
    assert exit_code_for(info.value) == 2 and "the old default" in info.value.message
    root = repo_dir.resolve()
    assert f"mv {root}/.mlops/mlflow.db {root}/mlflow.db" in (info.value.hint or "")


@pytest.mark.slow
def test_two_registries_in_threads_do_not_cross(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fluent MLflow state is process-global: registrations through it are serialized."""
    import pickle
    import threading

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    model, _ = fit_model(("x1", "x2"))
    registries = {}
    for key in ("a", "b"):
        (tmp_path / key).mkdir()
        with (tmp_path / key / "m.pkl").open("wb") as f:
            pickle.dump(model, f)
        registries[key] = get_registry(repo_root=tmp_path / key)
    errors: list[BaseException] = []

    def work(key: str) -> None:
        try:
            for _ in range(2):
                registries[key].register(f"model_{key}", str(tmp_path / key / "m.pkl"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in registries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    for key, reg in registries.items():
        other = "b" if key == "a" else "a"
        assert [v.version for v in reg.list_versions(f"model_{key}")] == ["1.0.0", "1.1.0"]
        assert reg.list_versions(f"model_{other}") == []
