"""gateway-api mode: the rollout engine over the HTTPRoute plane, with the cluster and Prometheus
replaced by in-memory stand-ins (both are exercised for real in test_gateway_api_analysis.py)."""

from __future__ import annotations

from typing import Any

from mlops_actions.config.specs import AnalysisSpec, ModelPin
from mlops_actions.deploy.interface import Phase
from mlops_actions.deploy.rollout.plane import Computed
from mlops_actions.deploy.targets.kubernetes.progressive import GatewayApiDriver


class Route:
    """The live HTTPRoute of one model: the old version and the pinned version's weight."""

    def __init__(self, old: str | None, weight: int | None) -> None:
        self.old, self.weight = old, weight
        self.history: list[int | None] = []

    def live(self, model: str) -> tuple[str | None, int | None]:
        return self.old, self.weight

    def set(self, model: str, weight: int | None) -> None:
        self.history.append(weight)
        if weight is None:
            self.old, self.weight = None, None
        else:
            self.weight = weight


class Measured:
    """Analysis that returns the given error rate for every measurement."""

    def __init__(self, error_rate: float) -> None:
        self.error_rate = error_rate
        self.calls = 0

    def compute(self, spec: AnalysisSpec, *, model: str, version: str,
                environment: str) -> dict[str, Computed]:
        assert version == "2.0.0"  # the pinned version is the one measured
        self.calls += 1
        return {spec.metrics[0].name: Computed(self.error_rate, 100)}


def controller(strategy: dict[str, Any], route: Route, analysis: Measured) -> GatewayApiDriver:
    pin = ModelPin.model_validate({"version": "2.0.0", "strategy": strategy})
    return GatewayApiDriver("prod", {"m": pin}, analysis, route.live, route.set)


ANALYSIS = {"interval": "1s", "count": 2, "metrics": [{"name": "error_rate", "max": 0.1}]}


def run(ctl: GatewayApiDriver, route: Route, until: float = 30.0) -> Any:
    drive = ctl.start("m", now=0.0)
    now = 0.0
    while not drive.done and now < until:
        now += 0.25
        drive = ctl.tick(drive, now)
    return drive


def test_blue_green_previews_analyses_then_switches() -> None:
    route = Route("1.0.0", None)  # all traffic on 1.0.0, the pinned version behind the preview header
    drive = run(controller({"type": "blue_green", "pre_promotion_analysis": ANALYSIS}, route, Measured(0.0)),
                route)
    assert drive.phase is Phase.HEALTHY and route.history == [None] and route.old is None


def test_blue_green_post_promotion_analysis_keeps_the_old_version_until_it_passes() -> None:
    route = Route("1.0.0", None)
    strategy = {"type": "blue_green", "post_promotion_analysis": ANALYSIS}
    analysis = Measured(0.0)
    drive = run(controller(strategy, route, analysis), route)
    # switched to 100% with 1.0.0 kept, analysed twice (count 2), then 1.0.0 dropped
    assert drive.phase is Phase.HEALTHY and route.history == [100, None] and analysis.calls == 2


def test_blue_green_post_promotion_failure_switches_back_and_a_rerun_stays_back() -> None:
    route = Route("1.0.0", None)
    strategy = {"type": "blue_green", "post_promotion_analysis": {**ANALYSIS, "failure_limit": 0}}
    drive = run(controller(strategy, route, Measured(0.5)), route)
    assert drive.phase is Phase.ROLLED_BACK and route.history == [100, 0] and route.old == "1.0.0"
    # a new apply process reads the route: rolled back earlier, it does not switch again
    again = controller(strategy, route, Measured(0.0)).start("m", now=0.0)
    assert again.phase is Phase.ROLLED_BACK


def test_blue_green_restarted_during_post_promotion_analysis_resumes_it() -> None:
    route = Route("1.0.0", 100)  # switched, old kept: the previous apply died mid-analysis
    strategy = {"type": "blue_green", "pre_promotion_analysis": ANALYSIS,
                "post_promotion_analysis": ANALYSIS}
    analysis = Measured(0.0)
    ctl = controller(strategy, route, analysis)
    assert ctl.start("m", now=0.0).step == 4  # the post-promotion analysis
    drive = run(ctl, route)
    assert drive.phase is Phase.HEALTHY and route.history == [None] and analysis.calls == 2  # post only


def test_blue_green_without_auto_promote_pauses_until_promoted() -> None:
    route = Route("1.0.0", None)
    drive = run(controller({"type": "blue_green", "auto_promote": False}, route, Measured(0.0)), route, 5)
    assert drive.phase is Phase.PAUSED and route.history == []


def test_background_analysis_failure_rolls_back() -> None:
    route = Route("1.0.0", 20)
    strategy = {"type": "canary", "analysis": {**ANALYSIS, "failure_limit": 1},
                "steps": [{"set_weight": 20}, {"pause": {"duration": "10s"}}, {"set_weight": 100}]}
    analysis = Measured(0.5)
    drive = run(controller(strategy, route, analysis), route)
    assert drive.phase is Phase.ROLLED_BACK and route.history == [0] and analysis.calls == 2
    assert "background analysis failed" in drive.message


def test_inconclusive_beyond_its_limit_pauses_and_a_person_moving_the_weight_is_followed() -> None:
    route = Route("1.0.0", 20)

    class NoData(Measured):
        def compute(self, spec: AnalysisSpec, *, model: str, version: str,
                    environment: str) -> dict[str, Computed]:
            return {"error_rate": Computed(None)}

    strategy = {"type": "canary", "steps": [{"set_weight": 20}, {"analysis": ANALYSIS}, {"set_weight": 50},
                                            {"pause": {}}, {"set_weight": 100}]}
    ctl = controller(strategy, route, NoData(0.0))
    drive = run(ctl, route, 5)
    assert drive.phase is Phase.PAUSED and "inconclusive" in drive.message
    route.weight = 50  # `k8s promote` from another shell
    drive = ctl.tick(drive, 10.0)
    assert drive.step == 3 and drive.weight == 50
    route.weight = 0  # `k8s abort`
    assert ctl.tick(drive, 11.0).phase is Phase.ABORTED
