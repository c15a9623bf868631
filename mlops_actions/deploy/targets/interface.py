"""The DeploymentTarget port: narrow, like Flagger's router (reconcile, status, promote, abort).

``local.py`` talks to the gateway's admin API; :mod:`mlops_actions.serving.memory_target`
runs the same rollout host and gateway in-process for unit tests; the Kubernetes target
implements the same four calls with Argo Rollouts.

The admin API's wire names shared by the client (``local.py``) and the gateway that
answers it live here, at the lower layer, so the client never imports the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops_actions.deploy.interface import Rollout, Route

__all__ = ["ENVIRONMENT_HEADER", "WRONG_ENVIRONMENT", "DeploymentTarget", "Desired", "Reconciled",
           "TargetStatus"]

#: the environment an admin client acts for; a gateway of another environment refuses it (409
#: WRONG_ENVIRONMENT), so a staging URL pasted into production.yaml cannot deploy to staging
ENVIRONMENT_HEADER = "X-Mlops-Environment"
WRONG_ENVIRONMENT = "WRONG_ENVIRONMENT"


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
