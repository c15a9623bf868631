"""The client path against a loopback Kubernetes API server (tests/kubernetes/conftest.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_actions.cli import exit_code_for, main
from mlops_actions.config.loader import load_repo
from mlops_actions.deploy.targets.kubernetes.client import (
    KubernetesApi,
    apply_all,
    connect,
    wait_for_rollout,
)
from mlops_actions.deploy.targets.kubernetes.interface import (
    ApplyConflict,
    KubernetesError,
    ObjectRef,
    RolloutPhase,
    Unreachable,
)
from mlops_actions.deploy.targets.kubernetes.render import LABEL_ENVIRONMENT
from mlops_actions.deploy.targets.kubernetes.target import KubernetesDeployTarget, PlanAction
from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_EXTERNAL, EXIT_OK, CheckFailed
from tests.kubernetes.conftest import REPO, FakeApiServer, fake_resolve


def target(server: FakeApiServer, env_name: str = "production", **kw: Any) -> KubernetesDeployTarget:
    repo = load_repo(REPO)
    api = connect(kubeconfig=str(server.kubeconfig), timeout=5)
    return KubernetesDeployTarget(api, env_name, repo.environments[env_name], repo.models, fake_resolve,
                                  source=str(REPO / "environments" / f"{env_name}.yaml"), **kw)


def test_apply_creates_every_object_then_a_second_apply_changes_nothing(api_server: FakeApiServer) -> None:
    lines: list[str] = []
    t = target(api_server, progress=lines.append)
    first = t.reconcile(timeout=10)
    # the A/B test's stable Service was created while deploying its version A first
    assert len(first.report.applied) == 9 and [r.name for r in first.report.unchanged] == ["task-classifier"]
    assert {s.phase for s in first.rollouts} == {RolloutPhase.HEALTHY}
    rollout = api_server.cluster.get("Rollout", "ml-prod", "churn")
    assert rollout is not None
    assert rollout["metadata"]["managedFields"][0]["manager"] == "mlops-actions"
    # dependency order: templates and services before the Rollout, the route last
    kinds = [line.split(": ", 1)[1].split("/")[0] for line in lines
             if line.startswith("created") and "/churn" in line]
    assert kinds.index("AnalysisTemplate") < kinds.index("Service") < kinds.index("Rollout") \
        < kinds.index("HTTPRoute")
    writes_before = len(api_server.cluster.writes())
    second = t.reconcile(timeout=10)
    assert second.report.applied == () and len(second.report.unchanged) == 10
    assert all(s.phase is RolloutPhase.HEALTHY for s in second.rollouts)
    # idempotent: the second run's writes are no-op applies (same resourceVersion)
    assert len(api_server.cluster.writes()) - writes_before == 10
    assert all(p == PlanAction.UNCHANGED for p in (i.action for i in t.plan()))


def test_a_new_ab_test_deploys_version_a_first(api_server: FakeApiServer) -> None:
    lines: list[str] = []
    target(api_server, progress=lines.append).reconcile(timeout=10)
    versions = [o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
                for o in api_server.cluster.applied
                if o["kind"] == "Rollout" and o["metadata"]["name"] == "task-classifier"]
    assert versions == ["2.0.0", "2.1.0"]  # A stable first, then B as the canary of the A/B test
    assert "A/B test: deploying version A of task_classifier first" in lines
    # once the Rollout exists, later applies go straight to the A/B Rollout
    api_server.cluster.applied.clear()
    target(api_server).reconcile(timeout=10)
    assert [o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
            for o in api_server.cluster.applied if o["kind"] == "Rollout"
            and o["metadata"]["name"] == "task-classifier"] == ["2.1.0"]


def test_plan_shows_create_then_update_after_a_new_pin(api_server: FakeApiServer) -> None:
    t = target(api_server, "staging")
    assert {i.action for i in t.plan()} == {PlanAction.CREATE}
    t.reconcile(timeout=10)
    repo = load_repo(REPO)
    env = repo.environments["staging"]
    bumped = env.model_copy(update={"models": {**env.models, "churn": env.models["churn"].model_copy(
        update={"version": "1.2.1"})}})
    t2 = KubernetesDeployTarget(t.api, "staging", bumped, repo.models, fake_resolve, source=t.source)
    plan = {(i.ref.kind, i.ref.name): i.action for i in t2.plan()}
    assert plan[("Rollout", "churn")] is PlanAction.UPDATE
    assert plan[("Rollout", "task-classifier")] is PlanAction.UNCHANGED


def test_conflict_with_another_field_manager_is_named_and_nothing_is_written(
        api_server: FakeApiServer) -> None:
    t = target(api_server, "staging")
    t.reconcile(timeout=10)
    api_server.cluster.owned[("Rollout", "ml-staging", "churn")] = ("kubectl-edit", ".spec.replicas")
    repo = load_repo(REPO)
    env = repo.environments["staging"]
    more = env.model_copy(update={"target": env.target.model_copy(update={"replicas": 4})})
    writes = len(api_server.cluster.writes())
    t2 = KubernetesDeployTarget(t.api, "staging", more, repo.models, fake_resolve, source=t.source)
    with pytest.raises(ApplyConflict) as info:
        t2.reconcile(timeout=10)
    assert info.value.managers == ("kubectl-edit",)
    assert "kubectl-edit" in info.value.message and ".spec.replicas" in info.value.message
    assert exit_code_for(info.value) == EXIT_EXTERNAL
    assert len(api_server.cluster.writes()) == writes  # dry run caught it: nothing half-applied
    # taking ownership deliberately works
    t2.reconcile(timeout=10, force=True)
    rollout = api_server.cluster.get("Rollout", "ml-staging", "churn")
    assert rollout is not None and rollout["spec"]["replicas"] == 4


def test_a_failure_during_apply_says_what_was_applied_and_what_was_not(api_server: FakeApiServer) -> None:
    api_server.cluster.fail_apply.add(("Rollout", "churn"))
    with pytest.raises(KubernetesError) as info:
        target(api_server, "staging").reconcile(timeout=10)
    text = info.value.message
    assert "applied before the failure: Service/churn" in text
    assert "not applied: Rollout/churn" in text and "Rollout/task-classifier" in text
    assert api_server.cluster.get("Rollout", "ml-staging", "churn") is None


def test_watch_follows_the_rollout_to_healthy_with_progress(api_server: FakeApiServer) -> None:
    api_server.cluster.scripts["churn"] = [
        {"phase": "Progressing", "currentStepIndex": 1, "message": "setWeight 10"},
        {"phase": "Progressing", "currentStepIndex": 3, "message": "analysis running"},
        {"phase": "Healthy", "currentStepIndex": 8, "stableRS": "b", "currentPodHash": "b"},
    ]
    lines: list[str] = []
    result = target(api_server, progress=lines.append).reconcile(timeout=20)
    churn = next(s for s in result.rollouts if s.name == "churn")
    assert churn.phase is RolloutPhase.HEALTHY and churn.stable_version == "1.3.0"
    assert any("Rollout churn: Progressing step 1/8: setWeight 10" in line for line in lines)
    assert any("Rollout churn: Healthy step 8/8" in line for line in lines)
    assert any("watch=1" in path for _, path in api_server.cluster.requests)


def test_degraded_rollout_is_a_failed_check(api_server: FakeApiServer) -> None:
    api_server.cluster.scripts["churn"] = [
        {"phase": "Progressing", "currentStepIndex": 3},
        {"phase": "Degraded", "abort": True,
         "message": "RolloutAborted: metric \"error-rate\" assessed Failed"},
    ]
    with pytest.raises(CheckFailed) as info:
        target(api_server).reconcile(timeout=20)
    assert "rolled back" in info.value.message and "error-rate" in info.value.message


def test_paused_rollout_then_promote(api_server: FakeApiServer) -> None:
    api_server.cluster.scripts["churn"] = [{"phase": "Paused", "currentStepIndex": 5,
                                            "pauseConditions": [{"reason": "CanaryPauseStep"}]}]
    t = target(api_server)
    result = t.reconcile(timeout=20)
    churn = next(s for s in result.rollouts if s.name == "churn")
    assert churn.phase is RolloutPhase.PAUSED and churn.paused and result.settled
    after = t.promote("churn")
    assert after.phase is RolloutPhase.HEALTHY and not after.paused
    live = api_server.cluster.get("Rollout", "ml-prod", "churn")
    assert live is not None and live["spec"]["paused"] is False
    assert ("PATCH", "/apis/argoproj.io/v1alpha1/namespaces/ml-prod/rollouts/churn/status?fieldManager="
            "mlops-actions") in api_server.cluster.requests


def test_abort_rolls_back_in_the_cluster(api_server: FakeApiServer) -> None:
    t = target(api_server)
    t.reconcile(timeout=10)
    st = t.abort("churn")
    assert st.aborted and st.phase is RolloutPhase.DEGRADED
    statuses = {s.name: s for s in t.status()}
    assert statuses["churn"].phase is RolloutPhase.DEGRADED
    assert statuses["task-classifier"].phase is RolloutPhase.HEALTHY


def test_watch_times_out_with_a_clear_message(api_server: FakeApiServer) -> None:
    api_server.cluster.scripts["churn"] = [{"phase": "Progressing", "currentStepIndex": 1}] * 3
    t = target(api_server, "staging")
    t.reconcile(wait=False)
    start = time.monotonic()
    with pytest.raises(KubernetesError, match="did not settle within 1s: last phase Progressing"):
        wait_for_rollout(t.api, "ml-staging", "churn", timeout=1)
    assert time.monotonic() - start < 8


def test_prune_deletes_only_our_objects_the_environment_no_longer_declares(
        api_server: FakeApiServer) -> None:
    t = target(api_server, "staging")
    t.reconcile(timeout=10)
    stale = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "old-model", "namespace": "ml-staging",
        "labels": {"app.kubernetes.io/managed-by": "mlops-actions", LABEL_ENVIRONMENT: "staging"}},
        "spec": {"ports": [{"port": 80}]}}
    foreign = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "not-ours", "namespace": "ml-staging"}, "spec": {"ports": [{"port": 80}]}}
    t.api.apply(stale)
    t.api.apply(foreign)
    assert any(i.action is PlanAction.PRUNE and i.ref.name == "old-model" for i in t.plan(prune=True))
    kept = t.reconcile(timeout=10)  # prune is off by default
    assert kept.report.pruned == () and api_server.cluster.get("Service", "ml-staging", "old-model")
    result = t.reconcile(timeout=10, prune=True)
    assert [r.name for r in result.report.pruned] == ["old-model"]
    assert api_server.cluster.get("Service", "ml-staging", "old-model") is None
    assert api_server.cluster.get("Service", "ml-staging", "not-ours") is not None


def test_an_object_of_another_environment_is_not_overwritten(api_server: FakeApiServer) -> None:
    target(api_server, "staging").reconcile(timeout=10)
    repo = load_repo(REPO)
    other = repo.environments["staging"]
    t = KubernetesDeployTarget(connect(kubeconfig=str(api_server.kubeconfig)), "qa", other, repo.models,
                               fake_resolve)
    with pytest.raises(KubernetesError, match="belongs to environment 'staging', not 'qa'"):
        t.reconcile(timeout=5)


def test_missing_argo_rollouts_crd_says_what_to_install(api_server: FakeApiServer) -> None:
    api_server.cluster.missing_groups.add("argoproj.io")
    with pytest.raises(KubernetesError) as info:
        target(api_server, "staging").reconcile(timeout=5)
    assert "does not serve this kind" in info.value.message
    assert info.value.hint and "Argo Rollouts" in info.value.hint


def test_missing_namespace_says_to_create_it(api_server: FakeApiServer) -> None:
    api_server.cluster.missing_namespaces.add("ml-staging")
    with pytest.raises(KubernetesError) as info:
        target(api_server, "staging").reconcile(timeout=5)
    assert 'namespaces "ml-staging" not found' in info.value.message
    assert info.value.hint and "kubectl create namespace" in info.value.hint
    assert api_server.cluster.writes() == []


def test_gateway_api_mode_applies_and_waits_for_deployments(api_server: FakeApiServer) -> None:
    result = target(api_server, "edge").reconcile(timeout=10)
    assert {s.name for s in result.rollouts} == {"churn-v1-3-0", "task-classifier-v2-0-0",
                                                  "task-classifier-v2-1-0"}
    assert all(s.phase is RolloutPhase.HEALTHY for s in result.rollouts)
    route = api_server.cluster.get("HTTPRoute", "ml-edge", "task-classifier")
    assert route is not None and route["spec"]["rules"][1]["backendRefs"][1]["weight"] == 50


def _edge(version: str) -> Any:
    env = load_repo(REPO).environments["edge"]
    churn = env.models["churn"].model_copy(update={"version": version})
    return env.model_copy(update={"models": {"churn": churn}})


def _weights(server: FakeApiServer) -> dict[str, int]:
    route = server.cluster.get("HTTPRoute", "ml-edge", "churn")
    assert route is not None
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


def test_gateway_api_mode_canary_keeps_the_live_version_then_promote_and_abort(
        api_server: FakeApiServer) -> None:
    repo = load_repo(REPO)
    api = connect(kubeconfig=str(api_server.kubeconfig), timeout=5)

    def edge(version: str) -> KubernetesDeployTarget:
        return KubernetesDeployTarget(api, "edge", _edge(version), repo.models, fake_resolve)

    edge("1.2.0").reconcile(timeout=10)
    assert _weights(api_server) == {"churn-v1-2-0": 100}
    edge("1.3.0").reconcile(timeout=10)  # the live 1.2.0 is read back from the cluster
    assert _weights(api_server) == {"churn-v1-2-0": 80, "churn-v1-3-0": 20}
    again = edge("1.3.0").reconcile(timeout=10)  # idempotent: the live weight is kept
    assert again.report.applied == ()
    st = edge("1.3.0").abort("churn")
    assert _weights(api_server) == {"churn-v1-2-0": 100, "churn-v1-3-0": 0}
    assert st.phase is RolloutPhase.PROGRESSING
    edge("1.3.0").promote("churn")  # next set_weight after 0 is 20
    assert _weights(api_server) == {"churn-v1-2-0": 80, "churn-v1-3-0": 20}
    st = edge("1.3.0").promote("churn")  # the next step is 100: all traffic to the new version
    assert _weights(api_server) == {"churn-v1-3-0": 100} and st.phase is RolloutPhase.HEALTHY
    with pytest.raises(KubernetesError, match="nothing to go back to"):
        edge("1.3.0").abort("churn")


def test_wrong_credentials_are_explained(api_server: FakeApiServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(api_server.kubeconfig.read_text().replace("test-token", "wrong"))
    api = connect(kubeconfig=str(bad), timeout=5)
    with pytest.raises(KubernetesError) as info:
        api.get(ObjectRef("v1", "Service", "x", "y"))
    assert "401" in info.value.message and info.value.hint and "RBAC" in info.value.hint


def test_unreachable_api_server_fails_within_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n")
        api = connect(kubeconfig=str(kubeconfig), timeout=0.5)
        start = time.monotonic()
        with pytest.raises(Unreachable) as info:
            api.get(ObjectRef("v1", "Service", "ns", "svc"))
        assert time.monotonic() - start < 5
    assert f"127.0.0.1:{port}" in info.value.message and exit_code_for(info.value) == EXIT_EXTERNAL


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KubernetesError, match="no usable Kubernetes configuration"):
        connect(kubeconfig=str(tmp_path / "nope"))


def test_real_client_satisfies_the_port(api_server: FakeApiServer) -> None:
    api = connect(kubeconfig=str(api_server.kubeconfig))
    assert isinstance(api, KubernetesApi)
    report = apply_all(api, [{"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "1"}}],
                       environment_label=LABEL_ENVIRONMENT)
    assert [r.name for r in report.applied] == ["c"]
    assert [o["metadata"]["name"] for o in api.list("v1", "ConfigMap", "n", "")] == ["c"]
    api.delete(ObjectRef("v1", "ConfigMap", "n", "c"))
    assert api.get(ObjectRef("v1", "ConfigMap", "n", "c")) is None


# --------------------------------------------------------------------------- CLI


def cli(server: FakeApiServer, *args: str) -> int:
    return main(["-C", str(REPO), "k8s", *args, "--no-registry", "--kubeconfig", str(server.kubeconfig),
                 "--timeout", "10"])


def test_cli_plan_apply_status_promote_abort(api_server: FakeApiServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(api_server, "plan", "--env", "production") == EXIT_CHECK_FAILED
    assert "10 change(s)" in capsys.readouterr().out
    assert cli(api_server, "apply", "--env", "production") == EXIT_OK
    out = capsys.readouterr().out
    assert "applied 9, unchanged 1, pruned 0" in out and "Rollout churn: Healthy" in out
    rollout = api_server.cluster.get("Rollout", "ml-prod", "churn")
    assert rollout is not None
    env = {e["name"]: e["value"] for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "models:/churn@v1-3-0"
    assert cli(api_server, "plan", "--env", "production") == EXIT_OK
    assert cli(api_server, "status", "--env", "production") == EXIT_OK
    assert "Rollout task-classifier: Healthy" in capsys.readouterr().out
    assert cli(api_server, "abort", "--env", "production", "--model", "churn") == EXIT_OK
    assert "Degraded" in capsys.readouterr().out
    assert cli(api_server, "status", "--env", "production") == EXIT_CHECK_FAILED
    assert cli(api_server, "promote", "--env", "production", "--model", "churn", "--full") == EXIT_OK


def test_cli_errors_map_to_exit_codes(api_server: FakeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(api_server, "abort", "--env", "production") == 2
    assert "--model" in capsys.readouterr().err
    api_server.cluster.scripts["churn"] = [{"phase": "Degraded", "abort": True, "message": "analysis failed"}]
    assert cli(api_server, "apply", "--env", "production") == EXIT_CHECK_FAILED
    assert "rolled back" in capsys.readouterr().err
    assert cli(api_server, "apply", "--env", "local") == 2


def test_in_cluster_config_is_used_inside_a_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    token, cert = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("sa-token")
    cert.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(cert))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    api = connect()
    assert api.host == "https://10.96.0.1:443"
    assert api._headers()["Authorization"].lower() == "bearer sa-token"  # scheme is case-insensitive
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(KubernetesError, match="no usable Kubernetes configuration"):
        connect()
