"""Helpers of the config tests: asset paths and an in-memory ModelRegistry (with a down variant).

A module with a unique name, so tests import it safely whatever other conftest.py files exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from mlops_actions.errors import RegistryError, RegistryNotFound
from mlops_actions.registry.interface import Bump, ModelVersion

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "config"
VALID = ASSETS / "valid"
BROKEN = ASSETS / "broken"


class FakeRegistry:
    """The ModelRegistry port in memory: versions by semver, aliases, tags, archive flags."""

    def __init__(self, versions: Mapping[str, list[str]] | None = None) -> None:
        self.versions: dict[str, list[ModelVersion]] = {}
        self.model_tags: dict[str, dict[str, str]] = {}
        self.calls: list[str] = []
        for name, semvers in (versions or {}).items():
            for semver in semvers:
                self.register(name, f"runs:/r/{semver}", version=semver)

    def _find(self, name: str, version: str) -> int:
        for index, mv in enumerate(self.versions.get(name, [])):
            if mv.version == version:
                return index
        existing = ", ".join(v.version for v in self.versions.get(name, [])) or "none"
        raise RegistryNotFound(f"version {version} of {name} not found; versions: {existing}")

    def register(self, name: str, source: str, *, metadata: Mapping[str, object] | None = None,
                 bump: Bump | None = None, version: str | None = None) -> ModelVersion:
        existing = self.versions.setdefault(name, [])
        mv = ModelVersion(name=name, version=version or f"{len(existing) + 1}.0.0",
                          registry_version=str(len(existing) + 1), source=source)
        existing.append(mv)
        return mv

    def get(self, name: str, version: str) -> ModelVersion:
        return self.versions[name][self._find(name, version)]

    def list_versions(self, name: str) -> list[ModelVersion]:
        self.calls.append(f"list_versions {name}")
        if name not in self.versions:
            raise RegistryNotFound(f"registered model {name!r} not found")  # as a real registry types it
        return list(self.versions[name])

    def set_alias(self, name: str, alias: str, version: str) -> None:
        for n, mv in enumerate(self.versions[name]):
            aliases = tuple(a for a in mv.aliases if a != alias)
            if mv.version == version:
                aliases += (alias,)
            self.versions[name][n] = replace(mv, aliases=aliases)

    def delete_alias(self, name: str, alias: str) -> None:
        for n, mv in enumerate(self.versions[name]):
            self.versions[name][n] = replace(mv, aliases=tuple(a for a in mv.aliases if a != alias))

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        return next((mv for mv in self.versions.get(name, []) if alias in mv.aliases), None)

    def aliases(self, name: str) -> dict[str, str]:
        return {a: mv.version for mv in self.versions.get(name, []) for a in mv.aliases}

    def archive(self, name: str, version: str) -> None:
        index = self._find(name, version)
        self.versions[name][index] = replace(self.versions[name][index], archived=True)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self.model_tags.setdefault(name, {})[key] = value


class DownRegistry(FakeRegistry):
    """A registry that cannot be reached."""

    def list_versions(self, name: str) -> list[ModelVersion]:
        raise RegistryError("cannot reach MLflow at http://127.0.0.1:9/ after 2 s",
                            hint="is the tracking server running?")


def make_registry() -> FakeRegistry:
    registry = FakeRegistry({
        "breast-cancer-classifier": ["1.0.0", "1.1.0", "1.2.0"],
        "diabetes-regressor": ["0.3.0", "0.3.1"],
    })
    registry.archive("breast-cancer-classifier", "1.0.0")
    return registry
