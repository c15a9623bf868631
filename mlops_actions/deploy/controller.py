"""The rollout controller: one short dispatcher, one function per strategy.

Each strategy function is a chain of small idempotent ``reconcile_*`` steps;
every call moves a :class:`Rollout` at most one step and the caller persists
the result, so a gateway killed at any point resumes at the same step and
weight. The controller only changes routes through a :class:`RoutingPlane`
(the gateway), which never sends traffic to a version that is not loaded.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any, Protocol, assert_never

from pydantic import TypeAdapter

from mlops_actions.config.specs import (
    ABTestStrategy,
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStrategy,
    FullStrategy,
    Strategy,
    duration_seconds,
)
from mlops_actions.deploy.analysis import (
    AnalysisCounts,
    StatsSource,
    background_tally,
    combine,
    measure,
    verdict,
)
from mlops_actions.deploy.interface import GateResult, Phase, Rollout, Route
from mlops_actions.deploy.state import StateDB
from mlops_actions.monitoring.interface import PredictionStore

__all__ = [
    "RoutingPlane",
    "abort",
    "new_rollout",
    "parse_strategy",
    "promote",
    "reconcile",
    "run_ab_test",
    "run_blue_green",
    "run_canary",
    "run_full",
]

_STRATEGY = TypeAdapter(Strategy)

# blue-green sub-steps (Rollout.step)
BG_PREVIEW, BG_PRE_ANALYSIS, BG_AWAIT_PROMOTION, BG_SWITCH, BG_POST_ANALYSIS = range(5)


class RoutingPlane(Protocol):
    """What the controller needs from the gateway."""

    environment: str
    db: StateDB
    store: PredictionStore | None

    @property
    def stats(self) -> StatsSource: ...

    def route(self, model: str) -> Route | None: ...

    def set_route(self, route: Route) -> None:
        """Persist and apply atomically; requests in flight finish on the old route."""
        ...

    async def ensure_loaded(self, uri: str) -> None:
        """Load a version (raises when it cannot be loaded)."""
        ...


def parse_strategy(data: dict[str, Any]) -> Strategy:
    return _STRATEGY.validate_python(data)


def new_rollout(environment: str, model: str, current: Route, to_version: str, to_uri: str,
                strategy: Strategy, actor: str, extra: dict[str, Any] | None = None) -> Rollout:
    now = time.time()
    return Rollout(id=uuid.uuid4().hex, environment=environment, model=model,
                   from_version=current.stable, from_uri=current.stable_uri,
                   to_version=to_version, to_uri=to_uri,
                   strategy={**strategy.model_dump(mode="json", by_alias=True), **(extra or {})},
                   phase=Phase.PROGRESSING, step_started_at=now, analysis_started_at=now,
                   bg_started_at=now, actor=actor, created_at=now, updated_at=now,
                   message=f"rolling out {to_version} (from {current.stable}) with {strategy.type}")


# --------------------------------------------------------------------------- small steps


def _touch(r: Rollout, **changes: Any) -> Rollout:
    return replace(r, updated_at=time.time(), **changes)


def _next_step(r: Rollout, message: str = "") -> Rollout:
    now = time.time()
    return _touch(r, step=r.step + 1, phase=Phase.PROGRESSING, step_started_at=now, analysis_started_at=now,
                  successes=0, failures=0, inconclusives=0, errors=0, consecutive_errors=0,
                  message=message or r.message)


def reconcile_rollback(plane: RoutingPlane, r: Rollout, phase: Phase, reason: str) -> Rollout:
    route = plane.route(r.model)
    stable = Route(model=r.model, stable=r.from_version, stable_uri=r.from_uri)
    if route is not None:
        stable = replace(route.only_stable(), stable=r.from_version, stable_uri=r.from_uri)
    plane.set_route(stable)
    plane.db.add_history(r.environment, r.model, r.to_version,
                         "rolled_back" if phase is Phase.ROLLED_BACK else "aborted", r.actor, reason)
    return _touch(r, phase=phase, weight=0, message=reason)


def reconcile_promote(plane: RoutingPlane, r: Rollout) -> Rollout:
    route = plane.route(r.model)
    base = route if route is not None else Route(model=r.model, stable=r.to_version, stable_uri=r.to_uri)
    plane.set_route(replace(base.only_stable(), stable=r.to_version, stable_uri=r.to_uri))
    plane.db.add_history(r.environment, r.model, r.to_version, "promoted", r.actor,
                         f"replaced {r.from_version}")
    return _touch(r, phase=Phase.HEALTHY, weight=100 if r.strategy.get("type") != "ab_test" else r.weight,
                  message=f"{r.to_version} is stable and serves all traffic")


async def reconcile_loaded(plane: RoutingPlane, r: Rollout, uri: str) -> Rollout | None:
    """Make sure ``uri`` is loaded; a version that cannot load rolls the rollout back."""
    try:
        await plane.ensure_loaded(uri)
    except Exception as exc:
        return reconcile_rollback(plane, r, Phase.ROLLED_BACK, f"could not load {uri}: {exc}")
    return None


def reconcile_weight(plane: RoutingPlane, r: Rollout, weight: int, mode: str = "canary",
                     mirror: bool = False) -> Rollout:
    route = plane.route(r.model) or Route(model=r.model, stable=r.from_version, stable_uri=r.from_uri)
    plane.set_route(replace(route, candidate=r.to_version, candidate_uri=r.to_uri, mode=mode,
                            weight=weight, mirror=mirror))
    return _next_step(_touch(r, weight=weight), f"weight {weight}% to {r.to_version}")


def reconcile_pause(r: Rollout, duration: str | None, now: float) -> Rollout:
    if duration is not None and now >= r.step_started_at + duration_seconds(duration):
        return _next_step(r, "pause over")
    if r.phase is not Phase.PAUSED:
        why = f"paused for {duration}" if duration else \
            "paused until resumed (mlops-actions resume MODEL --env ENV)"
        return _touch(r, phase=Phase.PAUSED, message=why)
    return r


def reconcile_analysis(plane: RoutingPlane, r: Rollout, spec: AnalysisSpec, now: float,
                       version: str, on_pass: Phase | None = None) -> Rollout:
    """Take a measurement every ``interval``; roll back, pause, or finish the step."""
    if r.phase is Phase.PAUSED:  # inconclusive: waits for a person
        return r
    if r.phase is not Phase.ANALYZING:
        r = _touch(r, phase=Phase.ANALYZING, analysis_started_at=now, message=f"analysing {version}")
    if now < r.analysis_started_at + duration_seconds(spec.interval):
        return r
    ms = measure(spec, model=r.model, version=version, stable_version=r.from_version, stats=plane.stats,
                 store=plane.store, since=r.analysis_started_at, until=now, labels_since=r.created_at)
    result = combine(ms)
    for m in ms:
        plane.db.add_measurement(r.id, r.step, m)
    counts = AnalysisCounts(r.successes, r.failures, r.inconclusives, r.errors,
                            r.consecutive_errors).add(result)
    summary = "; ".join(m.message for m in ms)
    r = _touch(r, successes=counts.successes, failures=counts.failures, inconclusives=counts.inconclusives,
               errors=counts.errors, consecutive_errors=counts.consecutive_errors, analysis_started_at=now,
               measurements=(*r.measurements, *ms)[-50:], message=f"analysis {result.value}: {summary}")
    outcome = verdict(spec, counts)
    if outcome is GateResult.FAILED:
        return reconcile_rollback(plane, r, Phase.ROLLED_BACK,
                                  f"analysis failed ({counts.failures} > failure_limit "
                                  f"{spec.failure_limit}): {summary}")
    if outcome is GateResult.ERROR:
        return reconcile_rollback(plane, r, Phase.ROLLED_BACK,
                                  f"analysis errors ({counts.consecutive_errors} consecutive > "
                                  f"{spec.consecutive_error_limit}): {summary}")
    if outcome is GateResult.INCONCLUSIVE:
        why = "analysis inconclusive, paused until resumed or rolled back (mlops-actions resume / rollback)"
        return _touch(r, phase=Phase.PAUSED, message=f"{why}: {summary}")
    if outcome is GateResult.PASSED:
        return _next_step(r, f"analysis passed: {summary}")
    return r


def reconcile_background(plane: RoutingPlane, r: Rollout, spec: AnalysisSpec, now: float) -> Rollout:
    """Canary background analysis: measured every interval while the canary takes traffic."""
    if r.weight <= 0 or now < r.bg_started_at + duration_seconds(spec.interval):
        return r
    ms = measure(spec, model=r.model, version=r.to_version, stable_version=r.from_version, stats=plane.stats,
                 store=plane.store, since=r.bg_started_at, until=now, labels_since=r.created_at)
    for m in ms:
        plane.db.add_measurement(r.id, -1, m)
    failures, errors, why = background_tally(spec, r.bg_failures, r.bg_consecutive_errors, combine(ms))
    r = _touch(r, bg_started_at=now, bg_failures=failures, bg_consecutive_errors=errors,
               measurements=(*r.measurements, *ms)[-50:])
    if why is not None:
        summary = "; ".join(m.message for m in ms)
        return reconcile_rollback(plane, r, Phase.ROLLED_BACK, f"background analysis {why}: {summary}")
    return r


# --------------------------------------------------------------------------- strategies


async def run_full(plane: RoutingPlane, r: Rollout, spec: FullStrategy, now: float) -> Rollout:
    failed = await reconcile_loaded(plane, r, r.to_uri)
    if failed is not None:
        return failed
    return reconcile_promote(plane, r)


async def run_canary(plane: RoutingPlane, r: Rollout, spec: CanaryStrategy, now: float) -> Rollout:
    failed = await reconcile_loaded(plane, r, r.to_uri)
    if failed is not None:
        return failed
    if spec.analysis is not None:
        r = reconcile_background(plane, r, spec.analysis, now)
        if r.done:
            return r
    if r.step >= len(spec.steps):
        return reconcile_promote(plane, r)
    step = spec.steps[r.step]
    if step.set_weight is not None:
        return reconcile_weight(plane, r, step.set_weight, "canary", spec.mirror)
    if step.pause is not None:
        return reconcile_pause(r, step.pause.duration, now)
    if step.analysis is not None:
        return reconcile_analysis(plane, r, step.analysis, now, r.to_version)
    raise AssertionError("a canary step has exactly one of set_weight, pause, analysis")


async def run_blue_green(plane: RoutingPlane, r: Rollout, spec: BlueGreenStrategy, now: float) -> Rollout:
    failed = await reconcile_loaded(plane, r, r.to_uri)
    if failed is not None:
        return failed
    if r.step == BG_PREVIEW:
        route = plane.route(r.model) or Route(model=r.model, stable=r.from_version, stable_uri=r.from_uri)
        plane.set_route(replace(route, candidate=r.to_version, candidate_uri=r.to_uri, mode="blue_green",
                                weight=0, preview_header=spec.preview_header))
        return _next_step(r, f"preview of {r.to_version} with header {spec.preview_header}")
    if r.step == BG_PRE_ANALYSIS:
        if spec.pre_promotion_analysis is None:
            return _next_step(r)
        return reconcile_analysis(plane, r, spec.pre_promotion_analysis, now, r.to_version)
    if r.step == BG_AWAIT_PROMOTION:
        if spec.auto_promote:
            return _next_step(r)
        return reconcile_pause(r, None, now)
    if r.step == BG_SWITCH:
        route = plane.route(r.model) or Route(model=r.model, stable=r.from_version, stable_uri=r.from_uri)
        plane.set_route(replace(route.only_stable(), stable=r.to_version, stable_uri=r.to_uri))
        plane.db.add_history(r.environment, r.model, r.to_version, "switched", r.actor,
                             f"active was {r.from_version}; kept warm for {spec.scale_down_delay}")
        return _next_step(_touch(r, weight=100), f"switched to {r.to_version}")
    if r.step == BG_POST_ANALYSIS:
        if spec.post_promotion_analysis is None:
            return _next_step(r)
        return reconcile_analysis(plane, r, spec.post_promotion_analysis, now, r.to_version)
    return reconcile_promote(plane, r)


async def run_ab_test(plane: RoutingPlane, r: Rollout, spec: ABTestStrategy, now: float) -> Rollout:
    b_uri = str(r.strategy.get("version_b_uri", ""))
    for uri in (r.to_uri, b_uri):
        failed = await reconcile_loaded(plane, r, uri)
        if failed is not None:
            return failed
    weight = round(spec.traffic_split * 100)
    plane.set_route(Route(model=r.model, stable=r.to_version, stable_uri=r.to_uri,
                          candidate=spec.version_b, candidate_uri=b_uri, mode="ab_test", weight=weight,
                          sticky_header=spec.sticky_header))
    plane.db.add_history(r.environment, r.model, r.to_version, "ab_test", r.actor,
                         f"A={r.to_version} B={spec.version_b} split {weight}% "
                         f"sticky on {spec.sticky_header}")
    return _touch(r, phase=Phase.HEALTHY, weight=weight,
                  message=f"A/B test running: A={r.to_version}, B={spec.version_b} gets {weight}% "
                          f"(sticky on {spec.sticky_header})")


async def reconcile(plane: RoutingPlane, r: Rollout, now: float | None = None) -> Rollout:
    """The dispatcher: one step of the rollout's strategy (terminal rollouts are left alone)."""
    if r.done:
        return r
    now = time.time() if now is None else now
    strategy = parse_strategy({k: v for k, v in r.strategy.items() if k != "version_b_uri"})
    if isinstance(strategy, FullStrategy):
        return await run_full(plane, r, strategy, now)
    if isinstance(strategy, CanaryStrategy):
        return await run_canary(plane, r, strategy, now)
    if isinstance(strategy, BlueGreenStrategy):
        return await run_blue_green(plane, r, strategy, now)
    if isinstance(strategy, ABTestStrategy):
        return await run_ab_test(plane, r, strategy, now)
    assert_never(strategy)


def promote(plane: RoutingPlane, r: Rollout, full: bool = False) -> Rollout:
    """A person says go: leave a pause (or inconclusive analysis), or promote at once with ``full``."""
    if r.done:
        return r
    if full:
        return reconcile_promote(plane, r)
    if r.phase is Phase.PAUSED:
        return _next_step(r, "promoted past the pause")
    return r


def abort(plane: RoutingPlane, r: Rollout, reason: str) -> Rollout:
    if r.done:
        return r
    return reconcile_rollback(plane, r, Phase.ABORTED, reason)
