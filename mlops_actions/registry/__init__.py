"""Model registry: the ModelRegistry port, its MLflow adapter and an in-memory fake.

``from mlops_actions.registry import get_registry`` (imports MLflow lazily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_actions.registry.interface import ModelRegistry, ModelVersion, RegistryNotFound, resolve

if TYPE_CHECKING:
    from mlops_actions.registry.mlflow_registry import get_registry

__all__ = ["ModelRegistry", "ModelVersion", "RegistryNotFound", "get_registry", "resolve"]


def __getattr__(name: str) -> Any:
    if name == "get_registry":
        from mlops_actions.registry.mlflow_registry import get_registry

        return get_registry
    raise AttributeError(name)
