"""End-to-end on a real cluster (kind + Argo Rollouts): runs only on GitHub, in k8s-e2e.yml.

Needs MLOPS_K8S_E2E=1, a kubeconfig for the cluster, Argo Rollouts installed,
and MLOPS_E2E_IMAGE (the serving image with models baked in at /models/churn/<semver>).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from mlops_actions.config.specs import EnvironmentSpec, ModelSpec
from mlops_actions.deploy.targets.kubernetes.client import connect, wait_for_rollout
from mlops_actions.deploy.targets.kubernetes.interface import ResolvedVersion, RolloutPhase
from mlops_actions.deploy.targets.kubernetes.target import KubernetesDeployTarget, PlanAction

pytestmark = pytest.mark.skipif(not os.environ.get("MLOPS_K8S_E2E"),
                                reason="needs a kind cluster with Argo Rollouts (k8s-e2e workflow)")
NAMESPACE = "mlops-e2e"
MODEL = ModelSpec.model_validate({"name": "churn", "task": "binary_classification",
                                  "data": {"test": "t.csv", "label": "y"}})


def baked(key: str, spec: ModelSpec, version: str) -> ResolvedVersion:
    return ResolvedVersion(spec.name, version, f"/models/churn/{version}")


def env(version: str, strategy: dict[str, Any]) -> EnvironmentSpec:
    return EnvironmentSpec.model_validate({
        "target": {"type": "kubernetes", "namespace": NAMESPACE, "replicas": 2,
                   "image": os.environ.get("MLOPS_E2E_IMAGE", "mlops-actions-e2e:models"),
                   "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}}},
        "models": {"churn": {"version": version, "strategy": strategy}}})


def target(spec: EnvironmentSpec) -> KubernetesDeployTarget:
    return KubernetesDeployTarget(connect(timeout=15), "e2e", spec, {"churn": MODEL}, baked, progress=print)


def test_full_then_canary_promote_then_abort() -> None:
    api = connect(timeout=15)  # the workflow creates the namespace (kubectl create namespace)
    t1 = target(env("1.0.0", {"type": "full"}))
    first = t1.reconcile(timeout=600)
    assert [s.phase for s in first.rollouts] == [RolloutPhase.HEALTHY]
    assert all(i.action is PlanAction.UNCHANGED for i in t1.plan())  # idempotent on a real API server

    canary = {"type": "canary", "steps": [{"set_weight": 50}, {"pause": {}}, {"set_weight": 100}]}
    t2 = target(env("1.1.0", canary))
    second = t2.reconcile(timeout=600)
    assert [s.phase for s in second.rollouts] == [RolloutPhase.PAUSED]
    t2.promote("churn", full=True)
    done = wait_for_rollout(api, NAMESPACE, "churn", timeout=600, progress=print)
    assert done.phase is RolloutPhase.HEALTHY and done.stable_version == "1.1.0"

    t3 = target(env("1.0.0", canary))
    third = t3.reconcile(timeout=600)
    assert [s.phase for s in third.rollouts] == [RolloutPhase.PAUSED]
    t3.abort("churn")
    aborted = wait_for_rollout(api, NAMESPACE, "churn", timeout=300, progress=print)
    assert aborted.phase is RolloutPhase.DEGRADED and aborted.aborted
