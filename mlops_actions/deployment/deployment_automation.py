"""Seed API, part 2: ``get_deployment_automation().deploy_model(...)`` and ``.rollback(...)``.

A thin facade over :mod:`mlops_actions.deploy`: the brief's ``config`` maps
onto the rollout vocabulary (``initial_traffic`` / ``increment`` /
``interval_minutes`` become canary steps with analysis between them), and the
rollout runs inside the gateway like one declared by ``mlops-actions apply``.

Where the gateway is: ``environments/<env>.yaml`` (``target.url``) in the repo
``MLOPS_REPO`` (default ``.``), else ``MLOPS_GATEWAY_URL``; the admin token from
``MLOPS_GATEWAY_TOKEN`` or ``.mlops/gateway.token``; the environment from
``MLOPS_ENVIRONMENT`` (default ``production``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_actions.config.specs import (
    ABTestStrategy,
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStrategy,
    FullStrategy,
    Strategy,
)
from mlops_actions.deploy.interface import Phase
from mlops_actions.deploy.registry_bridge import DeployRegistry, get_deploy_registry
from mlops_actions.deploy.targets.interface import DeploymentTarget, Desired
from mlops_actions.errors import ConfigError, TargetError

__all__ = ["DeploymentAutomation", "get_deployment_automation", "strategy_from_config"]

STRATEGIES = ("canary", "blue_green", "ab_test", "full")


def _analysis(config: Mapping[str, Any]) -> AnalysisSpec:
    metrics: list[dict[str, Any]] = [{"name": "error_rate", "max": float(config.get("max_error_rate", 0.05))}]
    if config.get("max_latency_p99_ms") is not None:
        metrics.append({"name": "latency_p99_ms", "max": float(config["max_latency_p99_ms"])})
    if config.get("min_accuracy") is not None:
        metrics.append({"name": "accuracy", "min": float(config["min_accuracy"])})
    interval_s = float(config.get("interval_minutes", 5)) * 60.0
    return AnalysisSpec.model_validate({
        "interval": f"{interval_s:g}s", "count": 1, "failure_limit": 0,
        # little or no traffic in a step is no evidence against the canary: pass it on
        "inconclusive_limit": 1, "min_samples": int(config.get("min_samples", 20)), "metrics": metrics})


def strategy_from_config(strategy: str, config: Mapping[str, Any] | None,
                         current_version: str | None = None, new_version: str = "") -> Strategy:
    """Map the brief's ``config`` dict onto a Strategy spec.

    canary: ``initial_traffic`` (10), ``increment`` (10), ``interval_minutes`` (5) ->
    set_weight 10, analysis 5m, set_weight 20, analysis 5m, ... up to 100.
    """
    cfg = dict(config or {})
    if strategy == "canary":
        start, step = int(cfg.get("initial_traffic", 10)), int(cfg.get("increment", 10))
        if not 0 < start <= 100 or step <= 0:
            raise ConfigError(f"canary config initial_traffic={start} increment={step}: expected "
                              "0 < initial_traffic <= 100 and increment > 0")
        steps: list[dict[str, Any]] = []
        analysis = _analysis(cfg).model_dump(mode="json")
        weight = start
        while weight < 100:
            steps += [{"set_weight": weight}, {"analysis": analysis}]
            weight += step
        return CanaryStrategy.model_validate({"type": "canary", "steps": steps})
    if strategy == "blue_green":
        return BlueGreenStrategy(type="blue_green", auto_promote=bool(cfg.get("auto_promote", True)),
                                 pre_promotion_analysis=_analysis(cfg) if cfg.get("analysis") else None)
    if strategy == "ab_test":
        return ABTestStrategy(type="ab_test", version_b=new_version,
                              traffic_split=float(cfg.get("traffic_split", 0.5)),
                              sticky_header=str(cfg.get("sticky_header", "X-User-Id")))
    if strategy == "full":
        return FullStrategy(type="full")
    raise ConfigError(f"unknown deployment strategy {strategy!r}", hint=f"use one of {', '.join(STRATEGIES)}")


class DeploymentAutomation:
    def __init__(self, target: DeploymentTarget, registry: DeployRegistry | None = None,
                 environment: str = "production", actor: str = "", repo_root: str | Path = ".") -> None:
        self.target = target
        self.repo_root = Path(repo_root)
        self._registry = registry
        self.environment = environment
        self.actor = actor or os.environ.get("USER", "python-api")

    @property
    def registry(self) -> DeployRegistry:
        if self._registry is None:
            self._registry = get_deploy_registry(self.repo_root)
        return self._registry

    def deploy_model(self, model_name: str, model_version: str, strategy: str = "canary",
                     config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Declare a rollout; with ``config={"wait": True}`` wait for it (``timeout`` seconds)."""
        cfg = dict(config or {})
        status = self.target.status()
        current = status.routes.get(model_name)
        uri = self.registry.get(model_name, model_version).uri
        spec = strategy_from_config(strategy, cfg, current.stable if current else None, model_version)
        version, b_uri = model_version, None
        if isinstance(spec, ABTestStrategy):
            if current is None:
                raise TargetError(f"an A/B test needs {model_name} already serving a version",
                                  hint="deploy a first version with strategy='full'")
            version, b_uri = current.stable, uri
            uri = current.stable_uri
        rec = self.target.reconcile(Desired(model=model_name, version=version, uri=uri,
                                            strategy=spec.model_dump(mode="json", by_alias=True),
                                            actor=self.actor, version_b_uri=b_uri))
        rollout = rec.rollout
        if cfg.get("wait") and rollout is not None:
            deadline = time.monotonic() + float(cfg.get("timeout", 3600))
            while not rollout.done and time.monotonic() < deadline:
                time.sleep(float(cfg.get("poll_seconds", 0.5)))
                rollout = self.target.status().rollouts.get(model_name, rollout)
        phase = rollout.phase if rollout is not None else Phase.HEALTHY
        result = {Phase.HEALTHY: "success", Phase.ROLLED_BACK: "rolled_back",
                  Phase.ABORTED: "aborted"}.get(phase, "in_progress")
        return {"status": result, "model_name": model_name, "model_version": model_version,
                "strategy": strategy, "environment": self.environment, "changed": rec.changed,
                "phase": phase.value, "rollout_id": rollout.id if rollout else None,
                "message": rollout.message if rollout else "already deployed"}

    def rollback(self, model_name: str) -> dict[str, Any]:
        """Abort the running rollout, or go back to the previous stable version."""
        r = self.target.abort(model_name, self.actor)
        return {"status": "rolled_back", "model_name": model_name, "phase": r.phase.value,
                "version": r.from_version if r.phase in (Phase.ABORTED, Phase.ROLLED_BACK) else r.to_version,
                "message": r.message}

    def _check_deployment_health(self, model_name: str | None = None) -> dict[str, Any]:
        """Per model: serving (a route exists), rollout phase, and healthy overall."""
        try:
            status = self.target.status()
        except TargetError as exc:
            return {"healthy": False, "environment": self.environment, "error": str(exc), "models": {}}
        models: dict[str, Any] = {}
        for name, route in status.routes.items():
            if model_name is not None and name != model_name:
                continue
            r = status.rollouts.get(name)
            bad = r is not None and r.phase in (Phase.ROLLED_BACK, Phase.DEGRADED)
            models[name] = {"stable_version": route.stable, "candidate_version": route.candidate,
                            "weight": route.weight, "phase": r.phase.value if r else None,
                            "healthy": not bad, "message": r.message if r else ""}
        if model_name is not None and model_name not in models:
            return {"healthy": False, "environment": self.environment, "models": {},
                    "error": f"{model_name} is not served in {self.environment}"}
        return {"healthy": all(m["healthy"] for m in models.values()), "environment": self.environment,
                "models": models}


def get_deployment_automation(environment: str | None = None, repo: str | Path | None = None,
                              target: DeploymentTarget | None = None,
                              registry: DeployRegistry | None = None) -> DeploymentAutomation:
    env = environment or os.environ.get("MLOPS_ENVIRONMENT", "production")
    root = Path(repo or os.environ.get("MLOPS_REPO", "."))
    if target is None:
        from mlops_actions.deploy.targets.local import LocalTarget, read_token

        if (root / "environments" / f"{env}.yaml").exists():
            from mlops_actions.deploy.apply import load_env, target_for

            target = target_for(root, load_env(root, env), env)
        elif os.environ.get("MLOPS_GATEWAY_URL"):
            token = read_token("MLOPS_GATEWAY_TOKEN", root / ".mlops")
            target = LocalTarget(os.environ["MLOPS_GATEWAY_URL"], token)
        else:
            raise ConfigError(f"no gateway for environment {env!r}: no {root}/environments/{env}.yaml "
                              "and MLOPS_GATEWAY_URL is unset",
                              hint="set MLOPS_REPO to your repository or MLOPS_GATEWAY_URL to the gateway")
    return DeploymentAutomation(target, registry, env, repo_root=root)
