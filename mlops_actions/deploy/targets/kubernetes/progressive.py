"""gateway-api mode: the ``apply`` process drives the canary, as Flagger would in a cluster.

Without Argo Rollouts nothing in the cluster steps the ``HTTPRoute`` weights or
runs the analyses, so the process that applied the environment does it, one
small idempotent step per :meth:`GatewayApiController.tick`:

- ``set_weight``: re-apply the model's HTTPRoute with that share for the pinned version;
- ``pause``: wait its duration (``pause: {}``: wait for ``k8s promote``);
- ``analysis`` (and the strategy's background ``analysis``): every ``interval``,
  the same Prometheus queries the Argo ``AnalysisTemplate``s hold
  (:func:`~.render.analysis_query`), judged with the project's analysis semantics
  (:mod:`mlops_actions.deploy.analysis`: ``count``, ``failure_limit``,
  ``inconclusive_limit``, ``consecutive_error_limit``);
- a failed analysis sends all traffic back to the live version (weight 0), and the
  rollout is RolledBack; after the last step the pinned version gets all traffic.

Nothing is kept only in this process that cannot be read back: where a rollout is
comes from the live HTTPRoute's weights, so a rerun of ``apply`` after the job died
resumes after the last ``set_weight`` it finds live (pauses and analyses after it
run again, with fresh measurements). Like ``kubectl argo rollouts promote --watch``,
the job must stay alive for the rollout to move.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import requests

from mlops_actions.config.specs import (
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStep,
    CanaryStrategy,
    ModelPin,
    duration_seconds,
)
from mlops_actions.deploy.analysis import AnalysisCounts, background_tally, check, combine, verdict
from mlops_actions.deploy.interface import GateResult, Measurement, Phase
from mlops_actions.deploy.targets.kubernetes.render import analysis_query

__all__ = ["AnalysisProvider", "Drive", "GatewayApiController", "PrometheusAnalysis", "resume_step"]


class AnalysisProvider(Protocol):
    """Where measurements come from (Argo's metric provider): Prometheus in a cluster."""

    def measure(self, spec: AnalysisSpec, *, model: str, version: str, environment: str,
                at: float) -> list[Measurement]: ...


class PrometheusAnalysis:
    """The AnalysisTemplates' queries, run against ``target.prometheus_url`` by this process."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str) -> list[float]:
        """Instant query; the values of the result vector (empty: no data)."""
        resp = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=self.timeout)
        body = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
        if resp.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"Prometheus {self.url} answered {resp.status_code}: "
                               f"{body.get('errorType', '')} {body.get('error', resp.text[:200])}".strip())
        return [float(r["value"][1]) for r in body["data"]["result"]]

    def measure(self, spec: AnalysisSpec, *, model: str, version: str, environment: str,
                at: float) -> list[Measurement]:
        """One measurement per metric: no data is Inconclusive (the query returns nothing
        while fewer than ``min_samples`` requests were seen), an unreachable Prometheus is Error."""
        out: list[Measurement] = []
        for metric in spec.metrics:
            q = analysis_query(metric, spec)
            promql = (q.query.replace("{{args.model}}", model).replace("{{args.version}}", version)
                      .replace("{{args.environment}}", environment))
            try:
                values = self.query(promql)
            except (requests.RequestException, RuntimeError, ValueError, KeyError) as exc:
                out.append(Measurement(metric.name, GateResult.ERROR, None, 0,
                                       f"{metric.name}: measurement error: {type(exc).__name__}: {exc}", at))
                continue
            if not values:
                out.append(Measurement(metric.name, GateResult.INCONCLUSIVE, None, 0,
                                       f"{metric.name}: no data (fewer than min_samples {spec.min_samples} "
                                       "requests, or no labelled feedback yet)", at))
                continue
            out.append(check(metric, values[0], self._requests(spec, model, version, environment), at))
        return out

    def _requests(self, spec: AnalysisSpec, model: str, version: str, environment: str) -> int:
        """Requests in the analysis window (for the message's n=...); 0 when unknown."""
        window = f"{max(60, int(duration_seconds(spec.interval)))}s"
        sel = f'model="{model}",version="{version}",environment="{environment}"'
        try:
            values = self.query(f"sum(increase(mlops_requests_total{{{sel}}}[{window}]))")
        except (requests.RequestException, RuntimeError, ValueError, KeyError):
            return 0
        return round(values[0]) if values else 0


@dataclass(frozen=True)
class Drive:
    """Where one model's gateway-api rollout is (in memory; resumable from the live weights)."""

    model: str
    version: str
    step: int = 0
    weight: int = 0
    phase: Phase = Phase.PROGRESSING
    step_started_at: float = 0.0
    analysis_started_at: float = 0.0
    counts: AnalysisCounts = field(default_factory=AnalysisCounts)
    bg_started_at: float = 0.0
    bg_failures: int = 0
    bg_consecutive_errors: int = 0
    message: str = ""
    measurements: tuple[Measurement, ...] = ()

    @property
    def done(self) -> bool:
        return self.phase in (Phase.HEALTHY, Phase.ROLLED_BACK, Phase.ABORTED)


def resume_step(steps: list[CanaryStep], live_weight: int) -> int:
    """The step after the last ``set_weight`` at or below the live weight (0 when none is)."""
    at = [i for i, s in enumerate(steps) if s.set_weight is not None and s.set_weight == live_weight]
    if not at:
        at = [i for i, s in enumerate(steps) if s.set_weight is not None and s.set_weight < live_weight]
    return at[-1] + 1 if at else 0


#: (model key) -> (the other version on the live route or None, the pinned version's live weight or None)
LiveWeights = Callable[[str], tuple[str | None, int | None]]
#: (model key, weight or None for "all traffic to the pinned version") -> None
SetWeight = Callable[[str, int | None], None]


class GatewayApiController:
    """Steps the weights and runs the analyses of gateway-api rollouts, one tick at a time."""

    def __init__(self, environment: str, pins: dict[str, ModelPin], analysis: AnalysisProvider,
                 live_weights: LiveWeights, set_weight: SetWeight,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
        self.environment = environment
        self.pins = pins
        self.analysis = analysis
        self.live_weights = live_weights
        self.set_weight = set_weight
        self.progress = progress

    # -- start and resync

    def start(self, model: str, now: float | None = None) -> Drive:
        """A drive that continues from what the cluster serves now."""
        now = time.time() if now is None else now
        pin = self.pins[model]
        drive = Drive(model, pin.version, step_started_at=now, analysis_started_at=now, bg_started_at=now)
        old, weight = self.live_weights(model)
        if old is None:
            return replace(drive, phase=Phase.HEALTHY, weight=100,
                           message=f"{pin.version} serves all traffic")
        if weight == 0:
            return replace(drive, phase=Phase.ROLLED_BACK, message=(
                f"{pin.version} gets 0% and {old} the rest: rolled back earlier; "
                "`mlops-actions k8s promote` retries it, or revert the pin in git"))
        strategy = pin.strategy
        step = resume_step(list(strategy.steps), weight or 0) if isinstance(strategy, CanaryStrategy) else 0
        if isinstance(strategy, BlueGreenStrategy) and weight == 100:
            step = 2  # switched, the old version kept: the post-promotion analysis was running
        if step > 1:  # step 1 follows the first set_weight, which reconcile has just applied
            self.progress(f"{model}: resuming at step {step} from the live weight {weight}%")
        return replace(drive, step=step, weight=weight or 0, message=f"{weight}% to {pin.version}")

    def _resync(self, d: Drive, now: float) -> Drive | None:
        """Someone else (``k8s promote`` / ``abort``) moved the weights: follow the cluster."""
        old, weight = self.live_weights(d.model)
        if old is None:
            return replace(d, phase=Phase.HEALTHY, weight=100, message=f"{d.version} serves all traffic")
        if weight is not None and weight != d.weight:
            if weight == 0:
                return replace(d, phase=Phase.ABORTED, weight=0,
                               message=f"aborted: all traffic back to {old}")
            moved = self.start(d.model, now)
            self.progress(f"{d.model}: the live weight moved to {weight}% outside this process; following it")
            return moved
        return None

    # -- one step

    def tick(self, d: Drive, now: float | None = None) -> Drive:
        """Move the drive at most one step; terminal drives are left alone."""
        if d.done:
            return d
        now = time.time() if now is None else now
        moved = self._resync(d, now)
        if moved is not None:
            return moved
        strategy = self.pins[d.model].strategy
        if isinstance(strategy, CanaryStrategy):
            return self._canary(d, strategy, now)
        if isinstance(strategy, BlueGreenStrategy):
            return self._blue_green(d, strategy, now)
        return self._promote(d)  # full and ab_test: nothing to step

    def _canary(self, d: Drive, strategy: CanaryStrategy, now: float) -> Drive:
        if strategy.analysis is not None and d.weight > 0:
            d = self._background(d, strategy.analysis, now)
            if d.done:
                return d
        if d.step >= len(strategy.steps):
            return self._promote(d)
        step = strategy.steps[d.step]
        if step.set_weight is not None:
            self.set_weight(d.model, step.set_weight)
            self.progress(f"{d.model}: {step.set_weight}% to {d.version}")
            return self._next(replace(d, weight=step.set_weight), now, f"weight {step.set_weight}%")
        if step.pause is not None:
            return self._pause(d, step.pause.duration, now)
        if step.analysis is not None:
            return self._analysis(d, step.analysis, now)
        raise AssertionError("a canary step has exactly one of set_weight, pause, analysis")

    def _blue_green(self, d: Drive, strategy: BlueGreenStrategy, now: float) -> Drive:
        """Preview (by header) of the pinned version, pre-promotion analysis, the switch, then
        the post-promotion analysis with the old version still deployed at weight 0 (what
        Argo's ``scaleDownDelaySeconds`` keeps): a failure switches straight back to it.

        Steps: 0 pre-promotion analysis, 1 pause or switch, 2 post-promotion analysis,
        3 the old version dropped."""
        if d.step == 0 and strategy.pre_promotion_analysis is not None:
            return self._analysis(d, strategy.pre_promotion_analysis, now)
        if d.step <= 1 and not strategy.auto_promote:
            return self._pause(replace(d, step=1), None, now)
        post = strategy.post_promotion_analysis
        if post is None:
            return self._promote(d)
        if d.step <= 1:
            self.set_weight(d.model, 100)
            self.progress(f"{d.model}: all traffic to {d.version}; the old version stays deployed "
                          "until the post-promotion analysis passes")
            return replace(self._next(replace(d, step=1), now, "switched; post-promotion analysis"),
                           weight=100)
        if d.step == 2:
            return self._analysis(d, post, now)
        return self._promote(d)

    # -- small steps

    def _next(self, d: Drive, now: float, message: str) -> Drive:
        return replace(d, step=d.step + 1, phase=Phase.PROGRESSING, step_started_at=now,
                       analysis_started_at=now, counts=AnalysisCounts(), message=message)

    def _pause(self, d: Drive, duration: str | None, now: float) -> Drive:
        if duration is not None and now >= d.step_started_at + duration_seconds(duration):
            return self._next(d, now, "pause over")
        if d.phase is not Phase.PAUSED:
            why = f"paused for {duration}" if duration else \
                "paused until resumed (mlops-actions resume MODEL --env ENV)"
            self.progress(f"{d.model}: {why}")
            return replace(d, phase=Phase.PAUSED, message=why)
        return d

    def _promote(self, d: Drive) -> Drive:
        self.set_weight(d.model, None)
        self.progress(f"{d.model}: all traffic to {d.version}")
        return replace(d, phase=Phase.HEALTHY, weight=100,
                       message=f"{d.version} is stable and serves all traffic")

    def _rollback(self, d: Drive, reason: str) -> Drive:
        self.set_weight(d.model, 0)
        self.progress(f"{d.model}: rolled back: {reason}")
        return replace(d, phase=Phase.ROLLED_BACK, weight=0, message=reason)

    def _measure(self, spec: AnalysisSpec, d: Drive, now: float) -> list[Measurement]:
        return self.analysis.measure(spec, model=d.model, version=d.version, environment=self.environment,
                                     at=now)

    def _analysis(self, d: Drive, spec: AnalysisSpec, now: float) -> Drive:
        """A measurement every ``interval``; roll back, pause (inconclusive) or finish the step."""
        if d.phase is Phase.PAUSED:  # inconclusive: waits for a person
            return d
        if d.phase is not Phase.ANALYZING:
            return replace(d, phase=Phase.ANALYZING, analysis_started_at=now,
                           message=f"analysing {d.version}")
        if now < d.analysis_started_at + duration_seconds(spec.interval):
            return d
        ms = self._measure(spec, d, now)
        counts = d.counts.add(combine(ms))
        summary = "; ".join(m.message for m in ms)
        self.progress(f"{d.model}: analysis {combine(ms).value}: {summary}")
        d = replace(d, counts=counts, analysis_started_at=now, measurements=(*d.measurements, *ms)[-50:],
                    message=f"analysis {combine(ms).value}: {summary}")
        outcome = verdict(spec, counts)
        if outcome is GateResult.FAILED:
            return self._rollback(d, f"analysis failed ({counts.failures} > failure_limit "
                                     f"{spec.failure_limit}): {summary}")
        if outcome is GateResult.ERROR:
            return self._rollback(d, f"analysis errors ({counts.consecutive_errors} consecutive > "
                                     f"{spec.consecutive_error_limit}): {summary}")
        if outcome is GateResult.INCONCLUSIVE:
            return replace(d, phase=Phase.PAUSED,
                           message=f"analysis inconclusive, paused until resumed or rolled back: {summary}")
        if outcome is GateResult.PASSED:
            return self._next(d, now, f"analysis passed: {summary}")
        return d

    def _background(self, d: Drive, spec: AnalysisSpec, now: float) -> Drive:
        if now < d.bg_started_at + duration_seconds(spec.interval):
            return d
        ms = self._measure(spec, d, now)
        failures, errors, why = background_tally(spec, d.bg_failures, d.bg_consecutive_errors, combine(ms))
        d = replace(d, bg_started_at=now, bg_failures=failures, bg_consecutive_errors=errors,
                    measurements=(*d.measurements, *ms)[-50:])
        if why is not None:
            return self._rollback(d, f"background analysis {why}: {'; '.join(m.message for m in ms)}")
        return d

