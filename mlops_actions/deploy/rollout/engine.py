"""The rollout engine: one short dispatcher, one function per strategy.

Each strategy function (:func:`run_full`, :func:`run_canary`, :func:`run_blue_green`,
:func:`run_ab_test`) is a chain of small idempotent ``reconcile_*`` steps; every
call moves a :class:`~.record.Rollout` at most one step. The engine changes traffic
only through a :class:`~.plane.RoutingPlane` and writes nothing itself: the routes it
applied, the history entries and the measurements of a step are collected in a
:class:`Step`, which the host persists together with the new record in one commit
(after the step, never across an ``await``). A host killed at any point resumes at
the same step and weight, and redoing a step changes nothing twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, assert_never

from mlops_actions.config.specs import (
    ABTestStrategy,
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStrategy,
    FullStrategy,
    Strategy,
    duration_seconds,
)
from mlops_actions.deploy.rollout.analysis import AnalysisCounts, background_tally, combine, evaluate, verdict
from mlops_actions.deploy.rollout.plane import RoutingPlane, VersionSample, Window
from mlops_actions.deploy.rollout.record import Measurement, Phase, Rollout, Route
from mlops_actions.verdict import Verdict

__all__ = [
    "BG_AWAIT_PROMOTION",
    "BG_POST_ANALYSIS",
    "BG_PREVIEW",
    "BG_PRE_ANALYSIS",
    "BG_SWITCH",
    "HistoryEntry",
    "Judge",
    "Judged",
    "Step",
    "abort",
    "judge_canary",
    "new_rollout",
    "promote",
    "reconcile",
    "run_ab_test",
    "run_blue_green",
    "run_canary",
    "run_full",
]

# blue-green sub-steps (Rollout.step)
BG_PREVIEW, BG_PRE_ANALYSIS, BG_AWAIT_PROMOTION, BG_SWITCH, BG_POST_ANALYSIS = range(5)

#: keep this many measurements on the record (all of them go to the state database)
KEEP_MEASUREMENTS = 50


@dataclass(frozen=True)
class HistoryEntry:
    version: str
    event: str
    actor: str
    detail: str = ""


@dataclass(frozen=True)
class Judged:
    """A judge's verdict on one window, with its one-sentence summary and a clause per metric."""

    verdict: Verdict
    summary: str = ""
    details: tuple[str, ...] = ()


#: canary-vs-stable judgement of one window: None when the judge has nothing to say
Judge = Callable[[AnalysisSpec, VersionSample, VersionSample | None], Verdict | Judged | None]
JUDGE_METRIC = "canary_vs_stable"


def judge_canary(spec: AnalysisSpec, candidate: VersionSample,
                 stable: VersionSample | None) -> Judged | None:
    """THE JUDGE HOOK: compare the candidate's window with the stable version's.

    With ``compare_to_stable: true`` in the analysis, :func:`mlops_actions.stats.judge.judge`
    (Kayenta's model) judges the two samples of the same window: latency (Mann-Whitney U with a
    Hodges-Lehmann shift at 98%, 10% tolerance), error rate (critical: a significant increase
    fails the whole judgement) and accuracy on late labels, each needing the analysis'
    ``min_samples`` rows on both sides; the verdict, its one-sentence summary and every metric's
    High/Low/Pass are recorded as the ``canary_vs_stable`` measurement. A failed judgement counts like
    any failed measurement; an inconclusive one (too few rows, a marginal score) is recorded but
    does not pause the rollout: the thresholds stay the guardrail. Without the key, or with no
    stable version (the first deploy), or on Kubernetes (Prometheus gives aggregates, no raw
    samples), it returns None. Another judge may be passed to
    :class:`~mlops_actions.deploy.rollout.host.RolloutHost` (``judge=``).
    """
    if not spec.compare_to_stable or stable is None or not candidate.errors or not stable.errors:
        return None
    from mlops_actions.stats import judge as kayenta  # scipy: only when a canary is judged

    rows = spec.min_samples  # the analysis' own minimum: fewer rows on a side is NoData
    metrics = [kayenta.error_rate(candidate.errors, stable.errors, critical=True, min_rows=rows),
               kayenta.latency(candidate.latencies_ms, stable.latencies_ms, min_rows=rows)]
    if candidate.correct and stable.correct:
        metrics.append(kayenta.accuracy(candidate.correct, stable.correct, min_rows=rows))
    judgement = kayenta.judge(metrics)
    return Judged(judgement.verdict, judgement.summary, tuple(m.clause() for m in judgement.metrics))


