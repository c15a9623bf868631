"""The rollout controller through the memory target: real gateway code, fake backends, real traffic."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlops_actions.deploy.interface import Phase
from mlops_actions.deploy.targets.interface import Desired
from mlops_actions.serving.memory_target import MemoryTarget
from mlops_actions.verdict import Verdict
from tests.serving._support import FakeLoader

BODY = json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}).encode()


def traffic(t: MemoryTarget, n: int, headers: dict[str, str] | None = None) -> list[tuple[int, str]]:
    out = []
    for _ in range(n):
        status, _, extra = t.loop.run_until_complete(t.gateway.score("/invocations", headers or {}, BODY))
        out.append((status, dict(extra)[b"x-model-version"].decode()))
    return out


def analysis(interval: str = "0.1s", max_error: float = 0.1, **kw: Any) -> dict[str, Any]:
    return {"interval": interval, "min_samples": 5,
            "metrics": [{"name": "error_rate", "max": max_error}], **kw}


def run_until(t: MemoryTarget, model: str, phases: set[Phase], timeout: float = 5.0,
              per_tick_traffic: int = 0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if per_tick_traffic:
            traffic(t, per_tick_traffic)
        t.advance()
        r = t.status().rollouts[model]
        if r.phase in phases:
            return r
        time.sleep(0.01)
    raise AssertionError(f"phase {t.status().rollouts[model].phase} not in {phases}")


def test_canary_walks_its_steps_and_promotes(target: MemoryTarget) -> None:
    strategy = {"type": "canary", "steps": [{"set_weight": 20}, {"pause": {"duration": "0.05s"}},
                                            {"analysis": analysis()}, {"set_weight": 50}]}
    rec = target.reconcile(Desired("m", "1.1.0", "fake://v2", strategy, actor="alice"))
    assert rec.changed and rec.rollout is not None
    target.advance(ticks=2)
    route = target.status().routes["m"]
    assert (route.candidate, route.weight, route.mode) == ("1.1.0", 20, "canary")
    served = [v for _, v in traffic(target, 100)]
    assert served.count("1.1.0") == 20
    r = run_until(target, "m", {Phase.HEALTHY}, per_tick_traffic=30)  # >= 6 canary requests a tick
    assert r.to_version == "1.1.0"
    route = target.status().routes["m"]
    assert (route.stable, route.candidate, route.weight) == ("1.1.0", None, 0)
    events = [(h["version"], h["event"], h["actor"]) for h in target.host.db.history("test", "m")]
    assert ("1.1.0", "promoted", "alice") in events
    assert not target.reconcile(Desired("m", "1.1.0", "fake://v2", strategy)).changed  # idempotent


def test_a_failing_canary_rolls_back_within_one_interval(target: MemoryTarget) -> None:
    strategy = {"type": "canary", "steps": [{"set_weight": 50}, {"analysis": analysis("0.3s")},
                                            {"set_weight": 100}]}
    target.reconcile(Desired("m", "2.0.0", "fake://v2?fail", strategy))
    target.advance(ticks=2)
    r = run_until(target, "m", {Phase.ROLLED_BACK}, per_tick_traffic=10)
    # within one interval: the first analysis window failed and rolled it back, nothing more measured
    measured = target.host.db.measurements(r.id)
    assert r.failures == 1 and [(m.metric, m.result) for m in measured] == [("error_rate", Verdict.FAILED)]
    assert "error_rate" in r.message
    route = target.status().routes["m"]
    assert (route.stable, route.candidate) == ("1.0.0", None)
    assert {v for s, v in traffic(target, 20)} == {"1.0.0"}
    assert all(s == 200 for s, _ in traffic(target, 20))


def test_inconclusive_analysis_pauses_until_promoted(target: MemoryTarget) -> None:
    strategy = {"type": "canary", "steps": [{"set_weight": 10}, {"analysis": analysis("0.05s")}]}
    target.reconcile(Desired("m", "1.1.0", "fake://v2", strategy))
    r = run_until(target, "m", {Phase.PAUSED})  # no traffic: inconclusive
    assert "inconclusive" in r.message
    target.promote("m")
    assert run_until(target, "m", {Phase.HEALTHY}).to_version == "1.1.0"


def test_pause_without_duration_waits_for_a_person(target: MemoryTarget) -> None:
    target.reconcile(Desired("m", "1.1.0", "fake://v2",
                             {"type": "canary", "steps": [{"set_weight": 30}, {"pause": {}}]}))
    run_until(target, "m", {Phase.PAUSED})
    target.advance(0.1)
    assert target.status().rollouts["m"].phase is Phase.PAUSED
    aborted = target.abort("m", "bob")
    assert aborted.phase is Phase.ABORTED
    assert target.status().routes["m"].candidate is None


def test_blue_green_preview_then_switch(target: MemoryTarget) -> None:
    strategy = {"type": "blue_green", "auto_promote": False, "preview_header": "X-Preview",
                "scale_down_delay": "0.2s"}
    target.reconcile(Desired("m", "1.1.0", "fake://v2", strategy))
    run_until(target, "m", {Phase.PAUSED})
    assert {v for _, v in traffic(target, 10)} == {"1.0.0"}
    assert {v for _, v in traffic(target, 10, {"x-preview": "1"})} == {"1.1.0"}
    target.promote("m")
    run_until(target, "m", {Phase.HEALTHY})
    assert {v for _, v in traffic(target, 10)} == {"1.1.0"}
    assert "fake://v1" in target.gateway._batchers  # the old version stays warm for scale_down_delay
    target.advance(0.35)
    assert "fake://v1" not in target.gateway._batchers and "fake://v2" in target.gateway._batchers


def test_ab_test_is_sticky(target: MemoryTarget) -> None:
    strategy = {"type": "ab_test", "version_b": "1.1.0", "traffic_split": 0.5, "sticky_header": "X-User-Id"}
    target.reconcile(Desired("m", "1.0.0", "fake://v1", strategy, version_b_uri="fake://v2"))
    r = run_until(target, "m", {Phase.HEALTHY})
    assert "A/B" in r.message
    for user in ("u1", "u2", "u3", "u4"):
        assert len({v for _, v in traffic(target, 5, {"x-user-id": user})}) == 1
    served = {v for i in range(40) for _, v in traffic(target, 1, {"x-user-id": f"user{i}"})}
    assert served == {"1.0.0", "1.1.0"}


def test_a_version_that_cannot_load_rolls_back(target: MemoryTarget) -> None:
    target.reconcile(Desired("m", "9.0.0", "fake://missing", {"type": "full"}))
    r = run_until(target, "m", {Phase.ROLLED_BACK})
    assert "could not load" in r.message
    assert target.status().routes["m"].stable == "1.0.0"


def test_state_survives_a_restart_at_the_same_step_and_weight(tmp_path: Path) -> None:
    t = MemoryTarget(tmp_path / ".mlops", FakeLoader())
    t.reconcile(Desired("m", "1.0.0", "fake://v1"))
    t.advance()
    t.reconcile(Desired("m", "1.1.0", "fake://v2", {"type": "canary", "steps": [
        {"set_weight": 40}, {"pause": {}}, {"set_weight": 80}]}))
    run_until(t, "m", {Phase.PAUSED})
    before = t.status().rollouts["m"]
    t.close()
    t2 = MemoryTarget(tmp_path / ".mlops", FakeLoader())
    after = t2.status().rollouts["m"]
    assert (after.phase, after.step, after.weight) == (before.phase, before.step, before.weight) == \
        (Phase.PAUSED, 1, 40)
    assert t2.status().routes["m"].weight == 40
    assert [v for _, v in traffic(t2, 10)].count("1.1.0") == 4
    t2.promote("m")
    assert run_until(t2, "m", {Phase.HEALTHY}).to_version == "1.1.0"
    t2.close()


def test_rollback_after_success_returns_to_the_previous_version(target: MemoryTarget) -> None:
    target.reconcile(Desired("m", "1.1.0", "fake://v2", {"type": "full"}))
    run_until(target, "m", {Phase.HEALTHY})
    r = target.abort("m", "carol")  # no active rollout: go back to 1.0.0
    assert r.to_version == "1.0.0"
    run_until(target, "m", {Phase.HEALTHY})
    assert target.status().routes["m"].stable == "1.0.0"
