"""Process helpers of the crash and load tests: start gateways, kill them, read their state."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from tests.serving._support import ROOT, TOKEN, GatewayProcess, Registry, gateway_env, stop

__all__ = ["OutputLines", "Poller", "kill9", "persisted_state", "rss_kib", "start_apply",
           "start_fast_gateway", "wait_ready"]


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, wait: float = 120.0) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"gateway not ready in {wait}s:\n{log.read_text()[-3000:]}")


def start_fast_gateway(state_dir: Path, port: int, *, model: str = "m", version: str = "1.0.0",
                       uri: str = "fake://v1", env: str = "prod") -> GatewayProcess:
    """``tests.reliability._gateway``: the real gateway with stand-in models (starts in ~1 s)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / f"gateway-{port}.log"
    cmd = [sys.executable, "-m", "tests.reliability._gateway", "--state-dir", str(state_dir), "--port",
           str(port), "--model", model, "--version", version, "--uri", uri, "--env", env]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "MLOPS_GATEWAY_TOKEN": TOKEN})
    gw = GatewayProcess(proc, f"http://127.0.0.1:{port}", log)
    wait_ready(proc, gw.url, log)
    return gw


def kill9(gw: GatewayProcess) -> None:
    """A real SIGKILL: no handler runs, nothing is flushed."""
    stop(gw, signal.SIGKILL)


def persisted_state(state_dir: Path, env: str, model: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(latest rollout, route) as the dead gateway left them in ``gateway.db``."""
    with contextlib.closing(sqlite3.connect(state_dir / "gateway.db")) as con:
        row = con.execute("SELECT data FROM rollouts WHERE environment=? AND model=? "
                          "ORDER BY created_at DESC LIMIT 1", (env, model)).fetchone()
        route = con.execute("SELECT data FROM routes WHERE environment=? AND model=?",
                            (env, model)).fetchone()
    return (json.loads(row[0]) if row else None), json.loads(route[0])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _error_code(r: requests.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None


class Poller:
    """Scores continuously from a few threads; counts what a client sees.

    ``down``: connection refused or cut (the process is dead or restarting); ``starting``:
    503 ``NOT_READY`` (the process listens and says its models are still loading, as /readyz
    does: a client retries it like a refused connection); ``answers``: every other HTTP answer
    by status; ``versions``: the versions that answered with 200.
    """

    def __init__(self, url: str, body: dict[str, Any], threads: int = 2) -> None:
        self.url = url
        self.body = body
        self.answers: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self.bad: list[tuple[int, str]] = []
        self.down = 0
        self.starting = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                r = session.post(self.url + "/invocations", json=self.body, timeout=5)
            except requests.RequestException:
                with self._lock:
                    self.down += 1
                session = requests.Session()
                time.sleep(0.05)
                continue
            with self._lock:
                if r.status_code == 503 and _error_code(r) == "NOT_READY":
                    self.starting += 1
                    continue
                self.answers[r.status_code] += 1
                if r.status_code == 200:
                    self.versions[r.headers.get("X-Model-Version", "")] += 1
                elif len(self.bad) < 20:
                    self.bad.append((r.status_code, r.text[:200]))

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def start_apply(repo: Path, registry: Registry, *extra: str, env: str = "prod") -> subprocess.Popen[str]:
    """``mlops-actions apply --env ENV`` as a subprocess, its output unbuffered (read it live)."""
    return subprocess.Popen([sys.executable, "-m", "mlops_actions", "-C", str(repo), "apply", "--env", env,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**gateway_env(registry), "PYTHONUNBUFFERED": "1"})


class OutputLines:
    """The output lines of a running process, read as they come (to act at a chosen stage)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            time.sleep(0.02)
        return False

    def join(self) -> str:
        self._thread.join(30)
        return "\n".join(self.lines)
