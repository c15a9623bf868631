"""apply over the memory target and a registry fake: aliases, idempotence, rolled-back state."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest

from mlops_actions.deploy.apply import apply_environment, environment_lock
from mlops_actions.deploy.targets.interface import TargetStatus
from mlops_actions.deploy.targets.memory import MemoryTarget
from mlops_actions.errors import TargetError
from tests.deploy.test_deployment_automation import FakeRegistry
from tests.serving._support import FakeLoader

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
