"""Issue 9, item 4: two `mlops-actions apply` runs on the same environment at once.

One holds the per-environment lock, the other waits for it; a run that waited re-reads the
environment file under the lock, so when the file changed meanwhile it applies the newer file
("superseded") instead of the one it started with. Every round ends on the newest file.
Real parts: `apply` subprocesses, MLflow registry (aliases), a real gateway process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.reliability._procs import OutputLines, start_apply, start_fast_gateway
from tests.reliability.figures import record
from tests.serving._support import GatewayProcess, Registry, shared_registry, stop, write_env

pytestmark = pytest.mark.slow



def canary(pause: str) -> str:
    """A canary that holds the apply lock (apply --wait watches it) for about ``pause``."""
    return f"type: canary\nsteps:\n  - set_weight: 50\n  - pause: {{duration: {pause}}}\n"


@contextlib.contextmanager
def held_lock(repo: Path, env: str = "prod") -> Iterator[None]:
    """Hold the lock an apply takes (``.mlops/apply-ENV.lock``), as a running apply would."""
    path = repo / ".mlops" / f"apply-{env}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _finish(proc: subprocess.Popen[str], out: OutputLines) -> tuple[int, str]:
    code = proc.wait(120)
    return code, out.join()


def _live(gw: GatewayProcess, name: str) -> tuple[str, str | None, str]:
    status = gw.status()
    route, rollout = status["routes"][name], status["rollouts"][name]
    return route["stable"], route["candidate"], rollout["phase"]


def _alias(registry: Registry, version: str) -> str:
    return registry.uris[version].rsplit("/", 1)[1]


def test_two_applies_at_once_one_waits_and_the_newest_file_wins(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    registry = shared_registry(tmp_path_factory)
    name = registry.name
    client = MlflowClient(registry.tracking_uri)
    repo = tmp_path
    port = free_port()
    write_env(repo, "prod", port, "1.0.0", model=name)
    gw = start_fast_gateway(repo / ".mlops", port, model=name, version="1.0.0", uri=registry.uris["1.0.0"])
    rounds: list[str] = []
    try:
        # 1. the same file, two runs at once: one rolls out, the other waits, then finds nothing to do
        write_env(repo, "prod", port, "1.1.0", canary("2s"), model=name)
        a = start_apply(repo, registry, "--wait", "--timeout", "60")
        b = start_apply(repo, registry, "--wait", "--timeout", "60")
        out_a, out_b = OutputLines(a), OutputLines(b)
        (code_a, text_a), (code_b, text_b) = _finish(a, out_a), _finish(b, out_b)
        assert (code_a, code_b) == (0, 0), text_a + "\n---\n" + text_b
        waited = [t for t in (text_a, text_b) if "waiting up to" in t]
        assert len(waited) == 1 and "no change" in waited[0], text_a + "\n---\n" + text_b
        assert _live(gw, name) == ("1.1.0", None, "Healthy")
        rounds.append("same file: one rolled out, the other waited and found no change")

        # 2. the file changes while the first run rolls out; a second run started on the newer
        #    file waits for the lock, then applies it
        # long enough that the second run, however slow its start on a loaded machine, finds the lock held
        write_env(repo, "prod", port, "2.0.0", canary("12s"), model=name)
        a = start_apply(repo, registry, "--wait", "--timeout", "60")
        out_a = OutputLines(a)
        assert out_a.wait_for("rolling out 2.0.0"), out_a.join()
        write_env(repo, "prod", port, "1.0.0", canary("0.5s"), model=name)
        b = start_apply(repo, registry, "--wait", "--timeout", "60")
        out_b = OutputLines(b)
        (code_a, text_a), (code_b, text_b) = _finish(a, out_a), _finish(b, out_b)
        assert (code_a, code_b) == (0, 0), text_a + "\n---\n" + text_b
        assert "waiting up to" in text_b and "rolling out 1.0.0" in text_b, text_b
        assert _live(gw, name) == ("1.0.0", None, "Healthy")
        rounds.append("newer file while a rollout ran: the second run waited, then applied it")

        # 3. a run that started on an older file waits; the file changes meanwhile: it is
        #    superseded and applies the file on disk, whichever of the two gets the lock first
        with held_lock(repo):
            write_env(repo, "prod", port, "1.1.0", canary("0.5s"), model=name)
            a = start_apply(repo, registry, "--wait", "--timeout", "60")
            out_a = OutputLines(a)
            assert out_a.wait_for("waiting up to"), out_a.join()
            write_env(repo, "prod", port, "2.0.0", canary("0.5s"), model=name)
            b = start_apply(repo, registry, "--wait", "--timeout", "60")
            out_b = OutputLines(b)
            assert out_b.wait_for("waiting up to"), out_b.join()
        (code_a, text_a), (code_b, text_b) = _finish(a, out_a), _finish(b, out_b)
        assert (code_a, code_b) == (0, 0), text_a + "\n---\n" + text_b
        assert "superseded" in text_a and "rolling out 1.1.0" not in text_a, text_a
        assert _live(gw, name) == ("2.0.0", None, "Healthy")
        aliases = {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
        assert aliases.get("prod") == _alias(registry, "2.0.0") and "prod-canary" not in aliases, aliases
        rounds.append("older file waiting while the file changed: superseded, newest file applied")
        history = gw.admin("GET", "/admin/history", params={"model": name}).json()["history"]
    finally:
        stop(gw)
    promoted = [h["version"] for h in history if h["event"] == "promoted"]
    assert promoted == ["1.1.0", "2.0.0", "1.0.0", "2.0.0"], promoted  # no stale file was ever rolled out
    record("concurrent-apply", "concurrency",
           f"{len(rounds)} rounds of two `apply` runs on one environment at once (same file; newer file "
           "during a rollout; older run waiting while the file changed): each time one waited for the "
           "lock, the stale run said superseded, and the final route and aliases matched the newest file",
           rounds=rounds, promoted=promoted, load_average=os.getloadavg()[0])
