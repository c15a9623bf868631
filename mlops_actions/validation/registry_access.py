"""How validation reaches the registry: the ModelRegistry port, read-only.

``open_registry`` returns the shared MLflow adapter
(``mlops_actions.registry.mlflow_registry.get_registry``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from mlops_actions.registry.interface import ModelVersion

__all__ = ["VersionSource", "artifact_location_for", "open_registry", "tracking_uri_for"]


class VersionSource(Protocol):
    """The two reads validation needs from :class:`ModelRegistry`."""

    def get(self, name: str, version: str) -> ModelVersion: ...

    def get_alias(self, name: str, alias: str) -> ModelVersion | None: ...


def tracking_uri_for(repo_root: str | Path) -> str:
    """``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///<repo>/mlflow.db`` (MLflow's default)."""
    from mlops_actions.registry.mlflow_registry import embedded_tracking_uri

    return os.environ.get("MLFLOW_TRACKING_URI") or embedded_tracking_uri(repo_root)


def artifact_location_for(tracking_uri: str, repo_root: str | Path) -> str | None:
    """Where runs' artifacts go: the server decides for http(s); else ``<repo>/mlruns`` (as the
    registry adapter does: MLflow's default, anchored at the repository, not the working directory)."""
    from mlops_actions.registry.mlflow_registry import embedded_artifacts

    if tracking_uri.split(":", 1)[0] in ("http", "https", "databricks"):
        return None
    return str(embedded_artifacts(repo_root))


def open_registry(repo_root: str | Path = ".") -> VersionSource:
    """The registry adapter, with MLflow's fluent API pointed at it (validation loads
    ``models:/NAME/N`` through ``mlflow.pyfunc.load_model``)."""
    from mlops_actions.registry.mlflow_registry import get_registry

    registry = get_registry(repo_root=repo_root)
    registry.activate()
    return registry
