"""Kubernetes target: Argo Rollouts (or Gateway API weights) run the progressive delivery.

- :mod:`.render`: pure functions, environment file -> manifests
- :mod:`.client`: the Kubernetes API (server-side apply, watch, abort/promote)
- :mod:`.target`: reconcile / status / promote / abort over both
"""

from __future__ import annotations

from mlops_actions.deploy.targets.kubernetes.interface import (
    FIELD_MANAGER,
    ApplyConflict,
    ApplyReport,
    KubeApi,
    KubernetesError,
    ObjectRef,
    ResolvedVersion,
    RolloutPhase,
    RolloutStatus,
    Unreachable,
)
from mlops_actions.deploy.targets.kubernetes.render import render_environment, render_model

__all__ = [
    "FIELD_MANAGER",
    "ApplyConflict",
    "ApplyReport",
    "KubeApi",
    "KubernetesError",
    "ObjectRef",
    "ResolvedVersion",
    "RolloutPhase",
    "RolloutStatus",
    "Unreachable",
    "render_environment",
    "render_model",
]
