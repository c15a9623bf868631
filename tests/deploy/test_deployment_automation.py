"""Seed API part 2 over the memory target and a registry fake."""

from __future__ import annotations

import time

import pytest

from mlops_actions.config.specs import CanaryStrategy
from mlops_actions.deployment.deployment_automation import DeploymentAutomation, strategy_from_config
from mlops_actions.errors import ConfigError
from mlops_actions.registry.interface import ModelVersion
from mlops_actions.serving.memory_target import MemoryTarget


class FakeRegistry:
    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}

    def get(self, name: str, version: str) -> ModelVersion:
        n = {"1.0.0": 1, "1.1.0": 2, "2.0.0": 3}[version]
        return ModelVersion(name, version, str(n), source="x")

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[(name, alias)] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self.aliases.pop((name, alias), None)


def test_brief_config_maps_to_canary_steps() -> None:
    spec = strategy_from_config("canary", {"initial_traffic": 10, "increment": 10, "interval_minutes": 5})
    assert isinstance(spec, CanaryStrategy)
    weights = [s.set_weight for s in spec.steps if s.set_weight is not None]
    assert weights == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    analyses = [s.analysis for s in spec.steps if s.analysis is not None]
    assert len(analyses) == 9 and analyses[0].interval == "300s"
    with pytest.raises(ConfigError, match="use one of"):
        strategy_from_config("rolling", {})


def test_deploy_rollback_and_health(target: MemoryTarget) -> None:
    gw = target.gateway
    gw.config.loader.backends.clear()  # type: ignore[attr-defined]
    # the memory target serves fake://v1 as "m"; the fake registry names uris models:/m/N
    loader = gw.config.loader
    gw.cache._loader = lambda uri: loader("fake://v2" if uri.endswith("/2") else "fake://v2?fail")
    deployment = DeploymentAutomation(target, FakeRegistry(), environment="test")
    result = deployment.deploy_model("m", "1.1.0", strategy="canary",
                                     config={"initial_traffic": 50, "increment": 50,
                                             "interval_minutes": 0.001})
    assert result["status"] == "in_progress" and result["changed"]
    deadline = time.time() + 5
    while target.status().rollouts["m"].phase.value != "Healthy" and time.time() < deadline:
        target.advance(0.02)
    health = deployment._check_deployment_health("m")
    assert health["healthy"] and health["models"]["m"]["stable_version"] == "1.1.0"
    back = deployment.rollback("m")
    assert back["status"] == "rolled_back"
    target.advance(0.05)
    assert target.status().routes["m"].stable == "1.0.0"
    assert not deployment._check_deployment_health("nope")["healthy"]
