"""End to end: `serve` + `apply` as subprocesses, real MLflow registry, real traffic.

A broken canary rolls back within one analysis interval and `apply` exits 1;
the brief's deployment snippet runs; a gateway killed with SIGKILL during a
canary resumes at the same step and weight; a second apply changes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.serving._support import ROOT, Registry, gateway_env, start_gateway, stop, wait_for, write_env

pytestmark = pytest.mark.slow

CANARY_BROKEN = """
type: canary
steps:
  - set_weight: 50
  - analysis:
      interval: 0.5s
      min_samples: 5
      metrics: [{name: error_rate, max: 0.1}]
  - set_weight: 100
"""

CANARY_PAUSED = """
type: canary
steps:
  - set_weight: 30
  - pause: {}
  - set_weight: 60
  - pause: {duration: 0.2s}
"""


def apply(repo: Path, registry: Registry, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_actions", "-C", str(repo), "apply", "--env", "prod",
                           *extra], capture_output=True, text=True, env=gateway_env(registry), cwd=ROOT,
                          timeout=120)


class Traffic:
    """Clients posting all the time; counts status codes and versions seen."""

    def __init__(self, url: str, rows: list[list[float]]) -> None:
        self.url = url
        self.rows = rows
        self.codes: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                r = session.post(self.url + "/invocations", json={"inputs": self.rows[:1]}, timeout=5)
            except requests.RequestException:
                time.sleep(0.05)  # the gateway is restarting
                session = requests.Session()
                continue
            self.codes[r.status_code] += 1
            self.versions[r.headers.get("X-Model-Version", "")] += 1

    def reset(self) -> None:
        self.codes.clear()
        self.versions.clear()

    def wait(self, requests_seen: int, timeout: float = 30.0) -> None:
        """Poll until the clients have counted ``requests_seen`` answers since the last reset."""
        if not wait_for(lambda: sum(self.codes.values()) >= requests_seen, timeout):
            raise AssertionError(f"only {sum(self.codes.values())} answers in {timeout:g} s, "
                                 f"expected {requests_seen}")

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def test_canary_rollback_seed_api_sigkill_resume_and_idempotent_apply(
        repo: Path, mlflow_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    name = mlflow_registry.name
    port = free_port()
    write_env(repo, "prod", port, "1.0.0")
    gw = start_gateway(repo, "prod", port, mlflow_registry)
    traffic = Traffic(gw.url, mlflow_registry.rows)
    client = MlflowClient(mlflow_registry.tracking_uri)
    try:
        # 1. a canary whose version raises: rolled back within one interval, apply exits 1
        write_env(repo, "prod", port, "2.0.0", CANARY_BROKEN)
        result = apply(repo, mlflow_registry, "--wait", "--timeout", "60")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "RolledBack" in result.stdout
        r = gw.status()["rollouts"][name]
        assert r["phase"] == "RolledBack" and "error_rate" in r["message"]
        # rolled back on the first analysis window: one failed measurement, none after it
        measured = gw.admin("GET", f"/admin/rollouts/{name}/measurements").json()["measurements"]
        assert r["failures"] == 1 and [m["result"] for m in measured] == ["failed"], measured
        assert gw.status()["routes"][name]["stable"] == "1.0.0"
        assert "prod-canary" not in client.get_registered_model(name).aliases
        traffic.reset()
        traffic.wait(50)
        assert set(traffic.codes) == {200} and set(traffic.versions) == {"1.0.0"}

        # 2. the brief's snippet (mlops -> mlops_actions): deploy a canary, then roll back
        monkeypatch.setenv("MLOPS_REPO", str(repo))
        monkeypatch.setenv("MLOPS_ENVIRONMENT", "prod")
        monkeypatch.setenv("MLOPS_GATEWAY_TOKEN", "test-token-0123456789")
        from mlops_actions.deployment.deployment_automation import get_deployment_automation

        deployment = get_deployment_automation()
        result_seed = deployment.deploy_model(
            model_name="task_classifier",
            model_version="1.1.0",
            strategy="canary",
            config={
                'initial_traffic': 10,
                'increment': 10,
                'interval_minutes': 5
            }
        )
        assert result_seed["status"] == "in_progress"
        assert wait_for(lambda: gw.status()["routes"][name]["weight"] == 10, 10)
        assert deployment._check_deployment_health()["healthy"]
        deployment.rollback("task_classifier")
        assert gw.status()["rollouts"][name]["phase"] == "Aborted"
        assert gw.status()["routes"][name]["candidate"] is None

        # 3. canary paused at 30%; SIGKILL; restart resumes at the same step and weight
        from mlops_actions.deploy.apply import apply_environment

        write_env(repo, "prod", port, "1.1.0", CANARY_PAUSED)
        lines: list[str] = []
        declared = apply_environment(repo, "prod", wait=False, progress=lines.append)
        assert [d.changed for d in declared] == [True], lines
        assert wait_for(lambda: gw.status()["rollouts"][name]["phase"] == "Paused", 10)
        assert str(client.get_registered_model(name).aliases.get("prod-canary")) == "2"
        before = gw.status()["rollouts"][name]
        stop(gw, signal.SIGKILL)
        gw = start_gateway(repo, "prod", port, mlflow_registry)
        after = gw.status()["rollouts"][name]
        assert (after["phase"], after["step"], after["weight"]) == (before["phase"], before["step"], 30)
        route = gw.status()["routes"][name]
        assert (route["stable"], route["candidate"], route["weight"]) == ("1.0.0", "1.1.0", 30)
        traffic.reset()
        traffic.wait(300)
        assert set(traffic.codes) == {200}, traffic.codes
        share = traffic.versions["1.1.0"] / sum(traffic.versions.values())
        assert 0.2 < share < 0.4, traffic.versions

        # 4. promote past the pause; apply --wait finishes Healthy and moves the alias
        assert gw.admin("POST", f"/admin/rollouts/{name}/promote").status_code == 200
        done = apply_environment(repo, "prod", wait=True, timeout=60, poll=0.1, progress=lines.append)
        assert [d.phase for d in done] == ["Healthy"], lines
        aliases = client.get_registered_model(name).aliases
        assert str(aliases.get("prod")) == "2" and "prod-canary" not in aliases
        history = gw.admin("GET", "/admin/history", params={"model": name}).json()["history"]
        assert ("1.1.0", "promoted") in {(h["version"], h["event"]) for h in history}

        # 5. idempotent: a second apply changes nothing
        again = apply_environment(repo, "prod", wait=True, progress=lines.append)
        assert [a.changed for a in again] == [False] and "no change" in lines[-1]
        status = subprocess.run([sys.executable, "-m", "mlops_actions", "-C", str(repo), "status", "--env",
                                 "prod"], capture_output=True, text=True, env=gateway_env(mlflow_registry),
                                cwd=ROOT, timeout=60)
        assert status.returncode == 0 and "stable 1.1.0" in status.stdout
    finally:
        traffic.close()
        stop(gw)
        os.environ.pop("MLOPS_REPO", None)
