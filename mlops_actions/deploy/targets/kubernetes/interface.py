"""The Kubernetes target's port and value types.

The target talks to the cluster through :class:`KubeApi`, a narrow port of five
calls (``get``, ``apply``, ``list``, ``delete``, ``patch``) plus ``watch``; the
real implementation (:mod:`.client`) speaks the Kubernetes REST API through the
``kubernetes`` package's configuration (kubeconfig or in-cluster). Rendering
(:mod:`.render`) is pure and needs none of it.

The target itself has the Flagger-router shape the local gateway target has:
``reconcile`` / ``status`` / ``promote`` / ``abort`` (see :mod:`.target`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops_actions.errors import TargetError

__all__ = [
    "FIELD_MANAGER",
    "ApplyConflict",
    "ApplyReport",
    "KubeApi",
    "KubernetesError",
    "Manifest",
    "ObjectRef",
    "ResolvedVersion",
    "RolloutPhase",
    "RolloutStatus",
    "Unreachable",
]

#: The server-side-apply field manager every write of ours uses.
FIELD_MANAGER = "mlops-actions"

Manifest = dict[str, Any]


class KubernetesError(TargetError):
    """The Kubernetes API failed or refused a request (exit code 3)."""


class Unreachable(KubernetesError):
    """The API server could not be reached within the timeout."""


class ApplyConflict(KubernetesError):
    """Server-side apply answered 409: another field manager owns a field we set."""

    def __init__(self, message: str, *, managers: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.managers = managers


@dataclass(frozen=True)
class ResolvedVersion:
    """A pinned semver resolved to something a pod can load.

    ``model_uri`` is what the container gets as ``MODEL_URI``
    (``models:/NAME/REGISTRY_VERSION`` with the registry, ``models:/NAME@ALIAS``
    with ``--no-registry``).
    """

    name: str  # registered model name
    version: str  # semver
    model_uri: str
    registry_version: str | None = None


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Which object: enough to build its API path."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> ObjectRef:
        meta = manifest.get("metadata", {})
        return cls(str(manifest["apiVersion"]), str(manifest["kind"]),
                   str(meta.get("namespace", "")), str(meta["name"]))

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} (namespace {self.namespace}, {self.api_version})"


class RolloutPhase(enum.StrEnum):
    """Argo Rollouts' ``status.phase`` (persisted by the controller in the Rollout)."""

    HEALTHY = "Healthy"  #: fully promoted, every replica ready
    PROGRESSING = "Progressing"  #: a step or the replica update is under way
    PAUSED = "Paused"  #: paused at a step (or blue-green preview) until promoted
    DEGRADED = "Degraded"  #: aborted (failed analysis, abort) or progress deadline exceeded
    UNKNOWN = "Unknown"  #: no status yet (controller has not seen the object)


@dataclass(frozen=True)
class RolloutStatus:
    """The live state of one Rollout, read back for ``plan`` and ``status``."""

    name: str
    namespace: str
    phase: RolloutPhase
    message: str = ""
    current_step: int | None = None
    steps: int | None = None
    stable_version: str | None = None  # the desired version once it is the stable ReplicaSet, else None
    desired_version: str | None = None  # label of the pod template in the spec
    aborted: bool = False
    paused: bool = False
    observed: bool = False  # status.observedGeneration == metadata.generation

    def summary(self) -> str:
        step = ""
        if self.steps and self.current_step is not None:
            step = f" step {self.current_step}/{self.steps}"
        msg = f": {self.message}" if self.message else ""
        return f"Rollout {self.name}: {self.phase.value}{step}{msg}"


@dataclass(frozen=True)
class ApplyReport:
    """What an apply did, object by object (never half-applied without saying so)."""

    applied: tuple[ObjectRef, ...] = ()
    unchanged: tuple[ObjectRef, ...] = ()
    pruned: tuple[ObjectRef, ...] = ()
    failed: ObjectRef | None = None
    not_attempted: tuple[ObjectRef, ...] = field(default_factory=tuple)


class KubeApi(Protocol):
    """The handful of Kubernetes API calls the target needs."""

    def get(self, ref: ObjectRef) -> Manifest | None:
        """The live object, or None when it does not exist (404)."""
        ...

    def apply(self, manifest: Manifest, *, force: bool = False, dry_run: bool = False) -> Manifest:
        """Server-side apply with field manager ``mlops-actions``; ApplyConflict on 409."""
        ...

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[Manifest]:
        ...

    def delete(self, ref: ObjectRef) -> None: ...

    def patch(self, ref: ObjectRef, patch: Manifest | Sequence[Manifest], *,
              subresource: str | None = None) -> Manifest:
        """JSON merge patch (a dict, ``application/merge-patch+json``) or JSON patch (a list of
        operations, ``application/json-patch+json``), optionally on ``/status``."""
        ...

    def watch(self, ref: ObjectRef, *, timeout_seconds: float) -> Iterator[Manifest]:
        """Yield the object each time it changes (watch stream), until the timeout."""
        ...
