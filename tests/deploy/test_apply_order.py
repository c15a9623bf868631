"""apply in dependency order (``depends_on``): waves, a failure stopping the later ones, --wait."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.deploy.apply import NOT_STARTED, apply_environment
from mlops_actions.deploy.targets.interface import Desired, Reconciled
from tests.conftest import free_port
from tests.deploy.test_apply import CANARY, TickingTarget, fake_target
from tests.deploy.test_deployment_automation import FakeRegistry
from tests.serving._support import TOKEN, Registry, start_gateway, stop


class RecordingTarget(TickingTarget):
    """Writes down, at each reconcile, the phase of every other model's latest rollout."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.declared: list[tuple[str, dict[str, str]]] = []

    def reconcile(self, desired: Desired) -> Reconciled:
        phases = {m: f"{r.to_version} {r.phase.value}" for m, r in self.host.rollouts.items()
                  if m != desired.model}
        self.declared.append((desired.model, phases))
        return super().reconcile(desired)


@pytest.fixture()
def target(tmp_path: Path) -> RecordingTarget:
    return fake_target(tmp_path, RecordingTarget)


def chain(repo: Path, features: str, churn: str, ranker: str, *, churn_strategy: str = "",
          extra: str = "") -> None:
    """features <- churn <- ranker, written out of order (the file's order is not the apply order)."""
    (repo / "environments").mkdir(exist_ok=True)
    (repo / "environments" / "prod.yaml").write_text(
        f'models:\n  ranker:\n    version: "{ranker}"\n    depends_on: [churn]\n'
        f'  churn:\n    version: "{churn}"\n    depends_on: [features]\n{churn_strategy}'
        f'  features:\n    version: "{features}"\n{extra}')


def apply(repo: Path, target: RecordingTarget, registry: FakeRegistry, lines: list[str] | None = None,
          **kwargs: object) -> list[tuple[str, str, str]]:
    results = apply_environment(repo, "prod", target=target, registry=registry, poll=0.0,
                                progress=(lines if lines is not None else []).append, **kwargs)  # type: ignore[arg-type]
    return [(r.model, r.version, r.phase) for r in results]


def deployed(repo: Path, target: RecordingTarget) -> FakeRegistry:
    """The chain applied at 1.0.0 (the starting point of a change); the target's record cleared."""
    registry = FakeRegistry()
    chain(repo, "1.0.0", "1.0.0", "1.0.0")
    apply(repo, target, registry)
    target.declared.clear()
    return registry


def test_a_three_model_chain_applies_in_order_each_healthy_before_the_next(
        tmp_path: Path, target: RecordingTarget) -> None:
    registry = FakeRegistry()
    chain(tmp_path, "1.0.0", "1.0.0", "1.0.0")
    apply(tmp_path, target, registry)
    assert [m for m, _ in target.declared] == ["features", "churn", "ranker"]
    target.declared.clear()
    lines: list[str] = []
    chain(tmp_path, "1.1.0", "1.1.0", "1.1.0", churn_strategy=CANARY)
    assert apply(tmp_path, target, registry, lines) == [
        ("features", "1.1.0", "Healthy"), ("churn", "1.1.0", "Healthy"), ("ranker", "1.1.0", "Healthy")]
    assert target.declared == [
        ("features", {"churn": "1.0.0 Healthy", "ranker": "1.0.0 Healthy"}),  # the first apply's
        ("churn", {"features": "1.1.0 Healthy", "ranker": "1.0.0 Healthy"}),  # features is Healthy first
        ("ranker", {"features": "1.1.0 Healthy", "churn": "1.1.0 Healthy"})]  # then churn's canary
    assert target.status().routes["churn"].stable == "1.1.0"
    assert [line for line in lines if line.startswith("wave")] == \
        ["wave 1/3: features", "wave 2/3: churn", "wave 3/3: ranker"]
    assert registry.aliases == {(m, "prod"): "1.1.0" for m in ("features", "churn", "ranker")}
    target.declared.clear()
    assert [p for _, _, p in apply(tmp_path, target, registry)] == ["Healthy"] * 3  # idempotent
    target.close()


def test_a_failure_in_the_middle_stops_the_third_and_leaves_the_first_serving(
        tmp_path: Path, target: RecordingTarget) -> None:
    registry = deployed(tmp_path, target)
    lines: list[str] = []
    chain(tmp_path, "1.1.0", "2.0.0", "1.1.0", churn_strategy=CANARY)  # churn 2.0.0 cannot load
    results = apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0,
                                progress=lines.append)
    assert [(r.model, r.phase) for r in results] == [
        ("features", "Healthy"), ("churn", "RolledBack"), ("ranker", NOT_STARTED)]
    ranker = results[2]
    assert ranker.blocked_by == "churn" and not ranker.changed
    assert ranker.message.startswith("not started: churn 2.0.0 rolled back in wave 2 of 3")
    assert [m for m, _ in target.declared] == ["features", "churn"]  # ranker never reached the target
    routes = target.status().routes
    assert (routes["features"].stable, routes["churn"].stable, routes["ranker"].stable) == \
        ("1.1.0", "1.0.0", "1.0.0")  # the first serves its new version; the others the old one
    assert registry.aliases[("features", "prod")] == "1.1.0"
    assert registry.aliases[("ranker", "prod")] == "1.0.0"
    assert any(line.startswith("stopped: ranker not started: churn") for line in lines)
    target.close()


