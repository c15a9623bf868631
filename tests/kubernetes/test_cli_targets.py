"""apply, status, plan and rollback drive a Kubernetes environment like a local one, end to end
from the CLI: a real embedded MLflow registry (SQLite) for the pins and aliases, the loopback
fake API server for the cluster."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from mlops_actions.cli import main
from mlops_actions.registry.mlflow_registry import get_registry
from tests.conftest import free_port
from tests.kubernetes.conftest import REPO, FakeApiServer

VERSIONS = {"churn": ["1.2.0", "1.3.0"], "task_classifier": ["0.3.1", "2.0.0", "2.1.0"]}
CANARY_ENV = """target:
  type: kubernetes
  namespace: ml-canary
  replicas: 1
models:
  churn:
    version: "{version}"
    strategy:
      type: canary
      steps:
        - set_weight: 20
        - pause: {{}}
        - set_weight: 100
"""

def argo_rolls_back() -> list[dict[str, Any]]:
    """What Argo does to a canary whose analysis fails: 20% for a while, then aborted with the
    metric (a new list each time: the fake cluster consumes its scripts)."""
    return [
        {"phase": "Progressing", "currentStepIndex": 0, "canary": {"weights": {"canary": {"weight": 20}}}},
        {"phase": "Degraded", "abort": True,
         "message": "RolloutAborted: Rollout aborted update to revision 2: "
                    'Metric "error-rate" assessed Failed due to failed (1) > failureLimit (0)'}]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An embedded MLflow registry holding every version the test repository pins."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name, versions in VERSIONS.items():
        client.create_registered_model(name)
        for i, version in enumerate(versions):
            client.create_model_version(name, source=str(root / name / str(i)),
                                        tags={"mlops.semver": version})
    return uri


@pytest.fixture()
def repo(tmp_path: Path, api_server: FakeApiServer, mlflow_uri: str,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "repo"
    shutil.copytree(REPO, root)
    (root / "environments" / "canary.yaml").write_text(CANARY_ENV.format(version="1.2.0"))
    monkeypatch.setenv("KUBECONFIG", str(api_server.kubeconfig))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    api_server.cluster.advance_on_get = True  # Argo moves between the polls of apply --wait
    yield root


def cli(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    code = main(["-C", str(repo), *args])
    out, err = capsys.readouterr()
    return code, out, err


def aliases(mlflow_uri: str, name: str) -> dict[str, str]:
    return get_registry(mlflow_uri).aliases(name)


def template_version(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
    return next(e["value"] for e in env if e["name"] == "MLOPS_MODEL_VERSION")


def test_apply_status_and_plan_read_and_write_the_cluster(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer, mlflow_uri: str) -> None:
    code, out, _ = cli(capsys, repo, "apply", "--env", "staging", "--wait", "--timeout", "30")
    assert code == 0, out
    assert "churn 1.2.0: Healthy (changed)" in out and "task_classifier 0.3.1: Healthy (changed)" in out
    assert "created: Rollout/churn (namespace ml-staging" in out  # progress from the cluster
    assert aliases(mlflow_uri, "churn")["staging"] == "1.2.0"
    rollout = api_server.cluster.get("Rollout", "ml-staging", "churn")
    assert rollout is not None and template_version(rollout) == "1.2.0"
    # the registry resolved the semver: MODEL_URI is MLflow's version 1 of churn
    env = {e["name"]: e["value"] for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "models:/churn/1"

    before = {key: obj["metadata"]["resourceVersion"] for key, obj in api_server.cluster.objects.items()}
    code, out, _ = cli(capsys, repo, "apply", "--env", "staging", "--wait")
    assert code == 0 and "churn: 1.2.0 already live in staging: no change" in out
    after = {key: obj["metadata"]["resourceVersion"] for key, obj in api_server.cluster.objects.items()}
    assert after == before  # idempotent: server-side apply of the same objects changed nothing

    code, out, _ = cli(capsys, repo, "status", "--env", "staging")
    assert code == 0 and "churn: stable 1.2.0" in out and "Healthy" in out
    code, out, _ = cli(capsys, repo, "status", "--env", "staging", "--json")
    assert json.loads(out)["routes"]["task_classifier"]["stable"] == "0.3.1"

    # plan reads the cluster as the target's live state: no drift now ...
    code, out, _ = cli(capsys, repo, "plan", "--base", str(repo), "--head", str(repo), "--env", "staging",
                       "--json")
    plan = json.loads(out)
    [env_plan] = plan["environments"]
    assert code == 0 and env_plan["target"] == "checked"
    assert {m["model"]: m["target_version"] for m in env_plan["models"]} == {"churn": "1.2.0",
                                                                            "task_classifier": "0.3.1"}
    # ... and drift once someone changes the cluster by hand (what serves is not what git pins)
    live = api_server.cluster.get("Rollout", "ml-staging", "churn")
    assert live is not None
    live["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {**e, "value": "1.3.0"} if e["name"] == "MLOPS_MODEL_VERSION" else e
        for e in live["spec"]["template"]["spec"]["containers"][0]["env"]]
    api_server.cluster.settle(live)
    code, out, _ = cli(capsys, repo, "plan", "--base", str(repo), "--head", str(repo), "--env", "staging",
                       "--json")
    churn = next(m for m in json.loads(out)["environments"][0]["models"] if m["model"] == "churn")
    assert "the target serves 1.3.0" in churn["drift"]


def test_a_running_canary_is_aborted_and_undo_needs_its_flag(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer) -> None:
    assert cli(capsys, repo, "apply", "--env", "canary", "--wait", "--timeout", "30")[0] == 0
    (repo / "environments" / "canary.yaml").write_text(CANARY_ENV.format(version="1.3.0"))
    weights = {"canary": {"weights": {"canary": {"weight": 20}}}}
    api_server.cluster.scripts["churn"] = [
        {"phase": "Progressing", "currentStepIndex": 0, **weights},
        {"phase": "Paused", "currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep"}],
         "message": "CanaryPauseStep", **weights}]
    code, out, _ = cli(capsys, repo, "apply", "--env", "canary", "--wait", "--timeout", "3")
    assert code == 3 and "churn 1.3.0: Timeout" in out  # paused until promoted: still running
    assert "churn: Paused step 1 weight 20%" in out

    code, out, _ = cli(capsys, repo, "status", "--env", "canary")
    assert "churn: stable 1.2.0, canary 1.3.0 at 20%" in out  # stable read from the ReplicaSets

    code, out, _ = cli(capsys, repo, "rollback", "churn", "--env", "canary")
    assert code == 0 and "Aborted" in out and "rollback-pr --model churn --env canary" in out
    live = api_server.cluster.get("Rollout", "ml-canary", "churn")
    assert live is not None and live["status"]["abort"] is True

    # nothing runs any more: the way back is a change of the pin, unless --undo says otherwise
    code, _, err = cli(capsys, repo, "rollback", "churn", "--env", "canary")
    assert code == 2 and "mlops-actions rollback-pr --model churn --env canary" in err and "--undo" in err
    assert template_version(api_server.cluster.get("Rollout", "ml-canary", "churn")) == "1.3.0"
    code, out, _ = cli(capsys, repo, "rollback", "churn", "--env", "canary", "--undo")
    assert code == 0 and "runs 1.2.0 again" in out and "self-heal" in out
    assert template_version(api_server.cluster.get("Rollout", "ml-canary", "churn")) == "1.2.0"
    # Argo rolled the restored template out as a new revision of the old ReplicaSet
    revisions = {rs["metadata"]["annotations"]["rollout.argoproj.io/revision"]: template_version(rs)
                 for (_, kind, ns, _), rs in api_server.cluster.objects.items()
                 if kind == "ReplicaSet" and ns == "ml-canary"}
    assert revisions == {"3": "1.2.0", "2": "1.3.0"}


def test_a_failed_analysis_rolled_back_by_argo_exits_1(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer, mlflow_uri: str) -> None:
    assert cli(capsys, repo, "apply", "--env", "canary", "--wait", "--timeout", "30")[0] == 0
    (repo / "environments" / "canary.yaml").write_text(CANARY_ENV.format(version="1.3.0"))
    api_server.cluster.scripts["churn"] = argo_rolls_back()
    code, out, _ = cli(capsys, repo, "apply", "--env", "canary", "--wait", "--timeout", "30")
    assert code == 1 and "churn 1.3.0: RolledBack" in out and "failureLimit" in out
    assert aliases(mlflow_uri, "churn")["canary"] == "1.2.0"  # the alias stays on what serves
    # a rerun does not pretend the pin is live: Argo keeps it aborted until retried or re-pinned
    code, out, _ = cli(capsys, repo, "apply", "--env", "canary", "--wait", "--timeout", "30")
    assert code == 1 and "already live" not in out


def test_an_unreachable_api_server_exits_3_naming_the_environment_file(
        capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(dead))
    for args in (["apply", "--env", "staging", "--wait"], ["status", "--env", "staging"],
                 ["rollback", "churn", "--env", "staging"]):
        code, _, err = cli(capsys, repo, *args)
        assert code == 3, (args, err)
        assert "error: environments/staging.yaml:2:1: Kubernetes API server http://127.0.0.1:" in err
        assert "hint: check the kubeconfig context" in err


EDGE_ENV = """target:
  type: kubernetes
  namespace: ml-edge-cli
  mode: gateway-api
  gateway: {{name: edge-gateway}}
