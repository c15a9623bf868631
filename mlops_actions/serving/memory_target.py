"""An in-process target for unit tests: the real rollout host and gateway, no HTTP, no uvicorn.

``advance(seconds)`` runs host ticks, so tests drive a rollout step by step with
fake backends and synthetic traffic (``gateway.stats.record``) or real scoring
calls (``gateway.score``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

from mlops_actions.deploy.rollout.host import RolloutHost, RolloutRequestError
from mlops_actions.deploy.rollout.record import Rollout, parse_strategy
from mlops_actions.deploy.targets.interface import Desired, Reconciled, TargetStatus
from mlops_actions.errors import TargetError
from mlops_actions.serving.gateway import GatewayConfig
from mlops_actions.serving.interface import BackendLoader
from mlops_actions.serving.local_plane import host_of, local_gateway

__all__ = ["MemoryTarget"]


class MemoryTarget:
    def __init__(self, state_dir: Path, loader: BackendLoader, environment: str = "test",
                 tick_seconds: float = 0.01) -> None:
        self.loop = asyncio.new_event_loop()
        self.tick_seconds = tick_seconds
        self.gateway = local_gateway(GatewayConfig(environment=environment, state_dir=state_dir,
                                                   token="t", loader=loader,  # noqa: S106
                                                   tick_seconds=tick_seconds), tick=False)
        self.host: RolloutHost = host_of(self.gateway)  # ticks are driven by advance()
        self.loop.run_until_complete(self.gateway.start())

    def reconcile(self, desired: Desired) -> Reconciled:
        try:
            done = self.host.declare(desired.model, desired.version, desired.uri,
                                     parse_strategy(desired.strategy), desired.actor or "admin-api",
                                     desired.version_b_uri)
        except PydanticValidationError as exc:
            raise TargetError(f"invalid strategy: {exc}") from None
        except RolloutRequestError as exc:
            raise TargetError(exc.message) from None
        return Reconciled(done.changed, done.rollout, self.host.routes.get(desired.model))

    def status(self) -> TargetStatus:
        return TargetStatus(self.host.environment, dict(self.host.routes), dict(self.host.rollouts))

    def promote(self, model: str, full: bool = False) -> Rollout:
        try:
            return self.host.promote(model, full)
        except RolloutRequestError as exc:
            raise TargetError(exc.message) from None

    def abort(self, model: str, actor: str = "") -> Rollout:
        try:
            return self.host.rollback(model, actor or "test")
        except RolloutRequestError as exc:
            raise TargetError(exc.message) from None

    def advance(self, seconds: float = 0.0, ticks: int = 1) -> None:
        """Run at least ``ticks`` host ticks, and keep ticking for ``seconds``."""
        end = time.time() + seconds
        n = 0
        while n < ticks or time.time() < end:
            self.loop.run_until_complete(self.host.tick())
            n += 1
            if time.time() < end:
                time.sleep(self.tick_seconds)

    def close(self) -> None:
        self.loop.run_until_complete(self.gateway.stop())
        self.loop.close()