def test_independent_models_share_the_first_wave(tmp_path: Path, target: RecordingTarget) -> None:
    """A model that depends on nothing is declared with the roots, as without depends_on."""
    registry = FakeRegistry()
    chain(tmp_path, "1.0.0", "1.0.0", "1.0.0", extra='  iris:\n    version: "1.0.0"\n')
    lines: list[str] = []
    apply(tmp_path, target, registry, lines)
    assert next(line for line in lines if line.startswith("wave")) == "wave 1/3: features, iris"
    assert [m for m, _ in target.declared] == ["features", "iris", "churn", "ranker"]
    target.close()


def test_without_wait_the_first_wave_with_a_rollout_is_declared_and_the_rest_wait(
        tmp_path: Path, target: RecordingTarget) -> None:
    registry = deployed(tmp_path, target)
    chain(tmp_path, "1.1.0", "1.1.0", "1.0.0")
    first = apply_environment(tmp_path, "prod", target=target, registry=registry, wait=False,
                              progress=lambda _: None)
    assert [(r.model, r.phase) for r in first] == [
        ("features", "Progressing"), ("churn", NOT_STARTED), ("ranker", NOT_STARTED)]
    assert "ordering needs --wait" in first[1].message and first[1].blocked_by == "features"
    target.advance(ticks=5)  # the gateway finishes features on its own
    second = apply_environment(tmp_path, "prod", target=target, registry=registry, wait=False,
                               progress=lambda _: None)
    assert [(r.model, r.phase) for r in second] == [
        ("features", "Healthy"), ("churn", "Progressing"), ("ranker", NOT_STARTED)]
    target.close()


def test_the_command_prints_and_summarises_what_was_not_started(
        tmp_path: Path, target: RecordingTarget, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_actions.deploy import apply as apply_module

    registry = FakeRegistry()
    monkeypatch.setattr(apply_module, "target_for", lambda *_a, **_k: target)
    monkeypatch.setattr(apply_module, "get_deploy_registry", lambda _repo: registry)
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    chain(tmp_path, "1.0.0", "1.0.0", "1.0.0")
    assert main(["-C", str(tmp_path), "apply", "--env", "prod", "--wait"]) == 0
    chain(tmp_path, "1.1.0", "2.0.0", "1.1.0", churn_strategy=CANARY)
    capsys.readouterr()
    assert main(["-C", str(tmp_path), "apply", "--env", "prod", "--wait"]) == 1
    out = capsys.readouterr().out
    assert "ranker 1.1.0: NotStarted - not started: churn 2.0.0 rolled back in wave 2 of 3" in out
    summary = output.read_text()
    assert "ranker 1.1.0 not started: churn 2.0.0 rolled back in wave 2 of 3" in summary
    assert "churn 2.0.0 rolled back: " in summary
    target.close()


@pytest.mark.slow
def test_a_chain_through_a_real_gateway_stops_at_a_version_that_cannot_load(
        repo: Path, mlflow_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """serve + apply over HTTP with MLflow: features, then churn (cannot load: rolled back), ranker
    never declared; once churn is fixed, a rerun goes on with ranker after churn is Healthy."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_registry.tracking_uri)
    sources = {v: client.get_model_version(mlflow_registry.name, uri.rsplit("/", 1)[1]).source
               for v, uri in mlflow_registry.uris.items() if v != "2.0.0"}
    sources["2.0.0"] = str(repo / "no-such-model")
    for name in ("features", "churn", "ranker"):
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
            for semver, source in sources.items():
                client.create_model_version(name, source=source, tags={"mlops.semver": semver})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLOPS_GATEWAY_TOKEN", TOKEN)
    chain(repo, "1.0.0", "1.0.0", "1.0.0", extra=f"target: {{type: local, url: '{url}'}}\n")
    gw = start_gateway(repo, "prod", port, mlflow_registry)
    try:
        chain(repo, "1.1.0", "2.0.0", "1.1.0", churn_strategy=CANARY,
              extra=f"target: {{type: local, url: '{url}'}}\n")
        results = apply_environment(repo, "prod", timeout=120, poll=0.05, progress=lambda _: None)
        assert [(r.model, r.phase) for r in results] == [
            ("features", "Healthy"), ("churn", "RolledBack"), ("ranker", NOT_STARTED)]
        assert "could not load" in results[1].message and results[2].blocked_by == "churn"
        routes = gw.status()["routes"]
        assert [routes[m]["stable"] for m in ("features", "churn", "ranker")] == ["1.1.0", "1.0.0", "1.0.0"]
        history = gw.admin("GET", "/admin/history", params={"model": "ranker"}).json()["history"]
        assert all(h["version"] != "1.1.0" for h in history)  # ranker 1.1.0 never reached the gateway

        chain(repo, "1.1.0", "1.1.0", "1.1.0", churn_strategy=CANARY,
              extra=f"target: {{type: local, url: '{url}'}}\n")
        again = apply_environment(repo, "prod", timeout=120, poll=0.05, progress=lambda _: None)
        assert [(r.model, r.phase) for r in again] == [
            ("features", "Healthy"), ("churn", "Healthy"), ("ranker", "Healthy")]
        events = gw.admin("GET", "/admin/history").json()["history"]
        promoted = max(h["at"] for h in events if h["model"] == "churn" and h["event"] == "promoted")
        declared = min(h["at"] for h in events if h["model"] == "ranker" and h["event"] == "declared")
        assert promoted < declared
    finally:
        stop(gw)