models:
  churn:
    version: "{version}"
    strategy:
      type: canary
      steps: [{{set_weight: 20}}, {{pause: {{}}}}, {{set_weight: 100}}]
"""


def test_gateway_api_canary_read_and_aborted_from_another_process(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer) -> None:
    path = repo / "environments" / "edge-cli.yaml"
    path.write_text(EDGE_ENV.format(version="1.2.0"))
    assert cli(capsys, repo, "apply", "--env", "edge-cli", "--wait", "--timeout", "30")[0] == 0
    path.write_text(EDGE_ENV.format(version="1.3.0"))
    code, out, _ = cli(capsys, repo, "apply", "--env", "edge-cli")  # declared; its driver is gone
    assert code == 0 and "churn 1.3.0: Progressing (changed)" in out
    code, out, _ = cli(capsys, repo, "status", "--env", "edge-cli")
    assert "churn: stable 1.2.0, canary 1.3.0 at 20%" in out
    code, out, _ = cli(capsys, repo, "rollback", "churn", "--env", "edge-cli")
    assert code == 0 and "aborted in the cluster" in out
    route = api_server.cluster.get("HTTPRoute", "ml-edge-cli", "churn")
    assert route is not None and route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "churn-v1-2-0", "port": 80, "weight": 100},
        {"name": "churn-v1-3-0", "port": 80, "weight": 0}]
    # the URIs came back from the live Deployments: the registry was not asked again
    deployment = api_server.cluster.get("Deployment", "ml-edge-cli", "churn-v1-3-0")
    assert deployment is not None and template_version(deployment) == "1.3.0"
    code, _, err = cli(capsys, repo, "rollback", "churn", "--env", "edge-cli", "--undo")
    assert code == 2 and "gateway-api mode" in err and "rollback-pr --model churn --env edge-cli" in err


ORDERED_ENV = """target:
  type: kubernetes
  namespace: ml-ordered
  replicas: 1
