"""Semver pins -> what a pod loads (``MODEL_URI``): through the registry, or by alias.

``registry_resolver``: asks the MLflow registry (``mlops.semver`` tag) for the
version, giving ``models:/NAME/<registry version>``.

``alias_resolver`` (``--no-registry``): no lookup; gives ``models:/NAME@v1-2-0``,
an MLflow alias that ``apply`` (or whoever registers versions) must set on the
version whose ``mlops.semver`` tag is ``1.2.0``. Pods also get
``MLOPS_MODEL_NAME`` and ``MLOPS_MODEL_VERSION`` so a server can resolve the tag itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_actions.config.specs import ModelSpec
from mlops_actions.deploy.targets.kubernetes.interface import ResolvedVersion
from mlops_actions.deploy.targets.kubernetes.render import Resolver, alias_for_semver
from mlops_actions.errors import ConfigError

__all__ = ["alias_resolver", "registry_resolver", "resolver_from_registry"]


def alias_resolver(key: str, spec: ModelSpec, version: str) -> ResolvedVersion:
    return ResolvedVersion(spec.name, version, f"models:/{spec.name}@{alias_for_semver(version)}")


def resolver_from_registry(registry: Any) -> Resolver:
    """A resolver over any object with the ModelRegistry port's ``get(name, semver)``."""

    def resolve(key: str, spec: ModelSpec, version: str) -> ResolvedVersion:
        mv = registry.get(spec.name, version)
        return ResolvedVersion(spec.name, version, str(mv.uri), str(mv.registry_version))

    return resolve


def registry_resolver(factory: Callable[[], Any] | None = None, *, repo_root: str | Path = ".") -> Resolver:
    """The MLflow registry's resolver (``mlops_actions.registry.mlflow_registry.get_registry``).

    ``MLFLOW_TRACKING_URI`` when set, else the embedded registry under ``repo_root/.mlops``.
    """
    if factory is None:
        try:
            module = importlib.import_module("mlops_actions.registry.mlflow_registry")
            get_registry = module.get_registry
        except (ImportError, AttributeError):
            raise ConfigError(
                "the MLflow registry adapter (mlops_actions.registry.mlflow_registry) is not available "
                "in this build, so semver pins cannot be resolved to MLflow versions",
                hint="render with --no-registry (MODEL_URI = models:/NAME@v<semver-with-dashes>)") from None

        def factory() -> Any:
            return get_registry(repo_root=repo_root)

    return resolver_from_registry(factory())
