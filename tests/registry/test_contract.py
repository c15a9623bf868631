"""The ModelRegistry contract, run against every backend (memory, embedded MLflow,
``mlflow server`` on SQLite and on PostgreSQL) so the fake stays honest."""

from __future__ import annotations

import json

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.errors import EXIT_BAD_INPUT, RegistryError
from mlops_actions.registry.interface import (
    ARCHIVED_TAG,
    SEMVER_TAG,
    STAGE_TAG,
    RegistryNotFound,
    resolve,
)
from mlops_actions.registry.model_registry import get_model_registry
from tests.registry.conftest import Backend, unique


def test_first_version_is_1_0_0_with_metadata(backend: Backend) -> None:
    reg, name = backend.registry, unique()
    mv = reg.register(name, backend.sources["base"],
                      metadata={"accuracy": 0.85, "training_data": "data/train.csv", "algorithm": "lr"})
    assert (mv.name, mv.version) == (name, "1.0.0")
    assert mv.tags[SEMVER_TAG] == "1.0.0"
    assert mv.metadata == {"accuracy": "0.85", "training_data": "data/train.csv", "algorithm": "lr"}
    assert "accuracy=0.85" in mv.description
    got = reg.get(name, "1.0.0")
    assert got.registry_version == mv.registry_version
    assert got.metadata == mv.metadata
    assert got.uri == f"models:/{name}/{mv.registry_version}"
    assert [v.version for v in reg.list_versions(name)] == ["1.0.0"]


def test_semver_follows_the_signature_and_bump(backend: Backend) -> None:
    reg, name, src = backend.registry, unique(), backend.sources
    assert reg.register(name, src["base"]).version == "1.0.0"
    assert reg.register(name, src["retrained"]).version == "1.1.0"  # same signature: minor
    assert reg.register(name, src["renamed"]).version == "2.0.0"  # x2 -> x3: major
    assert reg.register(name, src["renamed"], bump="patch").version == "2.0.1"
    assert reg.register(name, src["base"], bump="minor").version == "2.1.0"  # bump overrides
    assert reg.register(name, src["base"], version="5.0.0-rc.1").version == "5.0.0-rc.1"
    listed = reg.list_versions(name)
    assert [v.version for v in listed] == ["1.0.0", "1.1.0", "2.0.0", "2.0.1", "2.1.0", "5.0.0-rc.1"]
    assert [int(v.registry_version) for v in listed] == sorted(int(v.registry_version) for v in listed)
    assert all(v.created_at > 0 for v in listed)


def test_duplicate_and_bad_semver_are_refused(backend: Backend) -> None:
    reg, name = backend.registry, unique()
    reg.register(name, backend.sources["base"])
    with pytest.raises(RegistryError, match=r"already has version '1.0.0'") as err:
        reg.register(name, backend.sources["retrained"], version="1.0.0")
    assert exit_code_for(err.value) == EXIT_BAD_INPUT
    with pytest.raises(RegistryError, match=r"not a semantic version") as err:
        reg.register(name, backend.sources["retrained"], version="1.0")
    assert exit_code_for(err.value) == EXIT_BAD_INPUT
    assert [v.version for v in reg.list_versions(name)] == ["1.0.0"]


def test_not_found_lists_what_exists(backend: Backend) -> None:
    reg, name = backend.registry, unique()
    reg.register(name, backend.sources["base"])
    reg.register(name, backend.sources["retrained"])
    with pytest.raises(RegistryNotFound) as err:
        reg.get(name, "9.9.9")
    assert exit_code_for(err.value) == EXIT_BAD_INPUT
    assert f"model {name!r} has no version '9.9.9'; versions that exist: 1.0.0, 1.1.0" in str(err.value)
    missing = unique("missing")
    with pytest.raises(RegistryNotFound, match=f"registered model '{missing}' does not exist"):
        reg.get(missing, "1.0.0")
    with pytest.raises(RegistryNotFound, match=r"does not exist"):
        reg.aliases(missing)
    assert reg.list_versions(missing) == []


