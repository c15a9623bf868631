"""Issue 9, item 1: SIGKILL the gateway at random points of canary rollouts, and SIGKILL `apply`.

The gateway is a real process (``tests.reliability._gateway``: the real Gateway, controller,
state database and uvicorn, with stand-in models so a restart takes about a second). It is
killed with SIGKILL at seeded random moments while canaries with weights, timed pauses and an
analysis step run one after another; after each restart the test checks that the same rollout
resumes (never from an earlier step), that every answer a client got while the gateway was up
was a 200 from one of the two versions, and at the end that each rollout finished Healthy on
the declared version and that the history holds each event exactly once.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import free_port
from tests.reliability._procs import (
    OutputLines,
    Poller,
    kill9,
    persisted_state,
    start_apply,
    start_fast_gateway,
)
from tests.reliability.figures import record
from tests.serving._support import (
    TOKEN,
    shared_registry,
    stop,
    wait_for,
    write_env,
)

pytestmark = pytest.mark.slow

SEED = 20260909
GATEWAY_KILLS = 30
APPLY_KILLS = 10
VERSIONS = [("1.1.0", "fake://v2"), ("1.0.0", "fake://v1")]
CANARY: dict[str, Any] = {"type": "canary", "steps": [
    {"set_weight": 20},
    {"pause": {"duration": "0.5s"}},
    {"set_weight": 50},
    {"analysis": {"interval": "0.3s", "min_samples": 3, "metrics": [{"name": "error_rate", "max": 0.5}]}},
    {"set_weight": 80},
    {"pause": {"duration": "0.3s"}},
]}
BODY = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}


def _phase_name(rollout: dict[str, Any] | None) -> str:
    if rollout is None:
        return "none"
    if rollout["phase"] in ("Healthy", "RolledBack", "Aborted"):
        return rollout["phase"]
    step = CANARY["steps"][min(rollout["step"], len(CANARY["steps"]) - 1)]
    return f"{rollout['phase']}/{next(iter(step))}" if rollout["step"] < len(CANARY["steps"]) else "promoting"


def test_sigkill_at_random_points_of_canaries_resumes_and_converges(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    state = tmp_path / ".mlops"
    port = free_port()
    gw = start_fast_gateway(state, port)
    poller = Poller(gw.url, BODY)
    declared: list[str] = []
    kill_points: Counter[str] = Counter()
    restarts: list[float] = []
    went_back: list[str] = []
    next_version = 0
    try:
        for _ in range(GATEWAY_KILLS):
            latest = gw.status()["rollouts"].get("m")
            if latest is None or latest["phase"] in ("Healthy", "RolledBack", "Aborted"):
                assert latest is None or latest["phase"] == "Healthy", latest
                version, uri = VERSIONS[next_version % 2]
                next_version += 1
                resp = gw.admin("POST", "/admin/rollouts", json={"model": "m", "version": version, "uri": uri,
                                                                 "strategy": CANARY, "actor": "crash-test"})
                assert resp.status_code == 201, resp.text
                declared.append(version)
            time.sleep(rng.uniform(0.0, 1.0))
            kill9(gw)
            before, _ = persisted_state(state, "prod", "m")
            kill_points[_phase_name(before)] += 1
            started = time.monotonic()
            gw = start_fast_gateway(state, port)
            restarts.append(time.monotonic() - started)
            after = gw.status()["rollouts"]["m"]
            assert before is not None and after["id"] == before["id"], (before, after)
            if after["step"] < before["step"] or (before["phase"] == "Healthy" and after != before):
                went_back.append(f"{_phase_name(before)} -> {_phase_name(after)}")
        # the last rollout finishes after its restart, on the declared version
        assert wait_for(lambda: gw.status()["rollouts"]["m"]["phase"] == "Healthy", 30, 0.1), \
            gw.status()["rollouts"]["m"]
        route = gw.status()["routes"]["m"]
        history = gw.admin("GET", "/admin/history", params={"model": "m"}).json()["history"]
    finally:
        poller.close()
        stop(gw)
    assert not went_back, went_back
    assert (route["stable"], route["candidate"], route["weight"]) == (declared[-1], None, 0), route
    events = Counter(h["event"] for h in history)
    # exactly one entry per event: the first start's deploy, each declare, each restart that
    # picked up a running rollout, each promotion
    resumed = sum(n for p, n in kill_points.items() if p not in ("Healthy", "none"))
    assert events == Counter({"deployed": 1, "declared": len(declared), "promoted": len(declared),
                              "resumed": resumed}), events
    promoted = [h["version"] for h in history if h["event"] == "promoted"]
    assert promoted == declared
    answered = sum(poller.answers.values())
    unhealthy = answered - poller.answers[200]
    assert unhealthy == 0, poller.bad
    assert set(poller.versions) <= {"1.0.0", "1.1.0"} and answered > 100
    record("gateway-sigkill-canary", "crash",
           f"{GATEWAY_KILLS} SIGKILLs of the gateway at random points of {len(declared)} canaries "
           f"({', '.join(f'{n} {p}' for p, n in sorted(kill_points.items()))}): {GATEWAY_KILLS}/"
           f"{GATEWAY_KILLS} restarts resumed the same rollout at the persisted step or later, all "
           f"{len(declared)} finished Healthy on the declared version; {unhealthy} of {answered:,} "
           f"answers while up were not a 200 from a live version; history: every declare, resume and "
           "promotion recorded exactly once (stand-in models, so 30 restarts fit in CI; the load test "
           f"kills a gateway serving real MLflow models); while it restarts the gateway refuses "
           f"connections ({poller.down:,} refused) and then answers 503 NOT_READY until its models are "
           f"loaded ({poller.starting:,})",
           kills=GATEWAY_KILLS, rollouts=len(declared), kill_points=dict(kill_points),
           restart_median_s=round(statistics.median(restarts), 2), answers=answered,
           unhealthy_answers=unhealthy, refused_while_down=poller.down, history_events=dict(events),
           seed=SEED, load_average=os.getloadavg()[0])


# --------------------------------------------------------------------------- apply


APPLY_CANARY = """
type: canary
steps:
  - set_weight: 50
  - pause: {duration: 0.3s}
