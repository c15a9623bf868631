"""Benchmark: ``plan`` for N models x 3 environments against ``mlflow server`` on loopback.

Counts the HTTP requests that reach MLflow (through a counting proxy in front of the
server) and times the plan, for N = 50, 100, 200 by default, to show linear growth and the
goal of <= 2 HTTP calls per model and environment.

The peer is the naive way to read live state: one ``get_model_version_by_alias`` call per
model and environment (what a hand-written script does); it runs in the same run against
the same server, and the ratio is printed.

    .venv/bin/python benchmarks/bench_plan.py [--sizes 50,100,200]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENVS = ("dev", "staging", "production")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingProxy:
    """Forwards every request to the upstream server and counts them."""

    def __init__(self, upstream_port: int) -> None:
        self.count = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                with proxy.lock:
                    proxy.count += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> int:
        with self.lock:
            n, self.count = self.count, 0
        return n


class PortOnly:
    """The registry seen through the port only (no batch search): the per-model fallback."""

    def __init__(self, registry: object) -> None:
        self._registry = registry

    def list_versions(self, name: str) -> list:  # type: ignore[type-arg]
        return self._registry.list_versions(name)  # type: ignore[attr-defined,no-any-return]


def populate(db_uri: str, n_models: int) -> None:
    """Write the registry straight into the SQLite store (fast; no HTTP) before the server starts."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=db_uri, registry_uri=db_uri)
    for i in range(n_models):
        name = f"model-{i:04d}"
        client.create_registered_model(name)
        for semver in ("1.0.0", "1.1.0", "1.2.0"):
            mv = client.create_model_version(name, f"file:///tmp/{name}/{semver}",
                                             tags={"mlops.semver": semver})
            if semver == "1.0.0":
                client.set_registered_model_alias(name, "production", mv.version)
            elif semver == "1.1.0":
                client.set_registered_model_alias(name, "staging", mv.version)
            else:
                client.set_registered_model_alias(name, "dev", mv.version)


def write_envs(root: Path, n_models: int, pins: dict[str, str]) -> None:
    (root / "environments").mkdir(parents=True, exist_ok=True)
    for env in ENVS:
        lines = ["models:"]
        for i in range(n_models):
            lines += [f"  model-{i:04d}:", f"    version: \"{pins[env]}\""]
        (root / "environments" / f"{env}.yaml").write_text("\n".join(lines) + "\n")


def start_server(db_uri: str, artifacts: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", db_uri, "--default-artifact-root", str(artifacts),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError("mlflow server did not start within 180 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its uvicorn worker (its own process group, started above)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def run_size(n_models: int, work: Path) -> dict[str, float]:
    from mlflow import MlflowClient

    from mlops_actions.gitops.live import LiveRegistry
    from mlops_actions.gitops.plan import compute_plan
    from mlops_actions.gitops.sources import read_dir
    from mlops_actions.registry.mlflow_registry import get_registry

    root = work / f"n{n_models}"
    db_uri = f"sqlite:///{root / 'mlflow.db'}"
    root.mkdir()
    populate(db_uri, n_models)
    proc, port = start_server(db_uri, root / "artifacts")
    proxy = CountingProxy(port)
    try:
        base, head = root / "base", root / "head"
        write_envs(base, n_models, {"dev": "1.2.0", "staging": "1.1.0", "production": "1.0.0"})
        write_envs(head, n_models, {"dev": "1.2.0", "staging": "1.2.0", "production": "1.1.0"})
        uri = f"http://127.0.0.1:{proxy.port}"
        registry = get_registry(uri)
        base_src, head_src = read_dir(base, label="base"), read_dir(head, label="head")
        results = {}
        for mode, reader in (("batched", registry), ("per-model", PortOnly(registry))):
            proxy.reset()
            t0 = time.perf_counter()
            plan = compute_plan(base_src, head_src, LiveRegistry(reader))
            results[mode] = (time.perf_counter() - t0, proxy.reset())
            assert plan.changed and not plan.problems, plan.problems[:3]
            moves = sum(len(m.alias_moves) for e in plan.environments for m in e.models)
            assert moves == 2 * n_models, moves  # staging and production move for every model
        seconds, calls = results["batched"]
        port_seconds, port_calls = results["per-model"]
        # the peer: one alias lookup per model and environment
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        t0 = time.perf_counter()
        for i in range(n_models):
            for env in ENVS:
                client.get_model_version_by_alias(f"model-{i:04d}", env)
        peer_seconds = time.perf_counter() - t0
        peer_calls = proxy.reset()
    finally:
        proxy.server.shutdown()
        stop_server(proc)
    pairs = n_models * len(ENVS)
    return {"models": n_models, "calls": calls, "per_pair": calls / pairs, "seconds": seconds,
            "port_calls": port_calls, "port_seconds": port_seconds,
            "peer_calls": peer_calls, "peer_seconds": peer_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="50,100,200")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        rows = [run_size(int(n), Path(tmp)) for n in args.sizes.split(",")]
    print("plan = batched searches (default with MLflow); per-model = list_versions per model "
          "(the port only); peer = get_model_version_by_alias per model and environment")
    print(f"{'models':>6} {'envs':>4} | {'plan calls':>10} {'per m-e':>7} {'plan s':>7} | "
          f"{'per-model calls':>15} {'s':>7} | {'peer calls':>10} {'peer s':>7} | {'peer/plan time':>14}")
    for r in rows:
        print(f"{r['models']:>6} {len(ENVS):>4} | {r['calls']:>10.0f} {r['per_pair']:>7.3f} "
              f"{r['seconds']:>7.2f} | {r['port_calls']:>15.0f} {r['port_seconds']:>7.2f} | "
              f"{r['peer_calls']:>10.0f} {r['peer_seconds']:>7.2f} | "
              f"{r['peer_seconds'] / r['seconds']:>13.1f}x")
    first, last = rows[0], rows[-1]
    growth = (last["seconds"] / first["seconds"]) / (last["models"] / first["models"])
    print(f"time growth vs linear from {first['models']:.0f} to {last['models']:.0f} models: "
          f"{growth:.2f} (1.00 = exactly linear)")
    print("goal <= 2 HTTP calls per model and environment: "
          + ("met" if all(r["per_pair"] <= 2 for r in rows) else "NOT met"))


if __name__ == "__main__":
    main()
