"""Gateway API ``HTTPRoute`` weights as a :class:`~mlops_actions.deploy.rollout.plane.RoutingPlane`.

In ``gateway-api`` mode nothing in the cluster steps the weights, so the rollout
engine does, from the ``apply`` process, through this plane:

- ``route``: the model's live HTTPRoute read back (the other version, the pinned
  version's share);
- ``set_route``: the HTTPRoute re-applied with the pinned version's share; all
  traffic to the pinned version drops the old one from the route, except while a
  blue-green post-promotion analysis may still switch back to it (what Argo's
  ``scaleDownDelaySeconds`` keeps); a blue-green preview is already rendered by
  ``apply`` (a header match), so it writes nothing;
- ``ensure_loaded``: nothing to do (the pods' readiness is what ``status`` watches);
- ``measure``: the analysis queries of the ``AnalysisTemplate``s, run against
  Prometheus (aggregates, not raw samples: :attr:`VersionSample.computed`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mlops_actions.config.specs import AnalysisSpec, BlueGreenStrategy, ModelPin
from mlops_actions.deploy.rollout.plane import Computed, VersionSample, Window
from mlops_actions.deploy.rollout.record import Route

__all__ = ["AnalysisProvider", "HttpRoutePlane", "LiveWeights", "SetWeight"]

#: (model key) -> (the other version on the live route or None, the pinned version's live weight or None)
LiveWeights = Callable[[str], tuple[str | None, int | None]]
#: (model key, weight or None for "all traffic to the pinned version, the old one dropped") -> None
SetWeight = Callable[[str, int | None], None]


class AnalysisProvider(Protocol):
    """Where measurements come from (Argo's metric provider): Prometheus in a cluster."""

    def compute(self, spec: AnalysisSpec, *, model: str, version: str,
                environment: str) -> dict[str, Computed]:
        """One value per metric of ``spec`` for ``version``."""
        ...


class HttpRoutePlane:
    """The routing plane of one environment's HTTPRoutes (``pins``: the environment's models)."""

    def __init__(self, environment: str, pins: Mapping[str, ModelPin], analysis: AnalysisProvider,
                 live_weights: LiveWeights, set_weight: SetWeight,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
        self.environment = environment
        self.pins = pins
        self.analysis = analysis
        self.live_weights = live_weights
        self.set_weight = set_weight
        self.progress = progress

    def route(self, model: str) -> Route | None:
        pinned = self.pins[model].version
        old, weight = self.live_weights(model)
        if old is None:
            return Route(model=model, stable=pinned, stable_uri="")
        return Route(model=model, stable=old, stable_uri="", candidate=pinned, candidate_uri="",
                     mode="canary", weight=weight or 0)

    def set_route(self, route: Route) -> None:
        pin = self.pins[route.model]
        model, pinned = route.model, pin.version
        if route.candidate == pinned:
            if route.mode == "blue_green":
                return  # the preview: apply rendered the header match to the pinned version
            self.set_weight(model, route.weight)
            self.progress(f"{model}: {route.weight}% to {pinned}")
        elif route.stable == pinned:
            old, weight = self.live_weights(model)
            if old is None:
                return  # the old version has left the route already
            strategy = pin.strategy
            if isinstance(strategy, BlueGreenStrategy) and strategy.post_promotion_analysis is not None:
                if weight == 100:
                    return  # switched already
                self.set_weight(model, 100)
                self.progress(f"{model}: all traffic to {pinned}; the old version stays deployed "
                              "until the post-promotion analysis passes")
            else:
                self.drop_old(model)
        else:
            self.set_weight(model, 0)
            self.progress(f"{model}: all traffic back to {route.stable}")

    def drop_old(self, model: str) -> None:
        """All traffic to the pinned version, the old one off the route (once the rollout is done)."""
        self.set_weight(model, None)
        self.progress(f"{model}: all traffic to {self.pins[model].version}")

    async def ensure_loaded(self, uri: str) -> None:
        return None  # Deployments: their readiness is read by the target's status

    def measure(self, model: str, versions: Sequence[str], window: Window,
                spec: AnalysisSpec) -> dict[str, VersionSample]:
        """Prometheus for the pinned version (its queries cover their own range; the window's
        bounds are the cadence); the other versions are not queried."""
        pinned = self.pins[model].version
        return {v: VersionSample(v, computed=self.analysis.compute(spec, model=model, version=v,
                                                                   environment=self.environment))
                if v == pinned else VersionSample(v) for v in versions}
