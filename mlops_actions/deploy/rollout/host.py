"""The rollout host: owns the state database, the ticking and the history of one environment.

It runs where the serving process runs (``mlops-actions serve`` starts it beside the
gateway, like Argo Rollouts' controller beside the pods), so a killed CI job does not
stall or corrupt a rollout. Every tick advances each active rollout one engine step:
the step (which may await a model load) runs first, then what it did (routes, history,
measurements, the new record) is written in one commit, so no transaction is ever held
across an ``await`` and a SIGKILL between two steps leaves a state that redoes at most
the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from mlops_actions.config.specs import ABTestStrategy, FullStrategy, Strategy
from mlops_actions.deploy.rollout import engine
from mlops_actions.deploy.rollout.plane import RoutingPlane
from mlops_actions.deploy.rollout.record import Measurement, Phase, Rollout, Route
from mlops_actions.deploy.rollout.state import StateDB
from mlops_actions.errors import MlopsActionsError, TargetError

__all__ = ["Declared", "NoActiveRollout", "RolloutConflict", "RolloutHost", "RolloutListener",
           "RolloutRequestError"]

log = logging.getLogger(__name__)


class RolloutRequestError(TargetError):
    """A rollout request the host refuses (the admin API answers 400)."""

    status = 400
    code = "BAD_REQUEST"


class NoActiveRollout(RolloutRequestError):
    """No such rollout or model (404)."""

    status = 404
    code = "NOT_FOUND"


class RolloutConflict(RolloutRequestError):
    """Another rollout is running, or there is nothing to go back to (409)."""

    status = 409
    code = "CONFLICT"


class RolloutListener(Protocol):
    """Told about every rollout the host holds (the gateway's metrics, unloading idle versions)."""

    def rollout_loaded(self, rollout: Rollout) -> None:
        """A rollout read back from the database at start."""
        ...

    def rollout_saved(self, rollout: Rollout) -> None: ...


class Declared:
    """What a declaration did: ``changed`` (a new rollout), the rollout and route it concerns."""

    def __init__(self, changed: bool, rollout: Rollout | None, route: Route | None) -> None:
        self.changed = changed
        self.rollout = rollout
        self.route = route


class RolloutHost:
    """One environment's rollouts over one routing plane.

    ``initial_routes``: what to serve when the database has none for a model (the pins of
    ``environments/<env>.yaml``); ``pin_routes``: they win over the database (single-model
    mode). ``tick_seconds`` None: nothing ticks on its own (tests call :meth:`tick`).
    ``check_uri`` refuses URIs the plane must not load (raises ConfigError).
    """

    def __init__(self, environment: str, db: StateDB | Path, plane: RoutingPlane, *,
                 initial_routes: Mapping[str, Route] | None = None, pin_routes: bool = False,
                 tick_seconds: float | None = 0.1, check_uri: Callable[[str], object] | None = None,
                 listener: RolloutListener | None = None, judge: engine.Judge = engine.judge_canary) -> None:
        self.environment = environment
        self.db = db if isinstance(db, StateDB) else StateDB(db)
        self.plane = plane
        self.initial_routes = dict(initial_routes or {})
        self.pin_routes = pin_routes
        self.tick_seconds = tick_seconds
        self.check_uri = check_uri
        self.listener = listener
        self.judge = judge
        self.routes: dict[str, Route] = {}
        self.rollouts: dict[str, Rollout] = {}
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Serve the stored (or initial) routes, resume unfinished rollouts, start ticking."""
        routes = self.db.routes(self.environment)
        for model, route in self.initial_routes.items():
            if model not in routes or (self.pin_routes and routes[model] != route):
                with self.db.atomic():
                    self.db.save_route(self.environment, route)
                    self.db.add_history(self.environment, model, route.stable, "deployed", "serve",
                                        "initial version from the environment file")
                routes[model] = route
        for route in routes.values():
            await self.plane.ensure_loaded(route.stable_uri)
        now = time.time()
        for model, r in self.db.latest_rollouts(self.environment).items():
            if not r.done:  # the traffic windows died with the old process: measure afresh
                r = replace(r, analysis_started_at=now, bg_started_at=now, message=f"resumed: {r.message}")
                with self.db.atomic():
                    self.db.save_rollout(r)
                    self.db.add_history(self.environment, model, r.to_version, "resumed", "serve",
                                        f"after a restart, at step {r.step} ({r.phase.value}, weight "
                                        f"{r.weight}%)")
            self.rollouts[model] = r
            if self.listener is not None:
                self.listener.rollout_loaded(r)
        for route in routes.values():
            if route.candidate_uri:
                try:
                    await self.plane.ensure_loaded(route.candidate_uri)
                except Exception as exc:  # the engine rolls back when it cannot load it
                    log.error("candidate %s of %s did not load: %s", route.candidate_uri, route.model, exc)
            self._apply(route)
        if self.tick_seconds is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(self.tick_seconds))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.db.close()

    async def _run(self, seconds: float) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(seconds)

    # ------------------------------------------------------------------ ticking
    async def tick(self) -> None:
        """Advance every active rollout by one step."""
        for model, r in list(self.rollouts.items()):
            if r.done:
                continue
            await self._preload(r)
            step = engine.Step(self.plane, self.judge)
            try:
                new = await engine.reconcile(step, r)
                self._commit(step, new if new != r else None)
            except Exception:
                log.exception("rollout %s of %s: reconcile failed; retrying next tick", r.id, model)

    async def _preload(self, r: Rollout) -> None:
        """Load the rollout's versions before its step, so the step itself does not wait on a
        model load (a version that cannot load is rolled back by the step)."""
        for uri in (r.to_uri, r.version_b_uri or ""):
            if uri:
                try:
                    await self.plane.ensure_loaded(uri)
                except Exception as exc:
                    log.error("could not load %s for rollout %s: %s", uri, r.id, exc)

    def _apply(self, route: Route) -> None:
        self.plane.set_route(route)
        self.routes = {**self.routes, route.model: route}

    def _commit(self, step: engine.Step, rollout: Rollout | None, *extra: engine.HistoryEntry,
                model: str = "") -> None:
        """Persist one step in one transaction: its routes, history, measurements, the record."""
        with self.db.atomic():
            for route in step.routes:
                self.db.save_route(self.environment, route)
                self.routes = {**self.routes, route.model: route}
            for entry in (*extra, *step.history):
                self.db.add_history(self.environment, rollout.model if rollout else model, entry.version,
                                    entry.event, entry.actor, entry.detail)
            for index, m in step.measurements:
                self.db.add_measurement(rollout.id if rollout else "", index, m)
            if rollout is not None:
                self.db.save_rollout(rollout)
                self.rollouts[rollout.model] = rollout
        if rollout is not None and self.listener is not None:
            self.listener.rollout_saved(rollout)

    # ------------------------------------------------------------------ requests
    def declare(self, model: str, version: str, uri: str, strategy: Strategy, actor: str,
                version_b_uri: str | None = None) -> Declared:
        """Start a rollout to ``version``; idempotent (the same pin twice changes nothing)."""
        if isinstance(strategy, ABTestStrategy) and not version_b_uri:
            raise RolloutRequestError("an ab_test rollout needs version_b_uri")
        if self.check_uri is not None:
            for u in (uri, *([version_b_uri] if version_b_uri else [])):  # an empty uri is refused too
                try:
                    self.check_uri(u)
                except MlopsActionsError as exc:
                    raise RolloutRequestError(str(exc)) from None
        current = self.routes.get(model)
        active = self.rollouts.get(model)
        same = active is not None and active.to_version == version and active.strategy == strategy \
            and active.version_b_uri == version_b_uri
        if active is not None and active.phase is Phase.ROLLED_BACK and same:
            # the same pin again (a rerun of apply): the failed version stays out until the pin changes
            return Declared(False, active, current)
        if active is not None and not active.done:
            if same:
                return Declared(False, active, None)
            raise RolloutConflict(f"a rollout of {model} to {active.to_version} is {active.phase.value}; "
                                  f"abort it first (mlops-actions rollback {model})")
        if current is None:
            route = Route(model=model, stable=version, stable_uri=uri)
            r = engine.new_rollout(self.environment, model, route, version, uri, FullStrategy(type="full"),
                                   actor)
        else:
            wanted_b = strategy.version_b if isinstance(strategy, ABTestStrategy) else None
            if current.stable == version and current.candidate == wanted_b and (
                    wanted_b is None or current.mode == "ab_test"):
                return Declared(False, None, current)
            r = engine.new_rollout(self.environment, model, current, version, uri, strategy, actor,
                                   version_b_uri)
        self._commit(engine.Step(self.plane), r, engine.HistoryEntry(version, "declared", actor,
                                                                     f"strategy {strategy.type}"))
        return Declared(True, r, None)

    def _active(self, model: str) -> Rollout:
        r = self.rollouts.get(model)
        if r is None or r.done:
            raise NoActiveRollout(f"no active rollout of {model!r}")
        return r

    def promote(self, model: str, full: bool = False) -> Rollout:
        step = engine.Step(self.plane)
        r = engine.promote(step, self._active(model), full)
        self._commit(step, r)
        return r

    def abort(self, model: str, reason: str) -> Rollout:
        step = engine.Step(self.plane)
        r = engine.abort(step, self._active(model), reason)
        self._commit(step, r)
        return r

    def rollback(self, model: str, actor: str) -> Rollout:
        """Abort the active rollout, or go back to the version before the current stable one."""
        active = self.rollouts.get(model)
        if active is not None and not active.done:
            return self.abort(model, f"rolled back by {actor}")
        route = self.routes.get(model)
        if route is None:
            raise NoActiveRollout(f"model {model!r} is not served here")
        if active is None or active.phase is not Phase.HEALTHY or active.to_version != route.stable \
                or active.from_version == route.stable:
            raise RolloutConflict(f"no previous version of {model} to roll back to "
                                  f"(stable is {route.stable})")
        r = engine.new_rollout(self.environment, model, route, active.from_version, active.from_uri,
                               FullStrategy(type="full"), actor)
        self._commit(engine.Step(self.plane), r,
                     engine.HistoryEntry(active.from_version, "rollback", actor, f"back from {route.stable}"))
        return r

    # ------------------------------------------------------------------ reading
    def history(self, model: str | None = None) -> list[dict[str, Any]]:
        return self.db.history(self.environment, model)

    def measurements(self, model: str) -> list[Measurement]:
        r = self.rollouts.get(model)
        if r is None:
            raise NoActiveRollout("no rollout")
        return self.db.measurements(r.id)