@dataclass
class Step:
    """One engine call's context: the plane it acts on, and what it did besides the record."""

    plane: RoutingPlane
    judge: Judge = judge_canary
    routes: list[Route] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    measurements: list[tuple[int, Measurement]] = field(default_factory=list)  # (step, measurement)

    def route(self, model: str) -> Route | None:
        return self.plane.route(model)

    def set_route(self, route: Route) -> None:
        self.plane.set_route(route)
        self.routes.append(route)

    def record(self, version: str, event: str, actor: str, detail: str = "") -> None:
        self.history.append(HistoryEntry(version, event, actor, detail))


def new_rollout(environment: str, model: str, current: Route, to_version: str, to_uri: str,
                strategy: Strategy, actor: str, version_b_uri: str | None = None) -> Rollout:
    now = time.time()
    return Rollout(id=uuid.uuid4().hex, environment=environment, model=model,
                   from_version=current.stable, from_uri=current.stable_uri,
                   to_version=to_version, to_uri=to_uri, strategy=strategy, version_b_uri=version_b_uri,
                   phase=Phase.PROGRESSING, step_started_at=now, analysis_started_at=now,
                   bg_started_at=now, actor=actor, created_at=now, updated_at=now,
                   message=f"rolling out {to_version} (from {current.stable}) with {strategy.type}")


# --------------------------------------------------------------------------- small steps


def _touch(r: Rollout, **changes: Any) -> Rollout:
    return replace(r, updated_at=time.time(), **changes)


def _next_step(r: Rollout, now: float, message: str = "") -> Rollout:
    return _touch(r, step=r.step + 1, phase=Phase.PROGRESSING, step_started_at=now, analysis_started_at=now,
                  successes=0, failures=0, inconclusives=0, errors=0, consecutive_errors=0,
                  message=message or r.message)


def _current(s: Step, r: Rollout) -> Route:
    return s.route(r.model) or Route(model=r.model, stable=r.from_version, stable_uri=r.from_uri)


def reconcile_rollback(s: Step, r: Rollout, phase: Phase, reason: str) -> Rollout:
    route = s.route(r.model)
    stable = Route(model=r.model, stable=r.from_version, stable_uri=r.from_uri)
    if route is not None:
        stable = replace(route.only_stable(), stable=r.from_version, stable_uri=r.from_uri)
    s.set_route(stable)
    s.record(r.to_version, "rolled_back" if phase is Phase.ROLLED_BACK else "aborted", r.actor, reason)
    return _touch(r, phase=phase, weight=0, message=reason)


def reconcile_promote(s: Step, r: Rollout) -> Rollout:
    route = s.route(r.model)
    base = route if route is not None else Route(model=r.model, stable=r.to_version, stable_uri=r.to_uri)
    s.set_route(replace(base.only_stable(), stable=r.to_version, stable_uri=r.to_uri))
    s.record(r.to_version, "promoted", r.actor, f"replaced {r.from_version}")
    return _touch(r, phase=Phase.HEALTHY, weight=r.weight if isinstance(r.strategy, ABTestStrategy) else 100,
                  message=f"{r.to_version} is stable and serves all traffic")


async def reconcile_loaded(s: Step, r: Rollout, uri: str) -> Rollout | None:
    """Make sure ``uri`` is loaded; a version that cannot load rolls the rollout back."""
    try:
        await s.plane.ensure_loaded(uri)
    except Exception as exc:
        return reconcile_rollback(s, r, Phase.ROLLED_BACK, f"could not load {uri}: {exc}")
    return None


def reconcile_weight(s: Step, r: Rollout, weight: int, now: float, mode: str = "canary",
                     mirror: bool = False) -> Rollout:
    s.set_route(replace(_current(s, r), candidate=r.to_version, candidate_uri=r.to_uri, mode=mode,
                        weight=weight, mirror=mirror))
    return _next_step(_touch(r, weight=weight), now, f"weight {weight}% to {r.to_version}")


def reconcile_pause(r: Rollout, duration: str | None, now: float) -> Rollout:
    if duration is not None and now >= r.step_started_at + duration_seconds(duration):
        return _next_step(r, now, "pause over")
    if r.phase is not Phase.PAUSED:
        why = f"paused for {duration}" if duration else \
            "paused until resumed (mlops-actions resume MODEL --env ENV)"
        return _touch(r, phase=Phase.PAUSED, message=why)
    return r


