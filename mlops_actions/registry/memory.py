"""An in-memory ModelRegistry for unit tests of other areas.

Same semantics as the MLflow adapter (the contract suite in
``tests/registry/test_contract.py`` runs against both): same semver numbering
(``registry/semver.py``), same errors, same tags.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from mlops_actions.config.specs import parse_semver
from mlops_actions.errors import RegistryInputError
from mlops_actions.registry.interface import (
    ARCHIVED_TAG,
    META_PREFIX,
    SEMVER_TAG,
    SIGNATURE_TAG,
    STAGE_TAG,
    Bump,
    ModelVersion,
    check_alias,
    duplicate_version,
    model_not_found,
    version_not_found,
)
from mlops_actions.registry.semver import SignatureSummary, next_version, semver_key, signature_change

__all__ = ["MemoryRegistry"]


def meta_tags(metadata: Mapping[str, object] | None) -> dict[str, str]:
    """Metadata -> ``mlops.meta.<key>`` tags; non-string values as JSON."""
    tags: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        tags[f"{META_PREFIX}{key}"] = text
    return tags


def describe(metadata: Mapping[str, object] | None) -> str:
    if not metadata:
        return ""
    if isinstance(metadata.get("description"), str):
        return str(metadata["description"])
    return ", ".join(f"{k}={v}" for k, v in metadata.items())


class MemoryRegistry:
    """Dict-backed registry. ``signature_of(source)`` lets tests drive the major/minor rule."""

    def __init__(self, signature_of: Callable[[str], SignatureSummary | None] | None = None) -> None:
        self._versions: dict[str, list[ModelVersion]] = {}
        self._aliases: dict[str, dict[str, str]] = {}  # name -> alias -> registry_version
        self._model_tags: dict[str, dict[str, str]] = {}
        self._signature_of = signature_of or (lambda source: None)
        self._lock = threading.Lock()
        self.tracking_uri = "memory://"

    # -- helpers
    def _all(self, name: str) -> list[ModelVersion]:
        return self._versions.get(name, [])

    def _find(self, name: str, version: str) -> tuple[int, ModelVersion]:
        for i, mv in enumerate(self._all(name)):
            if mv.version == version:
                return i, mv
        if name not in self._versions:
            raise model_not_found(name, list(self._versions))
        raise version_not_found(name, version, [mv.version for mv in self._all(name)])

    def _with_aliases(self, mv: ModelVersion) -> ModelVersion:
        names = tuple(sorted(a for a, rv in self._aliases.get(mv.name, {}).items()
                             if rv == mv.registry_version))
        return replace(mv, aliases=names)

    # -- the port
    def register(self, name: str, source: str, *, metadata: Mapping[str, object] | None = None,
                 bump: Bump | None = None, version: str | None = None,
                 signature: SignatureSummary | None = None) -> ModelVersion:
        with self._lock:
            existing = self._all(name)
            sig = signature if signature is not None else self._signature_of(source)
            if version is not None:
                try:
                    parse_semver(version)
                except ValueError as exc:
                    raise RegistryInputError(str(exc)) from None
                semver = version
            else:
                change: Bump = "minor"
                if existing and bump is None:
                    previous = max(existing, key=lambda mv: semver_key(mv.version))
                    old_sig = previous.tags.get(SIGNATURE_TAG)
                    change, _ = signature_change(
                        SignatureSummary.from_json(old_sig) if old_sig else None, sig)
                semver = next_version([mv.version for mv in existing], bump=bump, change=change)
            if any(mv.version == semver for mv in existing):
                raise duplicate_version(name, semver)
            tags = {SEMVER_TAG: semver, **meta_tags(metadata)}
            if sig is not None:
                tags[SIGNATURE_TAG] = sig.to_json()
            mv = ModelVersion(name=name, version=semver, registry_version=str(len(existing) + 1),
                              source=source, run_id=None, created_at=time.time(), tags=tags,
                              description=describe(metadata))
            self._versions.setdefault(name, []).append(mv)
            return mv

    def get(self, name: str, version: str) -> ModelVersion:
        return self._with_aliases(self._find(name, version)[1])

    def list_versions(self, name: str) -> list[ModelVersion]:
        return [self._with_aliases(mv) for mv in self._all(name)]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        check_alias(alias)
        _, mv = self._find(name, version)
        self._aliases.setdefault(name, {})[alias] = mv.registry_version

    def delete_alias(self, name: str, alias: str) -> None:
        self._aliases.get(name, {}).pop(alias, None)

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        if name not in self._versions:
            raise model_not_found(name, list(self._versions))
        rv = self._aliases.get(name, {}).get(alias)
        if rv is None:
            return None
        return self._with_aliases(self._all(name)[int(rv) - 1])

    def aliases(self, name: str) -> dict[str, str]:
        if name not in self._versions:
            raise model_not_found(name, list(self._versions))
        versions = self._all(name)
        return {a: versions[int(rv) - 1].version for a, rv in self._aliases.get(name, {}).items()}

    def archive(self, name: str, version: str) -> None:
        i, mv = self._find(name, version)
        for alias, rv in list(self._aliases.get(name, {}).items()):
            if rv == mv.registry_version:
                del self._aliases[name][alias]
        tags = {**mv.tags, ARCHIVED_TAG: "true", STAGE_TAG: "archived"}
        self._versions[name][i] = replace(mv, tags=tags, archived=True)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        i, mv = self._find(name, version)
        tags = {**mv.tags, key: value}
        self._versions[name][i] = replace(mv, tags=tags, archived=tags.get(ARCHIVED_TAG) == "true")

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        if name not in self._versions:
            raise model_not_found(name, list(self._versions))
        self._model_tags.setdefault(name, {})[key] = value

    def model_tags(self, name: str) -> dict[str, str]:
        if name not in self._versions:
            raise model_not_found(name, list(self._versions))
        return dict(self._model_tags.get(name, {}))
