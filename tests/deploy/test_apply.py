"""apply over the memory target and a registry fake: aliases, idempotence, rolled-back state."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.deploy.apply import apply_environment, environment_lock
from mlops_actions.deploy.targets.interface import TargetStatus
from mlops_actions.deploy.targets.local import LocalTarget
from mlops_actions.errors import ConfigError, TargetError
from mlops_actions.serving.memory_target import MemoryTarget
from tests.deploy.test_deployment_automation import FakeRegistry
from tests.serving._support import FakeLoader, asgi_call

CANARY = """    strategy:
      type: canary
      steps:
        - set_weight: 50
        - pause: {duration: 0.05s}
"""


class TickingTarget(MemoryTarget):
    """Advances the controller whenever apply polls, as the gateway's own loop would."""

    def status(self) -> TargetStatus:
        self.advance(0.02)
        return super().status()


def env_file(repo: Path, version: str, strategy: str = "") -> None:
    (repo / "environments").mkdir(exist_ok=True)
    (repo / "environments" / "prod.yaml").write_text(f'models:\n  m:\n    version: "{version}"\n{strategy}')


TargetT = TypeVar("TargetT", bound=TickingTarget)


def fake_target(tmp_path: Path, cls: type[TargetT]) -> TargetT:
    """A ``cls`` target for environment prod loading the FakeRegistry's registry versions 1 and 2
    as fake backends; version 3 (2.0.0) cannot load."""
    loader = FakeLoader()
    t = cls(tmp_path / ".mlops", loader, environment="prod")
    by_registry_version = {"1": "fake://v1", "2": "fake://v2", "3": "fake://missing"}
    t.gateway.cache._loader = lambda uri: loader(by_registry_version[uri.rsplit("/", 1)[1]])
    return t


@pytest.fixture()
def target(tmp_path: Path) -> TickingTarget:
    return fake_target(tmp_path, TickingTarget)


def test_apply_sets_aliases_rolls_out_and_is_idempotent(tmp_path: Path, target: TickingTarget) -> None:
    registry = FakeRegistry()
    lines: list[str] = []

    def apply() -> list[tuple[str, bool]]:
        results = apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0,
                                    timeout=10, progress=lines.append)
        return [(r.phase, r.changed) for r in results]

    env_file(tmp_path, "1.0.0")
    assert apply() == [("Healthy", True)]
    assert registry.aliases == {("m", "prod"): "1.0.0"}
    env_file(tmp_path, "1.1.0", CANARY)
    assert apply() == [("Healthy", True)]
    assert any("weight 50%" in line for line in lines)
    assert registry.aliases == {("m", "prod"): "1.1.0"}  # the canary alias came and went
    assert target.status().routes["m"].stable == "1.1.0"
    lines.clear()
    assert apply() == [("Healthy", False)]
    assert lines == ["m: 1.1.0 already live in prod: no change"]
    target.close()


def test_apply_reports_a_rollback(tmp_path: Path, target: TickingTarget) -> None:
    registry = FakeRegistry()
    env_file(tmp_path, "1.0.0")
    apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, progress=lambda _: None)
    env_file(tmp_path, "2.0.0", CANARY)  # registry version 3: cannot load
    [result] = apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0,
                                 progress=lambda _: None)
    assert result.phase == "RolledBack" and "could not load" in result.message
    assert registry.aliases == {("m", "prod"): "1.0.0"}
    target.close()


def test_rerunning_apply_after_an_automatic_rollback_keeps_the_previous_version(
        tmp_path: Path, target: TickingTarget) -> None:
    # before: the rerun declared 2.0.0's canary again, and live traffic met the failed version once more
    registry = FakeRegistry()
    env_file(tmp_path, "1.0.0")
    apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, progress=lambda _: None)
    env_file(tmp_path, "2.0.0", CANARY)
    apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, progress=lambda _: None)
    declared = len([h for h in target.host.db.history("prod", "m") if h["event"] == "declared"])
    lines: list[str] = []
    [result] = apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0,
                                 progress=lines.append)
    assert (result.phase, result.changed) == ("RolledBack", False)
    assert lines == [f"m: {result.message}"]
    assert result.message.startswith("2.0.0 was rolled back automatically (")
    assert "1.0.0 stays live until the pin changes" in result.message
    assert len([h for h in target.host.db.history("prod", "m") if h["event"] == "declared"]) == declared
    assert target.status().routes["m"].stable == "1.0.0" and target.status().routes["m"].candidate is None
    assert registry.aliases == {("m", "prod"): "1.0.0"}
    # a new pin (here the same version with another strategy: a retry on purpose) is rolled out again
    env_file(tmp_path, "2.0.0", CANARY.replace("0.05s", "0.06s"))
    [result] = apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0,
                                 progress=lambda _: None)
    assert result.changed and result.phase == "RolledBack" and "could not load" in result.message
    target.close()