def test_aliases_set_move_read_delete(backend: Backend) -> None:
    reg, name = backend.registry, unique()
    reg.register(name, backend.sources["base"])
    reg.register(name, backend.sources["retrained"])
    assert reg.aliases(name) == {}
    assert reg.get_alias(name, "staging") is None
    reg.set_alias(name, "staging", "1.0.0")
    reg.set_alias(name, "production", "1.0.0")
    assert reg.aliases(name) == {"staging": "1.0.0", "production": "1.0.0"}
    reg.set_alias(name, "staging", "1.1.0")  # moving an alias
    assert reg.aliases(name) == {"staging": "1.1.0", "production": "1.0.0"}
    staged = reg.get_alias(name, "staging")
    assert staged is not None and staged.version == "1.1.0" and "staging" in staged.aliases
    assert reg.get(name, "1.0.0").aliases == ("production",)
    assert {v.version: v.aliases for v in reg.list_versions(name)} == {
        "1.0.0": ("production",), "1.1.0": ("staging",)}
    assert resolve(reg, name, "production").version == "1.0.0"
    assert resolve(reg, name, "1.1.0").version == "1.1.0"
    reg.delete_alias(name, "staging")
    reg.delete_alias(name, "staging")  # idempotent
    assert reg.aliases(name) == {"production": "1.0.0"}
    with pytest.raises(RegistryNotFound, match=r"has no alias 'staging'.*aliases set: production -> 1.0.0"):
        resolve(reg, name, "staging")
    with pytest.raises(RegistryNotFound, match=r"has no version '3.0.0'"):
        reg.set_alias(name, "staging", "3.0.0")
    with pytest.raises(RegistryError, match=r"invalid alias 'v3'"):
        reg.set_alias(name, "v3", "1.0.0")


def test_archive_drops_aliases_and_tags(backend: Backend) -> None:
    reg, name = backend.registry, unique()
    reg.register(name, backend.sources["base"])
    reg.register(name, backend.sources["retrained"])
    reg.set_alias(name, "production", "1.0.0")
    reg.set_alias(name, "staging", "1.1.0")
    reg.archive(name, "1.0.0")
    archived = reg.get(name, "1.0.0")
    assert archived.archived and archived.tags[ARCHIVED_TAG] == "true"
    assert archived.stage == "archived" and archived.aliases == ()
    assert reg.aliases(name) == {"staging": "1.1.0"}
    assert not reg.get(name, "1.1.0").archived


def test_tags_on_versions_and_models(backend: Backend) -> None:
    reg, name = backend.registry, unique()
    reg.register(name, backend.sources["base"])
    reg.set_version_tag(name, "1.0.0", STAGE_TAG, "staging")
    assert reg.get(name, "1.0.0").stage == "staging"
    assert reg.model_tags(name) == {}
    reg.set_model_tag(name, "team", "ml")
    assert reg.model_tags(name) == {"team": "ml"}


def test_seed_facade_promote_and_ab_test(backend: Backend) -> None:
    facade = get_model_registry(registry=backend.registry)
    name = unique()
    v1 = facade.register_model(name, backend.sources["base"], {"accuracy": 0.85})
    v2 = facade.register_model(model_name=name, model_path=backend.sources["retrained"],
                               metadata={"accuracy": 0.9})
    assert (v1, v2) == ("1.0.0", "1.1.0")
    facade.promote_to_stage(name, v1, "production")
    facade.promote_to_stage(name, v2, "production")  # moves the alias; the old one loses the stage
    assert facade.get_stage_version(name, "production") == "1.1.0"
    assert facade.get_version(name, "1.0.0")["stage"] == "none"
    assert facade.get_version(name, "production")["stage"] == "production"
    config = facade.setup_ab_test(model_name=name, version_a=v1, version_b=v2, traffic_split=0.3)
    assert (config["version_a"], config["version_b"], config["traffic_split"]) == ("1.0.0", "1.1.0", 0.3)
    stored = json.loads(backend.registry.model_tags(name)["mlops.ab_test"])
    assert stored["version_b"] == "1.1.0" and stored["traffic_split"] == 0.3
    assert facade.get_ab_test(name)["version_a"] == "1.0.0"  # type: ignore[index]
    with pytest.raises(RegistryError, match=r"traffic_split 1.5"):
        facade.setup_ab_test(name, v1, v2, 1.5)
    with pytest.raises(RegistryNotFound, match=r"no version '1.2.0'"):
        facade.setup_ab_test(name, v1, "1.2.0", 0.5)
    with pytest.raises(RegistryError, match=r"unknown stage 'prod'"):
        facade.promote_to_stage(name, v1, "prod")
    facade.promote_to_stage(name, v1, "archived")
    assert facade.get_version(name, v1)["archived"] is True
    assert [v["version"] for v in facade.list_versions(name)] == ["1.0.0", "1.1.0"]
