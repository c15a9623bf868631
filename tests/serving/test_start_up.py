"""``serve --env`` on a SQLite registry: its first answer costs what loading the model costs (issue 19).

Start-up used to build MLflow's tracking and registry stores twice over (once to resolve the
pins, once to resolve ``models:/NAME/N`` for loading): SQLAlchemy models of every tracking
table, engines, table inspection, 3-8 s of a loaded machine before the model itself loaded.
The pins and URIs are now read with ``sqlite3`` (registry/sqlite_read.py).

Not a wall-clock test (the shared 2-core machine's load moves wall time 2-5x): the gateway
process runs under ``-X importtime`` and the test checks (1) that MLflow's SQLAlchemy stores
were never imported before the first answered request, and (2) the CPU time the gateway
process used up to its first 200, against the CPU time of the irreducible work measured in the
same run: a bare interpreter loading the same model with ``mlflow.pyfunc.load_model`` and
predicting one row. Measured: 1.0-1.1x after the change, 1.2-1.3x before it; the bound, 1.6x,
fails when start-up does seconds of work of its own again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.serving._support import FEATURES, ROOT, TOKEN, Registry, write_env

STORES = ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store",
          "mlflow.store.db.utils")
MAX_CPU_RATIO = 1.6
BARE = f"""
import sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(model.predict(pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns={FEATURES!r})))
"""


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a live process, all its threads (proc(5): fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def imported(stderr: str) -> set[str]:
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", stderr, re.MULTILINE))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_first_answer_costs_what_loading_the_model_costs(mlflow_registry: Registry, repo: Path,
                                                           tmp_path: Path) -> None:
    port = free_port()
    write_env(repo, "staging", port, "1.0.0")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_registry.tracking_uri, "MLOPS_GATEWAY_TOKEN": TOKEN,
           "PYTHONPATH": str(ROOT)}
    err = tmp_path / "serve.err"
    with open(err, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "mlops_actions", "-C", str(repo),
                                 "serve", "--env", "staging", "--store", "memory://"],
                                stdout=subprocess.DEVNULL, stderr=fh, env=env, cwd=ROOT)
    started = time.monotonic()
    body = {"dataframe_split": {"columns": FEATURES, "data": mlflow_registry.rows[:1]}}
    try:
        deadline = started + 240
        while True:
            assert proc.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, "no answer in 240 s"
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=10)
                if answer.status_code == 200:
                    break
                assert answer.status_code == 503, answer.text  # starting: not ready yet
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        serve_cpu, wall = cpu_seconds(proc.pid), time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    modules = imported(err.read_text())
    assert "mlops_actions.serving.gateway" in modules  # importtime saw the gateway load

    from mlflow import MlflowClient
    from mlflow.utils.file_utils import local_file_uri_to_path

    version = mlflow_registry.uris["1.0.0"].rsplit("/", 1)[1]
    where = MlflowClient(mlflow_registry.tracking_uri, registry_uri=mlflow_registry.tracking_uri) \
        .get_model_version_download_uri(mlflow_registry.name, version)
    local = local_file_uri_to_path(where)
    bare = subprocess.Popen([sys.executable, "-X", "importtime", "-c", BARE, str(local)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    before = os.times()
    out, _ = bare.communicate(timeout=240)
    after = os.times()
    assert bare.returncode == 0 and out.strip(), out
    bare_cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    print(f"serve --env: first 200 after {wall:.1f} s wall, {serve_cpu:.2f} s CPU; bare load + predict "
          f"{bare_cpu:.2f} s CPU; load average {os.getloadavg()[0]:.1f}")
    assert sorted(m for m in STORES if m in modules) == []
    assert serve_cpu <= MAX_CPU_RATIO * bare_cpu, (serve_cpu, bare_cpu)