def test_lock_is_per_environment(tmp_path: Path) -> None:
    with environment_lock(tmp_path, "prod"), environment_lock(tmp_path, "staging"), \
            pytest.raises(TargetError, match="another apply"), \
            environment_lock(tmp_path, "prod", timeout=0.2):
        pass


def test_resume_moves_a_paused_rollout_on_and_refuses_what_is_not_paused(
        tmp_path: Path, target: TickingTarget, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`mlops-actions resume` is Argo's `promote` of a live rollout: past a pause without duration."""
    from mlops_actions.cli import main

    monkeypatch.setattr("mlops_actions.deploy.apply.target_for", lambda *_a, **_k: target)
    registry = FakeRegistry()
    env_file(tmp_path, "1.0.0")
    apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, progress=lambda _: None)
    resume = ["-C", str(tmp_path), "resume", "m", "--env", "prod"]
    assert main(resume) == 2  # nothing runs
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["-C", str(tmp_path), "resume", "nope", "--env", "prod"]) == 2
    assert "not pinned" in capsys.readouterr().err

    env_file(tmp_path, "1.1.0", "    strategy:\n      type: canary\n      steps:\n        - set_weight: 30\n"
                                "        - pause: {}\n        - set_weight: 60\n        - pause: {}\n")
    apply_environment(tmp_path, "prod", target=target, registry=registry, wait=False, progress=lambda _: None)
    for _ in range(20):
        r = target.status().rollouts["m"]
    assert (r.phase.value, r.weight) == ("Paused", 30)
    assert "mlops-actions resume MODEL --env ENV" in r.message  # the message names the way on
    assert main(resume) == 0
    assert "resumed by" in capsys.readouterr().out
    for _ in range(20):
        r = target.status().rollouts["m"]
    assert (r.phase.value, r.weight) == ("Paused", 60)  # one step on, paused again
    assert main([*resume, "--full"]) == 0
    for _ in range(5):
        r = target.status().rollouts["m"]
    assert r.phase.value == "Healthy" and target.status().routes["m"].stable == "1.1.0"
    assert main(resume) == 2  # done: nothing to resume
    target.close()


class AsgiSession:
    """requests.Session's ``request`` answered by the memory target's gateway in-process."""

    def __init__(self, target: MemoryTarget, headers: dict[str, str]) -> None:
        self.target, self.headers = target, headers

    def request(self, method: str, url: str, *, timeout: float, json: Any = None,
                params: dict[str, str] | None = None) -> Any:
        path = urlsplit(url).path + (f"?{urlencode(params)}" if params else "")
        body = jsonlib.dumps(json).encode() if json is not None else b""
        status, _, out = self.target.loop.run_until_complete(
            asgi_call(self.target.gateway, method, path, body, dict(self.headers)))
        return SimpleNamespace(status_code=status, json=lambda: jsonlib.loads(out), text=out.decode())


def test_a_gateway_of_another_environment_refuses_apply_and_nothing_changes(
        tmp_path: Path, target: TickingTarget) -> None:
    # a staging URL pasted into production.yaml: before, apply deployed to the staging gateway, exit 0
    registry = FakeRegistry()
    env_file(tmp_path, "1.0.0")
    apply_environment(tmp_path, "prod", target=target, registry=registry, poll=0.0, progress=lambda _: None)
    before = target.host.db.history("prod", "m")
    (tmp_path / "environments" / "production.yaml").write_text('models:\n  m:\n    version: "1.1.0"\n')
    client = LocalTarget("http://127.0.0.1:8080", "t", environment="production")
    client._session = AsgiSession(target, dict(client._session.headers))  # type: ignore[assignment]
    with pytest.raises(ConfigError) as info:
        apply_environment(tmp_path, "production", target=client, registry=registry, progress=lambda _: None)
    assert info.value.message == (
        "target.url http://127.0.0.1:8080 of environments/production.yaml is the gateway of another "
        "environment: this gateway serves environment 'prod', not 'production'")
    assert exit_code_for(info.value) == 2
    assert target.host.db.history("prod", "m") == before
    assert target.status().routes["m"].stable == "1.0.0" and registry.aliases == {("m", "prod"): "1.0.0"}
    # the right environment, or a client that names none (curl), is served as before
    for environment in ("prod", None):
        client = LocalTarget("http://127.0.0.1:8080", "t", environment=environment)
        client._session = AsgiSession(target, dict(client._session.headers))  # type: ignore[assignment]
        assert client.status().environment == "prod"
    target.close()
