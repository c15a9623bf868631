"""An in-process target for unit tests: the real gateway controller, no HTTP, no uvicorn.

``advance(seconds)`` runs controller ticks, so tests drive a rollout step by
step with fake backends and synthetic traffic (``gateway.stats.record``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mlops_actions.deploy.interface import Rollout
from mlops_actions.deploy.targets.interface import Desired, Reconciled, TargetStatus
from mlops_actions.errors import TargetError
from mlops_actions.serving.gateway import Gateway, GatewayConfig, _HttpError
from mlops_actions.serving.interface import BackendLoader

__all__ = ["MemoryTarget"]


class MemoryTarget:
    def __init__(self, state_dir: Path, loader: BackendLoader, environment: str = "test",
                 tick_seconds: float = 0.01) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway = Gateway(GatewayConfig(environment=environment, state_dir=state_dir, token="t",  # noqa: S106
                                             loader=loader, tick_seconds=tick_seconds))
        self.loop.run_until_complete(self.gateway.start())
        assert self.gateway._controller_task is not None
        self.gateway._controller_task.cancel()  # ticks are driven by advance()

    def reconcile(self, desired: Desired) -> Reconciled:
        body = {"model": desired.model, "version": desired.version, "uri": desired.uri,
                "strategy": desired.strategy, "actor": desired.actor, "version_b_uri": desired.version_b_uri}
        try:
            _, data = self.gateway.declare(body)
        except _HttpError as exc:
            raise TargetError(exc.message) from None
        rollout = Rollout.from_dict(data["rollout"]) if data.get("rollout") else None
        return Reconciled(bool(data["changed"]), rollout, self.gateway.routes.get(desired.model))

    def status(self) -> TargetStatus:
        return TargetStatus(self.gateway.environment, dict(self.gateway.routes), dict(self.gateway.rollouts))

    def promote(self, model: str, full: bool = False) -> Rollout:
        try:
            return self.gateway.promote(model, full)
        except _HttpError as exc:
            raise TargetError(exc.message) from None

    def abort(self, model: str, actor: str = "") -> Rollout:
        try:
            return Rollout.from_dict(self.gateway.rollback(model, actor or "test")["rollout"])
        except _HttpError as exc:
            raise TargetError(exc.message) from None

    def advance(self, seconds: float = 0.0, ticks: int = 1) -> None:
        """Run at least ``ticks`` controller ticks, and keep ticking for ``seconds``."""
        end = time.time() + seconds
        n = 0
        while n < ticks or time.time() < end:
            self.loop.run_until_complete(self.gateway.tick())
            n += 1
            if time.time() < end:
                time.sleep(self.gateway.config.tick_seconds)

    def close(self) -> None:
        self.loop.run_until_complete(self.gateway.stop())
        self.loop.close()
