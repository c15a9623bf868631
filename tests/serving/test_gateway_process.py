"""The real gateway: `mlops-actions serve` in a subprocess, real MLflow models, real HTTP."""

from __future__ import annotations

import concurrent.futures
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.serving._support import FEATURES, Registry, start_gateway, stop, write_env

pytestmark = pytest.mark.slow


def test_scoring_bad_input_and_sigterm_loses_no_acknowledged_prediction(
        repo: Path, mlflow_registry: Registry) -> None:
    import mlflow.pyfunc
    import pandas as pd

    port = free_port()
    write_env(repo, "prod", port, "1.0.0", model=mlflow_registry.name)
    db = repo / "predictions.db"
    gw = start_gateway(repo, "prod", port, mlflow_registry, store=f"sqlite:///{db}")
    try:
        url = gw.url
        rows = mlflow_registry.rows
        # identical to the model's own predictions, in every MLflow input format
        expected = mlflow.pyfunc.load_model(mlflow_registry.uris["1.0.0"]).predict(
            pd.DataFrame(rows, columns=FEATURES)).tolist()
        r = gw.score(rows)
        assert r.status_code == 200 and r.json() == {"predictions": expected}
        assert r.headers["X-Model-Version"] == "1.0.0" and r.headers["X-Variant"] == "stable"
        assert r.headers["X-Request-Id"]
        records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
        for body in ({"dataframe_records": records}, {"instances": records}, {"inputs": rows}):
            got = requests.post(url + "/invocations", json=body, timeout=10)
            assert got.json()["predictions"] == expected
        csv = "\n".join([",".join(FEATURES)] + [",".join(map(str, row)) for row in rows]) + "\n"
        got = requests.post(f"{url}/models/{mlflow_registry.name}/invocations", data=csv,
                            headers={"Content-Type": "text/csv"}, timeout=10)
        assert got.json()["predictions"] == expected
        # bad input: each with its code and a reason
        bad = requests.post(url + "/invocations", data=b"{nope",
                            headers={"Content-Type": "application/json"}, timeout=10)
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["message"]
        wrong = requests.post(url + "/invocations", json={"dataframe_split": {
            "columns": ["sepal_length", "x"], "data": [[1, 2]]}}, timeout=10)
        assert wrong.status_code == 400 and "missing columns" in wrong.json()["message"]
        big = requests.post(url + "/invocations", data=b"x" * (2 << 20),
                            headers={"Content-Type": "application/json"}, timeout=10)
        assert big.status_code == 413
        unknown = requests.post(url + "/models/nope/invocations", json={"inputs": rows}, timeout=10)
        assert unknown.status_code == 404
        assert requests.get(url + "/admin/status", timeout=10).status_code == 401
        assert gw.status()["routes"][mlflow_registry.name]["stable"] == "1.0.0"
        assert requests.get(url + "/healthz", timeout=10).status_code == 200
        metrics = requests.get(url + "/metrics", timeout=10).text
        assert "mlops_gateway_requests_total" in metrics
        assert "mlops_gateway_request_duration_seconds" in metrics
        fb = requests.post(url + "/feedback", json={"request_id": r.headers["X-Request-Id"], "actual": 0},
                           timeout=10)
        assert fb.status_code == 200 and fb.json()["matched"] == 1

        # load from 8 threads, SIGTERM in the middle: every acknowledged prediction is in the store
        acked: list[str] = []
        lock = threading.Lock()
        stop_flag = threading.Event()

        def client(n: int) -> None:
            session = requests.Session()
            i = 0
            while not stop_flag.is_set():
                rid = f"load-{n}-{i}"
                i += 1
                try:
                    resp = session.post(url + "/invocations", json={"inputs": rows[:1]},
                                        headers={"X-Request-Id": rid}, timeout=5)
                except requests.RequestException:
                    return
                if resp.status_code == 200:
                    with lock:
                        acked.append(rid)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client, n) for n in range(8)]
            threading.Event().wait(1.5)
            code = stop(gw, signal.SIGTERM)
            stop_flag.set()
            for f in futures:
                f.result(timeout=30)
        assert code in (0, -signal.SIGTERM)
        assert len(acked) > 50
        with sqlite3.connect(db) as con:
            stored = {row[0] for row in con.execute("SELECT request_id FROM predictions")}
        missing = [rid for rid in acked if rid not in stored]
        assert not missing, f"{len(missing)} acknowledged predictions lost, e.g. {missing[:3]}"
    finally:
        stop(gw)
        log = gw.log.read_text()
        assert "Traceback" not in log or "broken on purpose" in log, log[-3000:]



