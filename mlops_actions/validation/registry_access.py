"""How validation reaches the registry: the ModelRegistry port, read-only.

``open_registry`` returns the shared MLflow adapter
(``mlops_actions.registry.mlflow_registry.get_registry``) when it is installed;
until that lands, a minimal read-only MLflow reader with the same rules (semver
in the ``mlops.semver`` tag, ``0.0.<n>`` for untagged versions, aliases as
environments) so ``validate`` works on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from mlops_actions.errors import RegistryError
from mlops_actions.registry.interface import SEMVER_TAG, ModelVersion

__all__ = ["VersionSource", "artifact_location_for", "open_registry", "tracking_uri_for"]


class VersionSource(Protocol):
    """The two reads validation needs from :class:`ModelRegistry`."""

    def get(self, name: str, version: str) -> ModelVersion: ...

    def get_alias(self, name: str, alias: str) -> ModelVersion | None: ...


def tracking_uri_for(repo_root: str | Path) -> str:
    """``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///<repo>/.mlops/mlflow.db``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    base = Path(repo_root).resolve() / ".mlops"
    (base / "artifacts").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'mlflow.db'}"


def artifact_location_for(tracking_uri: str, repo_root: str | Path) -> str | None:
    """Where runs' artifacts go: the server decides for http(s); else ``<repo>/.mlops/artifacts``
    (as the registry adapter does), never MLflow's default ``./mlruns`` in the working directory."""
    if tracking_uri.split(":", 1)[0] in ("http", "https", "databricks"):
        return None
    path = Path(repo_root).resolve() / ".mlops" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def open_registry(repo_root: str | Path = ".") -> VersionSource:
    try:
        from mlops_actions.registry.mlflow_registry import get_registry  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return MlflowReader(tracking_uri_for(repo_root))
    registry = get_registry(repo_root=repo_root)
    registry.activate()  # validation loads models:/NAME/N through MLflow's fluent API
    return registry


class MlflowReader:
    """Read-only MLflow access (fallback until the registry adapter is merged)."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def _convert(self, mv: Any) -> ModelVersion:
        tags = dict(mv.tags or {})
        return ModelVersion(name=mv.name, version=tags.get(SEMVER_TAG) or f"0.0.{mv.version}",
                            registry_version=str(mv.version), source=mv.source or "", run_id=mv.run_id,
                            aliases=tuple(getattr(mv, "aliases", None) or ()), tags=tags)

    def get(self, name: str, version: str) -> ModelVersion:
        try:
            found = self._client.search_model_versions(f"name = '{name}'")
        except Exception as exc:
            raise RegistryError(f"cannot list versions of {name!r} at {self.tracking_uri}: {exc}",
                                hint="check MLFLOW_TRACKING_URI") from None
        versions = [self._convert(mv) for mv in found]
        for v in versions:
            if v.version == version:
                return v
        raise RegistryError(
            f"model {name!r} has no version {version}",
            hint=f"versions: {', '.join(sorted(v.version for v in versions)) or 'none registered'}")

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        try:
            mv = self._client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower():
                return None
            raise RegistryError(f"cannot read alias {alias!r} of {name!r}: {exc}") from None
        return self._convert(mv)
