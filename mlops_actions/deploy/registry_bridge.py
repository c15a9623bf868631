"""The registry calls deploy needs: semver -> model URI, and aliases.

Uses the registry package's MLflow adapter (``mlops_actions.registry.mlflow_registry.get_registry``)
when it is present; until then a minimal MLflow client that follows the same
conventions (semver in the tag ``mlops.semver``, aliases per environment).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from mlops_actions.errors import RegistryError
from mlops_actions.registry.interface import SEMVER_TAG, ModelVersion

__all__ = ["DeployRegistry", "get_deploy_registry"]


class DeployRegistry(Protocol):
    def get(self, name: str, version: str) -> ModelVersion: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...


class _MlflowMinimal:
    def __init__(self) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()

    def _find(self, name: str, version: str) -> Any:
        try:
            found = self.client.search_model_versions(f"name = '{name}'")
        except Exception as exc:
            raise RegistryError(f"MLflow search for {name!r} failed: {exc}",
                                hint="check MLFLOW_TRACKING_URI") from None
        for mv in found:
            if mv.tags.get(SEMVER_TAG) == version:
                return mv
        known = sorted(mv.tags.get(SEMVER_TAG, f"#{mv.version}") for mv in found)
        raise RegistryError(f"model {name!r} has no version {version!r} (tag {SEMVER_TAG}); "
                            f"versions: {', '.join(known) or 'none'}",
                            hint="register it first (mlops-actions register) or fix the pin")

    def get(self, name: str, version: str) -> ModelVersion:
        mv = self._find(name, version)
        return ModelVersion(name=name, version=version, registry_version=str(mv.version),
                            source=str(mv.source), run_id=mv.run_id, tags=dict(mv.tags))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        mv = self._find(name, version)
        try:
            self.client.set_registered_model_alias(name, alias, str(mv.version))
        except Exception as exc:
            raise RegistryError(f"setting alias {alias!r} of {name!r} failed: {exc}") from None

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self.client.delete_registered_model_alias(name, alias)
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower():
                return
            raise RegistryError(f"deleting alias {alias!r} of {name!r} failed: {exc}") from None


def get_deploy_registry(repo_root: str | Path = ".") -> DeployRegistry:
    """The registry adapter (MLFLOW_TRACKING_URI, else the embedded SQLite under ``repo_root``)."""
    try:
        module = importlib.import_module("mlops_actions.registry.mlflow_registry")
    except ImportError:
        return _MlflowMinimal()
    registry: DeployRegistry = module.get_registry(repo_root=repo_root)
    # The gateway loads ``models:/NAME/N`` through MLflow's fluent API: point it at the same
    # registry (the embedded SQLite under the repo when MLFLOW_TRACKING_URI is unset).
    registry.activate()  # type: ignore[attr-defined]
    return registry
