"""MLflow-specific behaviour of the adapter: call budget, sources, the embedded layout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
    # the embedded layout: everything under <repo>/.mlops
    assert (repo_dir / ".mlops" / "mlflow.db").is_file()
    assert any((repo_dir / ".mlops" / "artifacts").rglob("MLmodel"))
    assert not (repo_dir / "mlruns").exists() and not (repo_dir / "mlflow.db").exists()


def test_tracking_uri_env_wins_over_embedded(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = repo_dir / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    reg = get_registry(repo_root=repo_dir)
    assert reg.tracking_uri == f"sqlite:///{other}" and not reg.embedded
    explicit = get_registry(f"sqlite:///{repo_dir / 'explicit.db'}", repo_root=repo_dir)
    assert explicit.tracking_uri.endswith("explicit.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    embedded = get_registry(repo_root=repo_dir)
    assert embedded.embedded and embedded.tracking_uri == f"sqlite:///{repo_dir.resolve()}/.mlops/mlflow.db"


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