def measure_window(s: Step, r: Rollout, spec: AnalysisSpec, version: str, since: float,
                   now: float) -> list[Measurement]:
    """One window of ``version`` (and of the stable version beside it): the threshold
    guardrail's measurements, then the canary-vs-stable judge's verdict when it gives one."""
    samples = s.plane.measure(r.model, [version, r.from_version], Window(since, now, r.created_at), spec)
    candidate, stable = samples[version], samples.get(r.from_version)
    ms = evaluate(spec, candidate, stable, now)
    judged = s.judge(spec, candidate, stable)
    if judged is not None:
        j = judged if isinstance(judged, Judged) else Judged(judged)
        text = j.summary + (f" Per metric: {'; '.join(j.details)}." if j.details else "")
        message = f"{JUDGE_METRIC}: {j.verdict.value}" + (f" ({text.strip()})" if text else "")
        ms.append(Measurement(JUDGE_METRIC, j.verdict, None, candidate.requests, message, now,
                              j.summary, j.details))
    return ms


def reconcile_analysis(s: Step, r: Rollout, spec: AnalysisSpec, now: float, version: str) -> Rollout:
    """Take a measurement every ``interval``; roll back, pause, or finish the step."""
    if r.phase is Phase.PAUSED:  # inconclusive: waits for a person
        return r
    if r.phase is not Phase.ANALYZING:
        r = _touch(r, phase=Phase.ANALYZING, analysis_started_at=now, message=f"analysing {version}")
    if now < r.analysis_started_at + duration_seconds(spec.interval):
        return r
    ms = measure_window(s, r, spec, version, r.analysis_started_at, now)
    # the judge's "not sure" is shown, not counted: it never pauses a rollout the guardrail passes
    result = combine([m for m in ms if not (m.metric == JUDGE_METRIC and m.result is Verdict.INCONCLUSIVE)])
    s.measurements += [(r.step, m) for m in ms]
    counts = AnalysisCounts(r.successes, r.failures, r.inconclusives, r.errors,
                            r.consecutive_errors).add(result)
    summary = "; ".join(m.message for m in ms)
    r = _touch(r, successes=counts.successes, failures=counts.failures, inconclusives=counts.inconclusives,
               errors=counts.errors, consecutive_errors=counts.consecutive_errors, analysis_started_at=now,
               measurements=(*r.measurements, *ms)[-KEEP_MEASUREMENTS:],
               message=f"analysis {result.value}: {summary}")
    outcome = verdict(spec, counts)
    if outcome is Verdict.FAILED:
        return reconcile_rollback(s, r, Phase.ROLLED_BACK,
                                  f"analysis failed ({counts.failures} > failure_limit "
                                  f"{spec.failure_limit}): {summary}")
    if outcome is Verdict.ERROR:
        return reconcile_rollback(s, r, Phase.ROLLED_BACK,
                                  f"analysis errors ({counts.consecutive_errors} consecutive > "
                                  f"{spec.consecutive_error_limit}): {summary}")
    if outcome is Verdict.INCONCLUSIVE:
        why = "analysis inconclusive, paused until resumed or rolled back (mlops-actions resume / rollback)"
        return _touch(r, phase=Phase.PAUSED, message=f"{why}: {summary}")
    if outcome is Verdict.PASSED:
        return _next_step(r, now, f"analysis passed: {summary}")
    return r


def reconcile_background(s: Step, r: Rollout, spec: AnalysisSpec, now: float) -> Rollout:
    """Canary background analysis: measured every interval while the canary takes traffic."""
    if r.weight <= 0 or now < r.bg_started_at + duration_seconds(spec.interval):
        return r
    ms = measure_window(s, r, spec, r.to_version, r.bg_started_at, now)
    s.measurements += [(-1, m) for m in ms]
    failures, errors, why = background_tally(spec, r.bg_failures, r.bg_consecutive_errors, combine(ms))
    r = _touch(r, bg_started_at=now, bg_failures=failures, bg_consecutive_errors=errors,
               measurements=(*r.measurements, *ms)[-KEEP_MEASUREMENTS:])
    if why is not None:
        summary = "; ".join(m.message for m in ms)
        return reconcile_rollback(s, r, Phase.ROLLED_BACK, f"background analysis {why}: {summary}")
    return r


# --------------------------------------------------------------------------- strategies


async def run_full(s: Step, r: Rollout, spec: FullStrategy, now: float) -> Rollout:
    failed = await reconcile_loaded(s, r, r.to_uri)
    if failed is not None:
        return failed
    return reconcile_promote(s, r)


