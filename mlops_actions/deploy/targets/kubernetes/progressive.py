"""gateway-api mode: the ``apply`` process runs the rollout engine, as Flagger would in a cluster.

Without Argo Rollouts nothing in the cluster steps the ``HTTPRoute`` weights or
runs the analyses, so the process that applied the environment does it, one
engine step per :meth:`GatewayApiDriver.tick`, through the
:class:`~.plane.HttpRoutePlane` (the same engine and strategy functions as the
local gateway's host: :mod:`mlops_actions.deploy.rollout.engine`):

- ``set_weight``: re-apply the model's HTTPRoute with that share for the pinned version;
- ``pause``: wait its duration (``pause: {}``: wait for ``k8s promote``);
- ``analysis`` (and the strategy's background ``analysis``): every ``interval``,
  the same Prometheus queries the Argo ``AnalysisTemplate``s hold
  (:func:`~.render.analysis_query`), judged with the project's analysis semantics;
- a failed analysis sends all traffic back to the live version (weight 0), and the
  rollout is RolledBack; after the last step the pinned version gets all traffic.

Nothing is kept only in this process that cannot be read back: where a rollout is
comes from the live HTTPRoute's weights, so a rerun of ``apply`` after the job died
resumes after the last ``set_weight`` it finds live (pauses and analyses after it
run again, with fresh measurements). Like ``kubectl argo rollouts promote --watch``,
the job must stay alive for the rollout to move.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

import requests

from mlops_actions.config.specs import (
    AnalysisSpec,
    BlueGreenStrategy,
    CanaryStep,
    CanaryStrategy,
    ModelPin,
    duration_seconds,
)
from mlops_actions.deploy.rollout import engine
from mlops_actions.deploy.rollout.analysis import evaluate
from mlops_actions.deploy.rollout.plane import Computed, VersionSample
from mlops_actions.deploy.rollout.record import Measurement, Phase, Rollout
from mlops_actions.deploy.targets.kubernetes.plane import (
    AnalysisProvider,
    HttpRoutePlane,
    LiveWeights,
    SetWeight,
)
from mlops_actions.deploy.targets.kubernetes.render import analysis_query

__all__ = ["AnalysisProvider", "GatewayApiDriver", "PrometheusAnalysis", "resume_step"]


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

    def compute(self, spec: AnalysisSpec, *, model: str, version: str,
                environment: str) -> dict[str, Computed]:
        """One value per metric: none while the query returns nothing (fewer than
        ``min_samples`` requests were seen), an error when Prometheus cannot be asked."""
        out: dict[str, Computed] = {}
        for metric in spec.metrics:
            q = analysis_query(metric, spec)
            promql = (q.query.replace("{{args.model}}", model).replace("{{args.version}}", version)
                      .replace("{{args.environment}}", environment))
            try:
                values = self.query(promql)
            except (requests.RequestException, RuntimeError, ValueError, KeyError) as exc:
                out[metric.name] = Computed(None, 0, f"{type(exc).__name__}: {exc}")
                continue
            if not values:
                out[metric.name] = Computed(None)
                continue
            out[metric.name] = Computed(values[0], self._requests(spec, model, version, environment))
        return out

    def measure(self, spec: AnalysisSpec, *, model: str, version: str, environment: str,
                at: float) -> list[Measurement]:
        """One measurement per metric: no data is Inconclusive, an unreachable Prometheus is Error."""
        computed = self.compute(spec, model=model, version=version, environment=environment)
        return evaluate(spec, VersionSample(version, computed=computed), None, at)

    def _requests(self, spec: AnalysisSpec, model: str, version: str, environment: str) -> int:
        """Requests in the analysis window (for the message's n=...); 0 when unknown."""
        window = f"{max(60, int(duration_seconds(spec.interval)))}s"
        sel = f'model="{model}",version="{version}",environment="{environment}"'
        try:
            values = self.query(f"sum(increase(mlops_requests_total{{{sel}}}[{window}]))")
        except (requests.RequestException, RuntimeError, ValueError, KeyError):
            return 0
        return round(values[0]) if values else 0


def resume_step(steps: list[CanaryStep], live_weight: int) -> int:
    """The step after the last ``set_weight`` at or below the live weight (0 when none is)."""
    at = [i for i, s in enumerate(steps) if s.set_weight is not None and s.set_weight == live_weight]
    if not at:
        at = [i for i, s in enumerate(steps) if s.set_weight is not None and s.set_weight < live_weight]
    return at[-1] + 1 if at else 0


class GatewayApiDriver:
    """Runs gateway-api rollouts with the rollout engine, one step per :meth:`tick`.

    The rollout records live in this process; :meth:`start` rebuilds one from the live
    weights, so a rerun resumes where a dead job left the route.
    """

    def __init__(self, environment: str, pins: dict[str, ModelPin], analysis: AnalysisProvider,
                 live_weights: LiveWeights, set_weight: SetWeight,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
        self.environment = environment
        self.pins = pins
        self.live_weights = live_weights
        self.progress = progress
        self.plane = HttpRoutePlane(environment, pins, analysis, live_weights, set_weight, progress)

    # -- start and resync

    def start(self, model: str, now: float | None = None) -> Rollout:
        """A rollout record that continues from what the cluster serves now."""
        now = time.time() if now is None else now
        pin = self.pins[model]
        old, weight = self.live_weights(model)
        r = Rollout(id=uuid.uuid4().hex, environment=self.environment, model=model,
                    from_version=old or "", from_uri="", to_version=pin.version, to_uri="",
                    strategy=pin.strategy, step_started_at=now, analysis_started_at=now, bg_started_at=now,
                    created_at=now, updated_at=now)
        if old is None:
            return replace(r, phase=Phase.HEALTHY, weight=100, message=f"{pin.version} serves all traffic")
        if weight == 0:
            return replace(r, phase=Phase.ROLLED_BACK, message=(
                f"{pin.version} gets 0% and {old} the rest: rolled back earlier; "
                "`mlops-actions k8s promote` retries it, or revert the pin in git"))
        strategy = pin.strategy
        step = resume_step(list(strategy.steps), weight or 0) if isinstance(strategy, CanaryStrategy) else 0
        if isinstance(strategy, BlueGreenStrategy) and weight == 100:
            step = engine.BG_POST_ANALYSIS  # switched, the old version kept: its analysis was running
        if step > 1:  # step 1 follows the first set_weight, which reconcile has just applied
            self.progress(f"{model}: resuming at step {step} from the live weight {weight}%")
        return replace(r, step=step, weight=weight or 0, message=f"{weight}% to {pin.version}")

    def _resync(self, r: Rollout, now: float) -> Rollout | None:
        """Someone else (``k8s promote`` / ``abort``) moved the weights: follow the cluster."""
        old, weight = self.live_weights(r.model)
        if old is None:
            return replace(r, phase=Phase.HEALTHY, weight=100, message=f"{r.to_version} serves all traffic")
        if weight is not None and weight != r.weight:
            if weight == 0:
                return replace(r, phase=Phase.ABORTED, weight=0,
                               message=f"aborted: all traffic back to {old}")
            moved = self.start(r.model, now)
            self.progress(f"{r.model}: the live weight moved to {weight}% outside this process; "
                          "following it")
            return moved
        return None

    # -- one step

    def tick(self, r: Rollout, now: float | None = None) -> Rollout:
        """Move the rollout at most one step; terminal rollouts are left alone."""
        if r.done:
            return r
        now = time.time() if now is None else now
        moved = self._resync(r, now)
        if moved is not None:
            return moved
        new = asyncio.run(engine.reconcile(engine.Step(self.plane), r, now))
        if new.phase is Phase.HEALTHY and self.live_weights(r.model)[0] is not None:
            self.plane.drop_old(r.model)  # done: the old version leaves the route
        if new.measurements != r.measurements or (new.phase is Phase.PAUSED and new.message != r.message):
            self.progress(f"{r.model}: {new.message}")  # each measurement, and why it waits
        return new
