"""Live state as ``plan`` and ``policy`` read it: registry aliases (and, later, the target).

With MLflow, ``prefetch`` reads every model of a plan in two searches per 50
models (registered models with their aliases; model versions with their tags).
Otherwise, and as a fallback, one ``list_versions(name)`` per model, shared by every
environment (two HTTP calls with the MLflow adapter). Either way plan stays well
under 2 HTTP calls per model and environment.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlops_actions.config.specs import EnvironmentSpec, KubernetesTarget, LocalTarget
from mlops_actions.errors import RegistryError, TargetError
from mlops_actions.registry.interface import EMBEDDED_DB, SEMVER_TAG, ModelVersion

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
    """Caching reader over a registry; ``calls`` counts registry calls made.

    ``prefetch(names)`` reads many models at once when the registry is MLflow: two
    searches (registered models, model versions) per chunk of ``BATCH`` names instead of
    two calls per model. Anything the batch cannot answer falls back to ``list_versions``.
    """

    BATCH = 50

    def __init__(self, registry: RegistryReader, names: Mapping[str, str] | None = None) -> None:
        self.registry = registry
        # model key (directory under models/, as environments pin it) -> registered name in MLflow
        self.names: Mapping[str, str] = names or {}
        self._cache: dict[str, LiveState] = {}
        self.calls = 0

    def prefetch(self, names: Iterable[str]) -> None:
        names = [self.names.get(n, n) for n in names]
        wanted = sorted({n for n in names if n not in self._cache and "'" not in n})
        uri = getattr(self.registry, "registry_uri", None)
        if not wanted or not isinstance(uri, str):
            return
        try:
            from mlflow import MlflowClient
        except ImportError:  # pragma: no cover - mlflow is a dependency
            return
        client = MlflowClient(tracking_uri=getattr(self.registry, "tracking_uri", uri), registry_uri=uri)
        for start in range(0, len(wanted), self.BATCH):
            chunk = wanted[start:start + self.BATCH]
            try:
                self._cache.update(self._read_chunk(client, chunk))
            except Exception:  # noqa: S112 - the per-model path reports the error properly
                continue

    def _read_chunk(self, client: Any, chunk: list[str]) -> dict[str, LiveState]:
        where = "name IN ({})".format(", ".join(f"'{n}'" for n in chunk))
        aliases: dict[str, dict[str, str]] = {}
        token = None
        while True:
            self.calls += 1
            page = client.search_registered_models(filter_string=where, max_results=1000, page_token=token)
            for rm in page:
                aliases[rm.name] = {a: str(v) for a, v in (rm.aliases or {}).items()}
            token = page.token
            if not token:
                break
        versions: dict[str, list[Any]] = {}
        token = None
        while True:
            self.calls += 1
            page = client.search_model_versions(filter_string=where, max_results=10000, page_token=token)
            for mv in page:
                versions.setdefault(mv.name, []).append(mv)
            token = page.token
            if not token:
                break
        states: dict[str, LiveState] = {}
        for name in chunk:
            state = LiveState()
            listed = sorted(versions.get(name, []), key=lambda mv: int(mv.version))
            if name not in aliases or not listed:
                state.error = f"model {name!r} is not registered (no versions)"
            by_rv: dict[str, str] = {}
            for mv in listed:
                tags = dict(mv.tags or {})
                semver = tags.get(SEMVER_TAG) or f"0.0.{mv.version}"
                by_rv[str(mv.version)] = semver
                state.tags[semver] = tags
            state.versions = tuple(by_rv.values())
            state.aliases = {a: by_rv.get(rv, f"0.0.{rv}") for a, rv in aliases.get(name, {}).items()}
            states[name] = state
        return states

    def model(self, key: str) -> LiveState:
        """The live state of the model pinned as ``key`` (read under its registered name)."""
        name = self.names.get(key, key)
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
    """Auto mode reads the registry only when one is configured: MLFLOW_TRACKING_URI, or the
    embedded default store (``mlflow.db`` at the root, MLflow's own default) exists."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI")) or (repo / EMBEDDED_DB).is_file()


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


def _read_cluster(repo: Path, env: str) -> TargetStatus | str:
    """A kubernetes target's live Rollouts (or HTTPRoute weights) as routes, or why not."""
    from mlops_actions.deploy.targets.kubernetes.adapter import target_for_environment

    try:
        status: TargetStatus = target_for_environment(repo, env, timeout=5.0).status()
    except TargetError as exc:
        return f"unreachable: {exc.message}"
    return status


def read_target(repo: Path, env: str, spec: EnvironmentSpec) -> TargetStatus | str:
    """The target's live routes through the DeploymentTarget port, or why they were not read.

    The local target is read through the gateway's admin API (its admin token comes from
    the environment variable the env file names, or ``.mlops/gateway.token``); a kubernetes
    target from the cluster (Rollouts and their ReplicaSets, or the HTTPRoute weights).
    """
    try:
        from mlops_actions.deploy.targets.local import LocalTarget as LocalClient
        from mlops_actions.deploy.targets.local import read_token
    except ImportError:
        return "not checked: the DeploymentTarget port is not available yet"
    target = spec.target
    if isinstance(target, KubernetesTarget):
        return _read_cluster(repo, env)
    if not isinstance(target, LocalTarget):  # pragma: no cover - the spec's union has two members
        return f"not checked: {target.type} target"
    try:
        token = read_token(target.token_env, repo / ".mlops")
    except TargetError:
        return f"not checked: no admin token (${target.token_env})"
    try:
        status: TargetStatus = LocalClient(target.url, token, timeout=5.0).status()
    except TargetError as exc:
        return f"unreachable: {exc.message}"
    if status.environment != env:
        return (f"not checked: the gateway at {target.url} serves environment "
                f"{status.environment!r}, not {env!r}")
    return status
