"""Live state as ``plan`` and ``policy`` read it: registry aliases (and, later, the target).

One ``list_versions(name)`` call per model, shared by every environment: it
gives every version with its aliases and tags (the MLflow adapter makes it two
HTTP calls), so plan stays at <= 2 HTTP calls per model whatever the number of
environments.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlops_actions.config.specs import EnvironmentSpec, LocalTarget
from mlops_actions.errors import RegistryError, TargetError
from mlops_actions.registry.interface import ModelVersion

if TYPE_CHECKING:
    from mlops_actions.deploy.targets.interface import TargetStatus

__all__ = ["LiveRegistry", "LiveState", "RegistryReader", "live_configured", "open_registry", "read_target"]


class RegistryReader(Protocol):
    """The part of the ModelRegistry port that plan and policy read."""

    def list_versions(self, name: str) -> list[ModelVersion]: ...


@dataclass
class LiveState:
    """What one model looks like in the registry (or why we could not tell)."""

    aliases: dict[str, str] = field(default_factory=dict)  # alias -> semver
    versions: tuple[str, ...] = ()  # semvers, oldest first
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # semver -> tags
    error: str | None = None  # e.g. "not registered"


class LiveRegistry:
    """Caching reader over a registry; ``calls`` counts port calls made."""

    def __init__(self, registry: RegistryReader) -> None:
        self.registry = registry
        self._cache: dict[str, LiveState] = {}
        self.calls = 0

    def model(self, name: str) -> LiveState:
        state = self._cache.get(name)
        if state is not None:
            return state
        state = LiveState()
        try:
            self.calls += 1
            listed = self.registry.list_versions(name)
        except RegistryError as exc:
            state.error = exc.message
        else:
            if not listed:
                state.error = f"model {name!r} is not registered (no versions)"
            state.versions = tuple(str(v.version) for v in listed)
            state.tags = {str(v.version): dict(v.tags or {}) for v in listed}
            for v in listed:
                for alias in v.aliases:
                    state.aliases[alias] = str(v.version)
        self._cache[name] = state
        return state


def live_configured(repo: Path) -> bool:
    """Auto mode reads the registry only when one is configured: MLFLOW_TRACKING_URI or ``.mlops/``."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI")) or (repo / ".mlops").is_dir()


def open_registry(repo: Path | None = None) -> RegistryReader:
    """The MLflow adapter from the registry area, or RegistryError "not available yet"."""
    try:
        module = importlib.import_module("mlops_actions.registry.mlflow_registry")
    except ImportError:
        raise RegistryError(
            "live state not available yet: the MLflow registry adapter "
            "(mlops_actions.registry.mlflow_registry) is not in this build",
            hint="run with --no-live to compare git only") from None
    registry: RegistryReader = module.get_registry(repo_root=repo or Path("."))
    return registry


def read_target(repo: Path, env: str, spec: EnvironmentSpec) -> TargetStatus | str:
    """The target's live routes through the DeploymentTarget port, or why they were not read.

    Only the local target (the gateway's admin API) is read; its admin token comes from the
    environment variable the env file names, or ``.mlops/gateway.token``.
    """
    try:
        from mlops_actions.deploy.targets.local import LocalTarget as LocalClient
        from mlops_actions.deploy.targets.local import read_token
    except ImportError:
        return "not checked: the DeploymentTarget port is not available yet"
    target = spec.target
    if not isinstance(target, LocalTarget):
        return f"not checked: {target.type} target (read by `mlops-actions status`)"
    try:
        token = read_token(target.token_env, repo / ".mlops")
    except TargetError:
        return f"not checked: no admin token (${target.token_env})"
    try:
        status: TargetStatus = LocalClient(target.url, token, timeout=5.0).status()
    except TargetError as exc:
        return f"unreachable: {exc.message}"
    del env
    return status
