"""Live state as ``plan`` and ``policy`` read it: registry aliases (and, later, the target).

One ``aliases(name)`` call per model, shared by every environment, and one
``list_versions(name)`` call when a pin must be checked to exist: at most two
registry calls per model whatever the number of environments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mlops_actions.errors import RegistryError
from mlops_actions.registry.interface import ModelVersion

__all__ = ["LiveRegistry", "LiveState", "RegistryReader", "open_registry"]


class RegistryReader(Protocol):
    """The part of the ModelRegistry port that plan and policy read."""

    def aliases(self, name: str) -> dict[str, str]: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...


@dataclass
class LiveState:
    """What one model looks like in the registry (or why we could not tell)."""

    aliases: dict[str, str] = field(default_factory=dict)  # alias -> semver
    versions: tuple[str, ...] | None = None  # semvers, when listed
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # semver -> tags
    error: str | None = None  # e.g. "not registered"


class LiveRegistry:
    """Caching reader over a registry; ``calls`` counts port calls made."""

    def __init__(self, registry: RegistryReader) -> None:
        self.registry = registry
        self._cache: dict[str, LiveState] = {}
        self.calls = 0

    def model(self, name: str, *, with_versions: bool = False) -> LiveState:
        state = self._cache.get(name)
        if state is None:
            state = LiveState()
            try:
                self.calls += 1
                state.aliases = dict(self.registry.aliases(name))
            except RegistryError as exc:
                state.error = exc.message
            self._cache[name] = state
        if with_versions and state.versions is None and state.error is None:
            try:
                self.calls += 1
                listed = self.registry.list_versions(name)
                state.versions = tuple(str(v.version) for v in listed)
                state.tags = {str(v.version): dict(getattr(v, "tags", {}) or {}) for v in listed}
            except RegistryError as exc:
                state.error = exc.message
        return state


def open_registry() -> RegistryReader:
    """The MLflow adapter from the registry area, or RegistryError "not available yet"."""
    try:
        module = importlib.import_module("mlops_actions.registry.mlflow_registry")
    except ImportError:
        raise RegistryError(
            "live state not available yet: the MLflow registry adapter "
            "(mlops_actions.registry.mlflow_registry) is not in this build",
            hint="run with --no-live to compare git only") from None
    factory: Callable[[], RegistryReader] = module.get_registry
    return factory()