"""


def _stage(lines: list[str]) -> str:
    """Where an apply was when it died, from what it had printed."""
    text = "\n".join(lines)
    if "Healthy" in text:
        return "after the rollout finished (aliases)"
    if "weight" in text:
        return "watching the rollout"
    if "rolling out" in text:
        return "right after declaring"
    return "before declaring (imports, registry)"


def test_sigkill_of_apply_at_random_points_then_rerun_converges(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    from mlops_actions.deploy.apply import apply_environment

    registry = shared_registry(tmp_path_factory)
    monkeypatch.setenv("MLOPS_GATEWAY_TOKEN", TOKEN)
    name = registry.name
    client = MlflowClient(registry.tracking_uri)
    repo = tmp_path
    port = free_port()
    write_env(repo, "prod", port, "1.0.0", model=name)
    gw = start_fast_gateway(repo / ".mlops", port, model=name, version="1.0.0", uri=registry.uris["1.0.0"])
    rng = random.Random(SEED + 1)
    stages: Counter[str] = Counter()
    try:
        for cycle in range(APPLY_KILLS):
            version = "1.1.0" if cycle % 2 == 0 else "1.0.0"
            write_env(repo, "prod", port, version, APPLY_CANARY, model=name)
            # the kill point: a random time into the start-up, or a random time after the
            # n-th line the apply printed (declared, each phase change, Healthy)
            after_lines = rng.randint(0, 3)
            delay = rng.uniform(0.2, 2.0) if after_lines == 0 else rng.uniform(0.0, 0.3)
            proc = start_apply(repo, registry, "--wait", "--timeout", "60")
            out = OutputLines(proc)
            deadline = time.monotonic() + 60
            while len(out.lines) < after_lines and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
            assert proc.poll() is None, f"apply finished before its kill point:\n{out.join()}"
            proc.kill()
            proc.wait(30)
            stages[_stage(out.lines)] += 1
            out.join()
            # rerun apply (in-process: the same code as the CLI, without paying its imports again)
            lines: list[str] = []
            results = apply_environment(repo, "prod", wait=True, timeout=60, poll=0.05, progress=lines.append)
            assert [r.phase for r in results] == ["Healthy"], lines
            live = gw.status()
            route, rollout = live["routes"][name], live["rollouts"][name]
            assert (route["stable"], route["candidate"]) == (version, None), (lines, route)
            assert rollout["phase"] == "Healthy" and rollout["to_version"] == version, rollout
            aliases = {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
            assert aliases.get("prod") == registry.uris[version].rsplit("/", 1)[1], aliases
            assert "prod-canary" not in aliases, aliases
        r = requests.post(gw.url + "/invocations", json=BODY, timeout=10)
        assert r.status_code == 200 and r.headers["X-Model-Version"] == version
    finally:
        stop(gw)
    record("apply-sigkill", "crash",
           f"{APPLY_KILLS} SIGKILLs of `mlops-actions apply --env prod --wait` at random points "
           f"({', '.join(f'{n} {p}' for p, n in sorted(stages.items()))}): {APPLY_KILLS}/{APPLY_KILLS} "
           "reruns converged to the environment file (route, rollout Healthy, MLflow aliases)",
           kills=APPLY_KILLS, stages=dict(stages), seed=SEED + 1, load_average=os.getloadavg()[0])
