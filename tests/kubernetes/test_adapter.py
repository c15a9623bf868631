"""The Kubernetes target behind the shared DeploymentTarget port, driven by deploy.apply."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_actions.config.loader import load_repo
from mlops_actions.config.specs import CanaryStrategy, FullStrategy
from mlops_actions.deploy.apply import apply_environment
from mlops_actions.deploy.interface import Phase
from mlops_actions.deploy.targets.interface import DeploymentTarget, Desired
from mlops_actions.deploy.targets.kubernetes.adapter import (
    ArgoRolloutsTarget,
    rollout_record,
    target_for_environment,
)
from mlops_actions.deploy.targets.kubernetes.client import connect
from mlops_actions.deploy.targets.kubernetes.interface import KubernetesError
from mlops_actions.errors import ConfigError
from mlops_actions.registry.interface import ModelVersion
from tests.kubernetes.conftest import REPO, FakeApiServer


class Registry:
    """The DeployRegistry slice apply needs, in memory."""

    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}

    def get(self, name: str, version: str) -> ModelVersion:
        return ModelVersion(name=name, version=version, registry_version="3", source="s3://x")

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[(name, alias)] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self.aliases.pop((name, alias), None)


def adapter(server: FakeApiServer, env: str = "staging") -> ArgoRolloutsTarget:
    repo = load_repo(REPO)
    return ArgoRolloutsTarget(connect(kubeconfig=str(server.kubeconfig), timeout=5), env,
                              repo.environments[env], repo.models)


def test_apply_environment_drives_the_cluster_through_the_port(api_server: FakeApiServer) -> None:
    target: DeploymentTarget = adapter(api_server)
    registry = Registry()
    lines: list[str] = []
    results = apply_environment(REPO, "staging", target=target, registry=registry, timeout=20, poll=0.05,
                                actor="tester", progress=lines.append)
    assert [(r.model, r.version, r.changed, r.phase) for r in results] == [
        ("churn", "1.2.0", True, "Healthy"), ("task_classifier", "0.3.1", True, "Healthy")]
    assert registry.aliases[("churn", "staging")] == "1.2.0"
    rollout = api_server.cluster.get("Rollout", "ml-staging", "churn")
    assert rollout is not None
    env = {e["name"]: e["value"] for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "models:/churn/3"
    again = apply_environment(REPO, "staging", target=target, registry=registry, timeout=20, poll=0.05,
                              progress=lines.append)
    assert [r.changed for r in again] == [False, False]
    status = target.status()
    assert status.rollouts["churn"].phase is Phase.HEALTHY and status.rollouts["churn"].to_version == "1.2.0"


def test_target_for_environment_reads_the_repository(api_server: FakeApiServer) -> None:
    target = target_for_environment(REPO, "preprod", kubeconfig=str(api_server.kubeconfig))
    rec = target.reconcile(Desired(model="churn", version="1.3.0-rc.1", uri="models:/churn/5",
                                   strategy={"type": "blue_green"}))
    assert rec.changed and rec.route is not None and rec.route.stable == "1.3.0-rc.1"
    with pytest.raises(ConfigError, match="not kubernetes"):
        target_for_environment(REPO, "local", kubeconfig=str(api_server.kubeconfig))


def test_abort_through_the_port(api_server: FakeApiServer) -> None:
    target = adapter(api_server, "production")
    rec = target.reconcile(Desired(model="churn", version="1.3.0", uri="models:/churn/4",
                                   strategy={"type": "canary", "steps": [{"set_weight": 10}]}))
    assert rec.changed and rec.rollout is not None and rec.rollout.to_uri == "models:/churn/4"
    aborted = target.abort("churn")
    assert aborted.phase is Phase.ABORTED and aborted.done


def test_ab_test_needs_both_uris(api_server: FakeApiServer) -> None:
    target = adapter(api_server, "production")
    rec = target.reconcile(Desired(model="task_classifier", version="2.0.0", uri="models:/tc/1",
                                   strategy={"type": "ab_test", "version_b": "2.1.0", "traffic_split": 0.5},
                                   version_b_uri="models:/tc/2"))
    assert rec.rollout is not None and rec.rollout.to_uri == "models:/tc/2"  # the pods B runs
    assert rec.rollout.from_version == rec.rollout.to_version == "2.0.0"  # A stays the pin


def _obj(status: dict[str, Any], generation: int = 2) -> dict[str, Any]:
    return {"metadata": {"name": "churn", "namespace": "ml", "generation": generation},
            "spec": {"template": {"spec": {"containers": [{"env": [
                {"name": "MLOPS_MODEL_VERSION", "value": "1.3.0"}, {"name": "MODEL_URI", "value": "m"}]}]}}},
            "status": {"observedGeneration": "2", **status}}


CANARY = CanaryStrategy.model_validate({"type": "canary", "steps": [{"set_weight": 20}]})
FULL = FullStrategy(type="full")


@pytest.mark.parametrize("status,phase", [
    ({"phase": "Healthy"}, Phase.HEALTHY),
    ({"phase": "Paused"}, Phase.PAUSED),
    ({"phase": "Progressing", "canary": {"weights": {"canary": {"weight": 20}}}}, Phase.PROGRESSING),
    ({"phase": "Degraded", "abort": True,
      "message": "RolloutAborted: Rollout aborted update to revision 3"}, Phase.ABORTED),
    ({"phase": "Degraded", "abort": True, "message": "RolloutAborted: Rollout aborted update to revision 3: "
      "Metric \"error-rate\" assessed Failed due to failed (2) > failureLimit (1)"}, Phase.ROLLED_BACK),
    ({"phase": "Degraded", "message": "ProgressDeadlineExceeded"}, Phase.DEGRADED),
])
def test_argo_status_maps_to_the_shared_phases(status: dict[str, Any], phase: Phase) -> None:
    record = rollout_record(_obj(status), "prod", "churn", CANARY)
    assert record.phase is phase and record.to_version == "1.3.0"
    if phase is Phase.PROGRESSING:
        assert record.weight == 20


def test_a_generation_not_yet_observed_is_progressing() -> None:
    assert rollout_record(_obj({"phase": "Healthy"}, generation=3), "p", "m", FULL).phase is Phase.PROGRESSING


def test_gateway_api_mode_through_the_port(api_server: FakeApiServer) -> None:
    target = adapter(api_server, "edge")
    canary = {"type": "canary", "steps": [{"set_weight": 25}, {"pause": {}}, {"set_weight": 100}]}
    target.reconcile(Desired(model="churn", version="1.2.0", uri="models:/churn/1", strategy=canary))
    target.reconcile(Desired(model="churn", version="1.3.0", uri="models:/churn/2", strategy=canary))
    route = api_server.cluster.get("HTTPRoute", "ml-edge", "churn")
    assert route is not None
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [75, 25]
    target.promote("churn", full=True)
    route = api_server.cluster.get("HTTPRoute", "ml-edge", "churn")
    assert route is not None and route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "churn-v1-3-0", "port": 80, "weight": 100}]
    with pytest.raises(KubernetesError, match=r"cannot abort task_classifier: version\(s\) 2.0.0, 2.1.0"):
        target.abort("task_classifier")  # never applied: no Deployment to read the URIs from
