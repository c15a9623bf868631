"""Reads of a SQLite registry without MLflow (registry/sqlite_read.py) answer what MLflow answers.

``serve --env`` resolves its pins and loads ``models:/`` URIs with these reads (issue 19 item 6:
MLflow's stores take seconds to build). Each case below sets the registry up through MLflow
itself, then compares the direct read with MLflow's own answer in the same state: semver tags,
versions registered before the tag, two versions carrying one semver, deleted versions, aliases
(moved and removed), descriptions, archived versions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mlops_actions.registry.interface import ModelVersion, RegistryNotFound
from mlops_actions.registry.mlflow_registry import MlflowRegistry, get_registry
from mlops_actions.registry.sqlite_read import find_semver, sqlite_path, version_location
from mlops_actions.serving.pyfunc import sqlite_registry_artifacts
from tests.registry.conftest import fit_model, unique


@dataclasses.dataclass
class Setup:
    registry: MlflowRegistry
    client: Any  # mlflow.MlflowClient
    db: Path
    source: str  # a logged model URI (models:/m-...)
    other: str  # another one (other artifacts)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    import mlflow
    from mlflow.models import infer_signature

    root = tmp_path_factory.mktemp("sqlite_read_repo")
    registry = get_registry(f"sqlite:///{root / 'mlflow.db'}", repo_root=root)
    sources = []
    for c in (1.0, 0.1):
        model, x = fit_model(("x1", "x2"), c)
        with registry.logging_run(run_name=f"c={c}"):
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"],
                                            signature=infer_signature(x, model.predict(x)))  # type: ignore[attr-defined]
        sources.append(info.model_uri)
    db = sqlite_path(registry.registry_uri)
    assert db == (root / "mlflow.db").absolute()
    client = mlflow.MlflowClient(registry.tracking_uri, registry_uri=registry.registry_uri)
    return Setup(registry, client, db, *sources)


def through_mlflow(reg: MlflowRegistry, name: str, version: str) -> ModelVersion:
    """What ``get`` answered before the direct read: MLflow's search, then the registered model's aliases."""
    mv = reg._find(name, version)
    return reg._convert(mv, reg._registered(name).aliases or {})


def test_get_reads_what_mlflow_answers(setup: Setup) -> None:
    reg, client, name = setup.registry, setup.client, unique()
    reg.register(name, setup.source, metadata={"accuracy": 0.91})  # 1.0.0
    reg.register(name, setup.source, bump="patch")  # 1.0.1
    reg.register(name, setup.source, bump="major")  # 2.0.0
    reg.set_alias(name, "production", "1.0.1")
    reg.set_alias(name, "staging", "1.0.1")
    reg.set_alias(name, "canary", "2.0.0")
    reg.archive(name, "1.0.0")
    client.update_model_version(name, "3", description="the third one")
    for version in ("1.0.0", "1.0.1", "2.0.0"):
        direct = reg._get_from_sqlite(name, version)
        assert direct is not None, version
        assert direct == through_mlflow(reg, name, version)
        assert reg.get(name, version) == direct
    assert reg.get(name, "1.0.1").aliases == ("production", "staging")
    assert reg.get(name, "1.0.0").archived and reg.get(name, "1.0.0").metadata == {"accuracy": "0.91"}


def test_a_version_registered_without_a_semver_tag_is_its_legacy_0_0_n(setup: Setup) -> None:
    client, name = setup.client, unique()
    client.create_registered_model(name)
    with setup.registry._fluent():  # MLflow resolves a models:/m-... source with its fluent client
        client.create_model_version(name, setup.source)  # MLflow version 1, no mlops.semver tag
    direct = setup.registry._get_from_sqlite(name, "0.0.1")
    assert direct is not None and direct.registry_version == "1" and direct.version == "0.0.1"
    assert direct == through_mlflow(setup.registry, name, "0.0.1")


def test_two_versions_carrying_one_semver_resolve_to_the_lowest_as_mlflow_does(setup: Setup) -> None:
    client, name = setup.client, unique()
    client.create_registered_model(name)
    with setup.registry._fluent():
        for _ in range(3):
            client.create_model_version(name, setup.source, tags={"mlops.semver": "1.0.0"})
    client.delete_model_version(name, "1")  # deleted: invisible to both
    direct = setup.registry._get_from_sqlite(name, "1.0.0")
    assert direct is not None and direct.registry_version == "2"
    assert direct == through_mlflow(setup.registry, name, "1.0.0")


def test_what_the_direct_read_cannot_answer_goes_to_mlflow(setup: Setup) -> None:
    reg, name = setup.registry, unique()
    reg.register(name, setup.source)  # 1.0.0
    setup.client.delete_model_version(name, "1")
    assert reg._get_from_sqlite(name, "1.0.0") is None
    with pytest.raises(RegistryNotFound, match=r"1\.0\.0"):
        reg.get(name, "1.0.0")  # MLflow's not-found, naming what exists
    with pytest.raises(RegistryNotFound, match=r"not found|does not exist|no model"):
        reg.get(unique(), "1.0.0")


def test_model_uris_resolve_to_what_mlflow_resolves_now(setup: Setup) -> None:
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    reg, name = setup.registry, unique()
    reg.activate()  # MLflow resolves models:/ URIs in the registry its fluent API points at
    reg.register(name, setup.source)  # 1.0.0 -> MLflow version 1
    reg.register(name, setup.other)  # 1.1.0 -> 2, other artifacts
    reg.set_alias(name, "production", "1.0.0")
    for uri in (f"models:/{name}/1", f"models:/{name}/2", f"models:/{name}@production"):
        assert version_location(setup.db, uri) == ModelsArtifactRepository.get_underlying_uri(uri), uri
    first = version_location(setup.db, f"models:/{name}@production")
    reg.set_alias(name, "production", "1.1.0")  # the alias moves: the next read follows it
    moved = version_location(setup.db, f"models:/{name}@production")
    assert moved == ModelsArtifactRepository.get_underlying_uri(f"models:/{name}@production")
    assert moved == version_location(setup.db, f"models:/{name}/2") and moved != first
    reg.delete_alias(name, "production")
    assert version_location(setup.db, f"models:/{name}@production") is None  # MLflow raises its error
    for uri in (f"models:/{name}@latest", f"models:/{name}/9", f"models:/{unique()}/1", setup.source,
                "runs:/0123456789abcdef/model"):
        assert version_location(setup.db, uri) is None, uri


def test_the_loader_loads_the_directory_the_registry_names(setup: Setup) -> None:
    reg, name = setup.registry, unique()
    reg.register(name, setup.source)
    local = sqlite_registry_artifacts(f"models:/{name}/1", reg.registry_uri)
    assert local is not None and (local / "MLmodel").is_file()
    assert sqlite_registry_artifacts(f"models:/{name}/1", "http://127.0.0.1:5000") is None
    assert sqlite_registry_artifacts(f"models:/{name}/7", reg.registry_uri) is None


def test_files_that_are_not_an_mlflow_registry_answer_nothing(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             setup: Setup) -> None:
    import sqlite3

    missing = tmp_path / "none.db"
    assert find_semver(missing, "m", "1.0.0", "mlops.semver") is None and not missing.exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    assert find_semver(other, "m", "1.0.0", "mlops.semver") is None
    (tmp_path / "garbage.db").write_bytes(b"not a database at all" * 100)
    assert version_location(tmp_path / "garbage.db", "models:/m/1") is None
    name = unique()
    setup.registry.register(name, setup.source)
    assert find_semver(setup.db, name, "1.0.0", "mlops.semver") is not None
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")  # other workspaces: MLflow decides
    assert find_semver(setup.db, name, "1.0.0", "mlops.semver") is None


def test_sqlite_path_reads_sqlalchemys_url_forms() -> None:
    assert sqlite_path("sqlite:////abs/mlflow.db") == Path("/abs/mlflow.db")
    assert sqlite_path("sqlite:///rel/mlflow.db") == Path("rel/mlflow.db").absolute()
    assert sqlite_path("sqlite:////abs/my%20db.db") == Path("/abs/my db.db")
    for uri in ("sqlite://", "sqlite:///:memory:", "sqlite:////a.db?mode=ro", "postgresql://h/db",
                "http://127.0.0.1:5000", "databricks", "file:///tmp/mlruns"):
        assert sqlite_path(uri) is None, uri
