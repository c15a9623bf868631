"""Gateway vs `mlflow models serve`: same registered model, same requests, one run.

    .venv/bin/python benchmarks/bench_serving.py [--duration 20] [--connections 16]

Registers a scikit-learn LogisticRegression (breast cancer) in MLflow on SQLite
in a temp dir, starts both servers on 127.0.0.1, checks predictions are
identical, runs wrk (single-row JSON, 2 threads, 16 connections) against
each, prints requests/s, p50, p99 and the ratios, then declares a 10% canary
on the gateway and reports the observed split over 10,000 requests.
The gateway runs with prediction logging on (SQLite store).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TOKEN = "bench-token"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def register(tmp: Path) -> tuple[str, list[str], list[list[float]]]:
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("bench", artifact_location=str(tmp / "artifacts"))
    data = load_breast_cancer(as_frame=True)
    X = data.frame[data.feature_names]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, data.target)
    client = MlflowClient(uri)
    for semver in ("1.0.0", "1.0.1"):
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(X, model.predict(X)),
                pip_requirements=["scikit-learn"],
            )
        mv = mlflow.register_model(info.model_uri, "bc")
        client.set_model_version_tag("bc", mv.version, "mlops.semver", semver)
    return uri, list(X.columns), X.values.tolist()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout}s")


def wrk(url: str, body: str, duration: int, connections: int, tmp: Path) -> dict[str, float]:
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise SystemExit(f"cannot parse wrk output:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": ms("50"),
        "p99": ms("99"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--split-requests", type=int, default=10_000)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    print(f"work dir {tmp}")
    tracking, columns, rows = register(tmp)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "MLOPS_GATEWAY_TOKEN": TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    repo = tmp / "repo"
    (repo / "environments").mkdir(parents=True)
    gw_port, mlf_port = free_port(), free_port()
    (repo / "environments" / "bench.yaml").write_text(
        f'target: {{type: local, url: "http://127.0.0.1:{gw_port}"}}\nmodels:\n  bc:\n    version: "1.0.0"\n'
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        mlf = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/bc/1",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(mlf_port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(mlf)
        gw = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlops_actions",
                "-C",
                str(repo),
                "serve",
                "--env",
                "bench",
                "--port",
                str(gw_port),
                "--store",
                f"sqlite:///{tmp / 'predictions.db'}",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(gw)
        mlf_url, gw_url = f"http://127.0.0.1:{mlf_port}", f"http://127.0.0.1:{gw_port}"
        wait_ready(mlf_url + "/ping", mlf)
        wait_ready(gw_url + "/readyz", gw)

        # identical predictions, row by row and as one batch
        mismatches = 0
        for row in rows[:100]:
            body = {"dataframe_split": {"columns": columns, "data": [row]}}
            a = requests.post(mlf_url + "/invocations", json=body, timeout=30).json()
            b = requests.post(gw_url + "/invocations", json=body, timeout=30).json()
            mismatches += a != b
        whole = {"dataframe_split": {"columns": columns, "data": rows}}
        same_batch = (
            requests.post(mlf_url + "/invocations", json=whole, timeout=60).json()
            == requests.post(gw_url + "/invocations", json=whole, timeout=60).json()
        )
        print(
            f"identical predictions: {100 - mismatches}/100 single rows, all {len(rows)} rows in one "
            f"request: {same_batch}"
        )

        body = json.dumps({"dataframe_split": {"columns": columns, "data": [rows[0]]}})
        results = {}
        for label, url in (("mlflow models serve", mlf_url), ("mlops-actions gateway", gw_url)):
            wrk(url + "/invocations", body, 3, args.connections, tmp)  # warm up
            results[label] = wrk(url + "/invocations", body, args.duration, args.connections, tmp)
        print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s, single-row dataframe_split JSON")
        print(f"{'server':24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for label, r in results.items():
            print(f"{label:24} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['non2xx']:8.0f}")
        m, g = results["mlflow models serve"], results["mlops-actions gateway"]
        print(
            f"ratio requests/s gateway/mlflow: {g['rps'] / m['rps']:.1f}x; "
            f"gateway p99 {g['p99']:.2f} ms vs mlflow p50 {m['p50']:.2f} ms "
            f"({'below' if g['p99'] < m['p50'] else 'NOT below'})"
        )

        # canary split over N requests
        auth = {"Authorization": f"Bearer {TOKEN}"}
        declare = {
            "model": "bc",
            "version": "1.0.1",
            "uri": "models:/bc/2",
            "strategy": {"type": "canary", "steps": [{"set_weight": 10}, {"pause": {}}]},
        }
        requests.post(gw_url + "/admin/rollouts", json=declare, headers=auth, timeout=30).raise_for_status()
        deadline = time.monotonic() + 60
        while (
            requests.get(gw_url + "/admin/status", headers=auth, timeout=10).json()["routes"]["bc"]["weight"]
            != 10
        ):
            if time.monotonic() > deadline:
                raise SystemExit("canary weight not applied")
            time.sleep(0.1)
        session_pool = concurrent.futures.ThreadPoolExecutor(8)

        def one(_: int) -> str:
            r = requests.post(
                gw_url + "/invocations", data=body, headers={"Content-Type": "application/json"}, timeout=30
            )
            return r.headers.get("X-Variant", "?")

        variants = list(session_pool.map(one, range(args.split_requests)))
        share = variants.count("canary") / len(variants)
        print(
            f"\ncanary split over {len(variants)} requests: declared 10%, observed {share * 100:.2f}% "
            f"({'within' if abs(share - 0.10) <= 0.02 else 'NOT within'} 2 pp)"
        )
        status = requests.get(gw_url + "/admin/status", headers=auth, timeout=10).json()
        print(f"prediction log: {status['prediction_log']}")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
