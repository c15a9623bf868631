"""The DeploymentTarget port: narrow, like Flagger's router (reconcile, status, promote, abort).

``local.py`` talks to the gateway's admin API; ``memory.py`` runs the same
controller in-process for unit tests; the Kubernetes target implements the
same four calls with Argo Rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops_actions.deploy.interface import Rollout, Route

__all__ = ["DeploymentTarget", "Desired", "Reconciled", "TargetStatus"]


@dataclass(frozen=True)
class Desired:
    """One model's desired state in one environment."""

    model: str
    version: str
    uri: str
    strategy: dict[str, Any] = field(default_factory=lambda: {"type": "full"})
    actor: str = ""
    version_b_uri: str | None = None  # ab_test: where version_b loads from


@dataclass(frozen=True)
class Reconciled:
    changed: bool
    rollout: Rollout | None
    route: Route | None = None


@dataclass(frozen=True)
class TargetStatus:
    environment: str
    routes: dict[str, Route]
    rollouts: dict[str, Rollout]


class DeploymentTarget(Protocol):
    def reconcile(self, desired: Desired) -> Reconciled:
        """Declare the desired version; idempotent (the same desire twice changes nothing)."""
        ...

    def status(self) -> TargetStatus: ...

    def promote(self, model: str, full: bool = False) -> Rollout:
        """Leave a pause, or promote at once with ``full``."""
        ...

    def abort(self, model: str, actor: str = "") -> Rollout:
        """Send all traffic back to the stable version (manual rollback of an active rollout)."""
        ...