async def run_canary(s: Step, r: Rollout, spec: CanaryStrategy, now: float) -> Rollout:
    failed = await reconcile_loaded(s, r, r.to_uri)
    if failed is not None:
        return failed
    if spec.analysis is not None:
        r = reconcile_background(s, r, spec.analysis, now)
        if r.done:
            return r
    if r.step >= len(spec.steps):
        return reconcile_promote(s, r)
    step = spec.steps[r.step]
    if step.set_weight is not None:
        return reconcile_weight(s, r, step.set_weight, now, "canary", spec.mirror)
    if step.pause is not None:
        return reconcile_pause(r, step.pause.duration, now)
    if step.analysis is not None:
        return reconcile_analysis(s, r, step.analysis, now, r.to_version)
    raise AssertionError("a canary step has exactly one of set_weight, pause, analysis")


async def run_blue_green(s: Step, r: Rollout, spec: BlueGreenStrategy, now: float) -> Rollout:
    failed = await reconcile_loaded(s, r, r.to_uri)
    if failed is not None:
        return failed
    if r.step == BG_PREVIEW:
        s.set_route(replace(_current(s, r), candidate=r.to_version, candidate_uri=r.to_uri, mode="blue_green",
                            weight=0, preview_header=spec.preview_header))
        return _next_step(r, now, f"preview of {r.to_version} with header {spec.preview_header}")
    if r.step == BG_PRE_ANALYSIS:
        if spec.pre_promotion_analysis is None:
            return _next_step(r, now)
        return reconcile_analysis(s, r, spec.pre_promotion_analysis, now, r.to_version)
    if r.step == BG_AWAIT_PROMOTION:
        if spec.auto_promote:
            return _next_step(r, now)
        return reconcile_pause(r, None, now)
    if r.step == BG_SWITCH:
        s.set_route(replace(_current(s, r).only_stable(), stable=r.to_version, stable_uri=r.to_uri))
        s.record(r.to_version, "switched", r.actor,
                 f"active was {r.from_version}; kept warm for {spec.scale_down_delay}")
        return _next_step(_touch(r, weight=100), now, f"switched to {r.to_version}")
    if r.step == BG_POST_ANALYSIS:
        if spec.post_promotion_analysis is None:
            return _next_step(r, now)
        return reconcile_analysis(s, r, spec.post_promotion_analysis, now, r.to_version)
    return reconcile_promote(s, r)


async def run_ab_test(s: Step, r: Rollout, spec: ABTestStrategy, now: float) -> Rollout:
    b_uri = r.version_b_uri or ""
    for uri in (r.to_uri, b_uri):
        failed = await reconcile_loaded(s, r, uri)
        if failed is not None:
            return failed
    weight = round(spec.traffic_split * 100)
    s.set_route(Route(model=r.model, stable=r.to_version, stable_uri=r.to_uri,
                      candidate=spec.version_b, candidate_uri=b_uri, mode="ab_test", weight=weight,
                      sticky_header=spec.sticky_header))
    s.record(r.to_version, "ab_test", r.actor,
             f"A={r.to_version} B={spec.version_b} split {weight}% sticky on {spec.sticky_header}")
    return _touch(r, phase=Phase.HEALTHY, weight=weight,
                  message=f"A/B test running: A={r.to_version}, B={spec.version_b} gets {weight}% "
                          f"(sticky on {spec.sticky_header})")


async def reconcile(s: Step, r: Rollout, now: float | None = None) -> Rollout:
    """The dispatcher: one step of the rollout's strategy (terminal rollouts are left alone)."""
    if r.done:
        return r
    now = time.time() if now is None else now
    strategy = r.strategy
    if isinstance(strategy, FullStrategy):
        return await run_full(s, r, strategy, now)
    if isinstance(strategy, CanaryStrategy):
        return await run_canary(s, r, strategy, now)
    if isinstance(strategy, BlueGreenStrategy):
        return await run_blue_green(s, r, strategy, now)
    if isinstance(strategy, ABTestStrategy):
        return await run_ab_test(s, r, strategy, now)
    assert_never(strategy)


def promote(s: Step, r: Rollout, full: bool = False, now: float | None = None) -> Rollout:
    """A person says go: leave a pause (or inconclusive analysis), or promote at once with ``full``."""
    if r.done:
        return r
    if full:
        return reconcile_promote(s, r)
    if r.phase is Phase.PAUSED:
        return _next_step(r, time.time() if now is None else now, "promoted past the pause")
    return r


def abort(s: Step, r: Rollout, reason: str) -> Rollout:
    if r.done:
        return r
    return reconcile_rollback(s, r, Phase.ABORTED, reason)