models:
  task_classifier:
    version: "{classifier}"
    depends_on: [churn]
  churn:
    version: "{churn}"
    strategy:
      type: canary
      steps:
        - set_weight: 20
        - set_weight: 100
"""


def test_depends_on_orders_the_cluster_rollouts_and_a_failure_stops_the_next(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer, mlflow_uri: str) -> None:
    """The same waves as the local gateway: the dependent model's Rollout is applied only once its
    dependency's is Healthy, and not at all when Argo rolls the dependency back."""
    env_file = repo / "environments" / "ordered.yaml"
    env_file.write_text(ORDERED_ENV.format(churn="1.2.0", classifier="0.3.1"))
    code, out, _ = cli(capsys, repo, "apply", "--env", "ordered", "--wait", "--timeout", "30")
    assert code == 0, out
    rollouts = [obj["metadata"]["name"] for obj in api_server.cluster.applied if obj["kind"] == "Rollout"]
    assert rollouts == ["churn", "task-classifier"]  # file order is the other way round
    assert out.index("wave 1/2: churn") < out.index("churn: Healthy") < out.index("wave 2/2: task_classifier")

    env_file.write_text(ORDERED_ENV.format(churn="1.3.0", classifier="2.0.0"))
    api_server.cluster.scripts["churn"] = argo_rolls_back()
    code, out, _ = cli(capsys, repo, "apply", "--env", "ordered", "--wait", "--timeout", "30")
    assert code == 1 and "churn 1.3.0: RolledBack" in out
    assert "task_classifier 2.0.0: NotStarted - not started: churn 1.3.0 rolled back in wave 1 of 2" in out
    assert template_version(api_server.cluster.get("Rollout", "ml-ordered", "task-classifier")) == "0.3.1"
    assert aliases(mlflow_uri, "task_classifier")["ordered"] == "0.3.1"
