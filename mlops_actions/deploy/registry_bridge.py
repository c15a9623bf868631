"""The registry calls deploy needs: semver -> model URI, and aliases.

Uses the registry package's MLflow adapter (``mlops_actions.registry.mlflow_registry.get_registry``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mlops_actions.registry.interface import ModelVersion

__all__ = ["DeployRegistry", "get_deploy_registry"]


class DeployRegistry(Protocol):
    def get(self, name: str, version: str) -> ModelVersion: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...


def get_deploy_registry(repo_root: str | Path = ".") -> DeployRegistry:
    """The registry adapter (MLFLOW_TRACKING_URI, else the embedded SQLite under ``repo_root``)."""
    from mlops_actions.registry.mlflow_registry import get_registry

    registry = get_registry(repo_root=repo_root)
    # The gateway loads ``models:/NAME/N`` through MLflow's fluent API: point it at the same
    # registry (the embedded SQLite under the repo when MLFLOW_TRACKING_URI is unset).
    registry.activate()
    return registry
