"""Serving: our gateway vs `mlflow models serve` vs MLServer (with and without adaptive batching).

Two models, each registered in MLflow on SQLite in a temp dir:

- ``lr``: a linear pipeline (StandardScaler + LogisticRegression) on breast cancer (MLflow's
  default serialization);
- ``rf``: a 200-tree RandomForest on the same data, saved with ``serialization_format=
  "cloudpickle"`` (MLflow 3's default, skops, refuses a forest's ``Tree``).

Servers, for each model, on 127.0.0.1:

- ours: ``mlops-actions serve --env bench-<model>`` (the environment pins the registered
  version; prediction logging on, into the repo's default SQLite store, as users run it);
- ``mlflow models serve -m models:/NAME/1 --env-manager local -w 1``;
- MLServer 1.7.1 + mlserver-mlflow 1.7.1 in its own venv (``benchmarks/.venv-mlserver``,
  ``uvloop==0.21.0``), as configured by default (one parallel inference worker), once without
  batching and once with adaptive batching (``max_batch_size`` 32, ``max_batch_time`` 0.005 s in
  model-settings.json).

Requests: one row per request, MLflow's ``dataframe_split`` JSON, POSTed to ``/invocations`` on
every server. MLServer's ``/invocations`` (mlserver-mlflow's MLflow-compatible handler) accepts
that body, but it calls the model directly and bypasses MLServer's adaptive batcher, which only
wraps the V2 ``predict`` path: so the adaptive-batching server is measured on V2
(``/v2/models/NAME/infer``, one FP64 input per column, a single row), and at one connection
MLServer without batching is measured on both endpoints; "MLServer best mode" is the best of the
three. Before timing, the same 20 rows go to every endpoint one by one and every server must
answer exactly the bare model's predictions.

Load: wrk at 1, 16 and 64 connections (``-t1`` at 1, ``-t2`` otherwise, ``--timeout 10s``,
``--latency``), requests/s, p50, p99. Each run starts on an idle machine (``settle``: /proc/stat
at >= 90% idle twice in a row, at most 10 s), after a warm-up run of ``--warmup`` seconds.
Each timed run also records the CPU it took, in cores: the server's process tree, wrk, and
everything else on the machine ("others", printed beside the run and with our p99 per round), so
a slow round shows whether anything else shared the 2 cores.
Cold start: process start to the first 200 answer to a
prediction request (servers started one at a time). Peak memory: the largest sum of RSS over the
server's whole process tree (workers included), sampled every 0.25 s from /proc while it runs.
The bare model's ``predict`` on a one-row DataFrame is timed in the same run (median of 300
calls): the limit for our time per request at one connection. The gateway predicts both models
with their compiled form (``mlops_actions/serving/compiled.py``: the same arithmetic in numpy,
byte-identical answers, checked at load and here against every server), so the gateway's own
predict step without the server is timed too: time per request over it is what the server adds.

Protocol (``rounds.py``): ``--rounds`` rounds (>= 3) per model; every round restarts the servers
(cold start and memory per round), in an order rotated each round, and rotates the order of the
servers at each connection count; every ratio is min / median / max over the rounds.

    .venv/bin/python benchmarks/bench_serving.py [--rounds 3] [--duration 6] [--models lr,rf] [--json PATH]
        [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from peer_venv import ensure_peer_venv  # noqa: E402
from rounds import ratio_row, rotate, write_rows  # noqa: E402

VENV_BIN = Path(sys.executable).parent
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-mlflow==1.7.1", "uvloop==0.21.0"]
CONNECTIONS = [1, 16, 64]
SERVERS = ["ours", "mlflow", "mlserver", "mlserver-adaptive"]
LABEL = {
    "ours": "mlops-actions gateway",
    "mlflow": "mlflow models serve (1 worker)",
    "mlserver": "MLServer 1.7.1 (no batching)",
    "mlserver-adaptive": "MLServer 1.7.1 (adaptive batching)",
}
MODELS = {"lr": "LR pipeline", "rf": "RF 200 trees"}  # scaler + logistic regression; random forest
CHECK_ROWS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- models


@dataclass
class Model:
    key: str
    name: str
    local_dir: Path
    columns: list[str]
    rows: list[list[float]]
    sklearn_model: Any


def register(tmp: Path, keys: list[str]) -> tuple[str, dict[str, Model]]:
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("bench", artifact_location=(tmp / "artifacts").as_uri())
    data = load_breast_cancer(as_frame=True)
    X = data.frame[data.feature_names]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    fitted: dict[str, Any] = {
        "lr": lambda: (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, data.target),
            {},
        ),
        "rf": lambda: (
            RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1).fit(X, data.target),
            {"serialization_format": "cloudpickle"},
        ),
    }
    client = MlflowClient(uri)
    models = {}
    for key in keys:
        est, extra = fitted[key]()
        name = f"bench_{key}"
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.sklearn.log_model(
                est,
                name="model",
                signature=infer_signature(X, est.predict(X)),
                pip_requirements=["scikit-learn"],
                **extra,
            )
        mv = mlflow.register_model(info.model_uri, name)
        client.set_model_version_tag(name, mv.version, "mlops.semver", "1.0.0")
        local = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{name}/{mv.version}", dst_path=str(tmp / f"local-{key}")
            )
        )
        models[key] = Model(
            key, name, local, list(X.columns), X.values.tolist(), mlflow.sklearn.load_model(str(local))
        )
    return uri, models


def bare_predict_seconds(model: Model, calls: int) -> float:
    """Median time of the bare model's ``predict`` on a one-row DataFrame."""
    import pandas as pd

    one = pd.DataFrame([model.rows[0]], columns=model.columns)
    return median_seconds(lambda: model.sklearn_model.predict(one), calls)


def median_seconds(call: Callable[[], Any], calls: int) -> float:
    """Median time of ``call`` over ``calls`` calls, after 20 unmeasured ones."""
    for _ in range(20):
        call()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gateway_predict_seconds(model: Model, calls: int) -> tuple[float, str]:
    """Median time of the gateway's own predict step on one row, without the server: the
    request's row converted against the signature and predicted (``FastPath.array`` + ``run``:
    the compiled model when there is one, else the estimator), and what predicted it."""
    import mlflow.pyfunc

    from mlops_actions.serving.fastpath import compile_fast_path

    fast = compile_fast_path(mlflow.pyfunc.load_model(str(model.local_dir)))
    if fast is None or fast.names is None:
        return float("nan"), "pyfunc.predict"
    columns, rows = tuple(model.columns), [model.rows[0]]

    def step() -> None:
        values = fast.array(columns, rows)
        assert values is not None
        fast.run([values])

    kind = f"compiled {fast.compiled.kind}" if fast.compiled is not None else "the estimator"
    return median_seconds(step, calls), kind


# --------------------------------------------------------------------------- bodies


def split_body(model: Model, row: list[float]) -> str:
    return json.dumps({"dataframe_split": {"columns": model.columns, "data": [row]}})


def v2_body(model: Model, row: list[float]) -> str:
    return json.dumps(
        {
            "inputs": [
                {"name": c, "datatype": "FP64", "shape": [1], "data": [v]}
                for c, v in zip(model.columns, row, strict=True)
            ]
        }
    )


def predictions(answer: dict[str, Any]) -> list[Any]:
    if "outputs" in answer:  # V2
        return list(answer["outputs"][0]["data"])
    return list(answer["predictions"])


# --------------------------------------------------------------------------- memory


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _tree_pids(root: int, children: dict[int, list[int]]) -> Iterator[int]:
    """``root`` and all its descendants in ``children`` (``_children()``)."""
    todo = [root]
    while todo:
        pid = todo.pop()
        yield pid
        todo += children.get(pid, [])


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Peak of the summed RSS of each watched process and all its descendants (what psutil's
    ``children(recursive=True)`` walks), sampled from /proc every ``every`` seconds."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.roots: dict[str, int] = {}
        self.peak_kb: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, key: str, pid: int) -> None:
        with self._lock:
            self.roots[key] = pid
            self.peak_kb[key] = 0

    def unwatch(self, key: str) -> None:
        self.sample()
        with self._lock:
            self.roots.pop(key, None)

    def sample(self) -> None:
        with self._lock:
            roots = dict(self.roots)
        if not roots:
            return
        tree = _children()
        for key, root in roots.items():
            total = sum(_rss_kb(pid) for pid in _tree_pids(root, tree))
            with self._lock:
                self.peak_kb[key] = max(self.peak_kb.get(key, 0), total)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    key: str
    proc: subprocess.Popen[bytes]
    base: str
    started: float
    log: Path
    # endpoint label -> (path, body of the first row)
    endpoints: dict[str, str] = field(default_factory=dict)
    cold_start: float = 0.0


class Servers:
    def __init__(self, tmp: Path, tracking: str, mlserver_python: Path, memory: TreeMemory) -> None:
        self.tmp, self.tracking, self.memory = tmp, tracking, memory
        self.mlserver_bin = mlserver_python.parent
        self.env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking,
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        }
        self.running: list[Server] = []

    def start(self, key: str, model: Model, tag: str) -> Server:
        work = self.tmp / f"{tag}-{key}"
        work.mkdir(parents=True)
        port = free_port()
        log = work / "server.log"
        env = self.env
        if key == "ours":
            env_name = f"bench-{model.key}"
            (work / "environments").mkdir()
            (work / "environments" / f"{env_name}.yaml").write_text(
                f'target: {{type: local, url: "http://127.0.0.1:{port}"}}\n'
                f'models:\n  {model.name}:\n    version: "1.0.0"\n'
            )
            cmd = [sys.executable, "-m", "mlops_actions", "-C", str(work), "serve", "--env", env_name]
            endpoints = {"invocations": "/invocations"}
        elif key == "mlflow":
            cmd = [
                str(VENV_BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{model.name}/1",
                "--env-manager",
                "local",
                "-w",
                "1",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ]
            endpoints = {"invocations": "/invocations"}
        else:
            settings = {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
            }
            model_settings: dict[str, Any] = {
                "name": model.name,
                "implementation": "mlserver_mlflow.MLflowRuntime",
                "parameters": {"uri": str(model.local_dir), "version": "1"},
            }
            if key == "mlserver-adaptive":
                model_settings.update(max_batch_size=32, max_batch_time=0.005)
            (work / "settings.json").write_text(json.dumps(settings))
            (work / "model-settings.json").write_text(json.dumps(model_settings))
            cmd = [str(self.mlserver_bin / "mlserver"), "start", str(work)]
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
            env["PATH"] = f"{self.mlserver_bin}:{os.environ['PATH']}"
            endpoints = {"invocations": "/invocations", "v2": f"/v2/models/{model.name}/infer"}
        with open(log, "wb") as fh:
            started = time.monotonic()
            proc = subprocess.Popen(
                cmd, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Server(key, proc, f"http://127.0.0.1:{port}", started, log, endpoints)
        self.running.append(server)
        self.memory.watch(key, proc.pid)
        return server

    def wait_first_answer(self, server: Server, model: Model, timeout: float = 240) -> None:
        """Cold start: from process start to the first 200 answer to a prediction request."""
        path = "/invocations"
        body = split_body(model, model.rows[0])
        deadline = server.started + timeout
        session = requests.Session()
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise SystemExit(
                    f"{LABEL[server.key]} exited with {server.proc.returncode}; log "
                    f"{server.log}:\n{server.log.read_text()[-3000:]}"
                )
            try:
                r = session.post(
                    server.base + path, data=body, timeout=5, headers={"Content-Type": "application/json"}
                )
                if r.status_code == 200:
                    server.cold_start = time.monotonic() - server.started
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise SystemExit(f"{LABEL[server.key]}: no 200 answer after {timeout}s; log {server.log}")

    def stop_all(self) -> None:
        for s in self.running:
            self.memory.unwatch(s.key)
            if s.proc.poll() is None:
                os.killpg(s.proc.pid, signal.SIGTERM)
        for s in self.running:
            try:
                s.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(s.proc.pid, signal.SIGKILL)
                s.proc.wait()
        self.running = []


# --------------------------------------------------------------------------- wrk


def wrk(
    url: str, body: str, duration: float, connections: int, script: Path, server_pid: int | None = None
) -> dict[str, Any]:
    """One wrk run's figures (``parse_wrk``). With ``server_pid``, also the CPU the run took, in
    cores: the server's whole process tree, wrk itself, and everything else on the machine
    (``others_cores``: what shared the 2 cores with the run and can explain a slow round)."""
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    threads = 1 if connections == 1 else 2
    before = _cpu_snapshot(server_pid) if server_pid else None
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = parse_wrk(out)
    if before is not None and server_pid:
        figures.update(_cpu_used(before, _cpu_snapshot(server_pid)))
    return figures


#: (wall time, busy ticks of the machine, ticks of the server's tree, CPU seconds of waited children)
Snapshot = tuple[float, int, int, float]


def _ticks(pid: int) -> int:
    """utime + stime (clock ticks) of one process; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _tree_ticks(root: int) -> int:
    """utime + stime (clock ticks) of a process and all its live descendants."""
    return sum(_ticks(pid) for pid in _tree_pids(root, _children()))


def _cpu_snapshot(server_pid: int) -> Snapshot:
    """(wall time, busy ticks of the machine, ticks of the server's tree, CPU seconds of the
    children this process has waited for: wrk once its run returns)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic(), _cpu_times()[0], _tree_ticks(server_pid), children.ru_utime + children.ru_stime


def _cpu_used(before: Snapshot, after: Snapshot) -> dict[str, float]:
    hz = os.sysconf("SC_CLK_TCK")
    wall = max(after[0] - before[0], 1e-9)
    machine = (after[1] - before[1]) / hz / wall
    server = (after[2] - before[2]) / hz / wall
    wrk_cores = (after[3] - before[3]) / wall
    return {
        "server_cores": server,
        "wrk_cores": wrk_cores,
        "others_cores": max(machine - server - wrk_cores, 0.0),
    }


def parse_wrk(out: str) -> dict[str, Any]:
    """requests/s, p50 and p99 (ms), non-2xx answers and socket errors from ``wrk --latency``."""

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if not m:
            raise SystemExit(f"cannot parse wrk output:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise SystemExit(f"cannot parse wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(rps.group(1)),
        "p50": ms("50"),
        "p99": ms("99"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "errors": errors.group(1) if errors else "",
    }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def settle(idle_share: float = 0.9, every: float = 0.25, timeout: float = 10.0) -> float:
    """Wait until the machine is idle (two samples in a row at ``idle_share`` or more) before a
    timed run, at most ``timeout`` seconds; returns the seconds waited. A server can keep working
    after its own run (MLServer's inference workers finish the requests wrk dropped), and that
    work landed in the next server's run, whichever it was."""
    started = time.monotonic()
    calm = 0
    busy, total = _cpu_times()
    while calm < 2 and time.monotonic() - started < timeout:
        time.sleep(every)
        busy2, total2 = _cpu_times()
        share = 1 - (busy2 - busy) / max(total2 - total, 1)
        calm = calm + 1 if share >= idle_share else 0
        busy, total = busy2, total2
    return time.monotonic() - started


def drain(url: str, body: str, timeout: float = 60) -> None:
    """Wait until the server has answered what wrk left in its queue: one more request, answered
    after the backlog (a server behind at 64 connections keeps working after wrk stops)."""
    with contextlib.suppress(requests.RequestException):
        requests.post(url, data=body, timeout=timeout, headers={"Content-Type": "application/json"})


# --------------------------------------------------------------------------- one model


def check_predictions(servers: dict[str, Server], model: Model) -> str:
    import pandas as pd

    rows = model.rows[:CHECK_ROWS]
    expected = [
        v.item() if hasattr(v, "item") else v
        for v in model.sklearn_model.predict(pd.DataFrame(rows, columns=model.columns))
    ]
    session = requests.Session()
    checked = []
    for key, server in servers.items():
        for label, path in server.endpoints.items():
            got = []
            for row in rows:
                body = v2_body(model, row) if label == "v2" else split_body(model, row)
                r = session.post(
                    server.base + path, data=body, timeout=30, headers={"Content-Type": "application/json"}
                )
                if r.status_code != 200:
                    raise SystemExit(f"{LABEL[key]} {path}: {r.status_code} {r.text[:300]}")
                got += predictions(r.json())
            if got != expected:
                raise SystemExit(
                    f"{LABEL[key]} {path} answers {got} for the first {CHECK_ROWS} rows; "
                    f"the model's predict gives {expected}"
                )
            checked.append(f"{key} {path}")
    return f"{len(rows)} rows identical to the bare model's predict on {len(checked)} endpoints"


def run_model(
    model: Model, args: argparse.Namespace, servers_ctl: Servers, tmp: Path
) -> list[dict[str, Any]]:
    """Every round's figures for one model: per round, per server, per connection count."""
    rounds: list[dict[str, Any]] = []
    script = tmp / "post.lua"
    restart = not args.quick
    servers: dict[str, Server] = {}
    for r in range(args.rounds):
        fig: dict[str, Any] = {"wrk": {}, "cold": {}, "mem_mb": {}}
        if restart or r == 0:
            for key in rotate(SERVERS, r):
                servers[key] = servers_ctl.start(key, model, f"{model.key}-r{r}")
                if restart:  # one at a time: a cold start does not share the CPU with another one
                    servers_ctl.wait_first_answer(servers[key], model)
            for key in SERVERS:
                if not restart:
                    servers_ctl.wait_first_answer(servers[key], model)
                fig["cold"][key] = servers[key].cold_start
            fig["check"] = check_predictions(servers, model)
            print(
                f"  {model.key} round {r + 1}: cold starts "
                + ", ".join(f"{k} {fig['cold'][k]:.1f} s" for k in SERVERS)
                + f"; {fig['check']}",
                flush=True,
            )
        fig["bare_s"] = bare_predict_seconds(model, args.bare_calls)
        fig["step_s"], fig["step_kind"] = gateway_predict_seconds(model, args.bare_calls)
        split, v2 = split_body(model, model.rows[0]), v2_body(model, model.rows[0])
        for ci, conns in enumerate(CONNECTIONS):
            runs = [(k, "invocations") if k != "mlserver-adaptive" else (k, "v2") for k in SERVERS]
            if conns == 1:
                runs.append(("mlserver", "v2"))
            for key, endpoint in rotate(runs, r + ci):
                server = servers[key]
                url = server.base + server.endpoints[endpoint]
                body = v2 if endpoint == "v2" else split
                settle()
                if args.warmup:
                    wrk(url, body, args.warmup, conns, script)
                res = wrk(url, body, args.duration, conns, script, server.proc.pid)
                drain(url, body)  # requests wrk left queued must not load the next server's run
                fig["wrk"][f"{key}/{endpoint}/{conns}"] = res
                bad = f" NON-2XX {res['non2xx']:.0f}" if res["non2xx"] else ""
                bad += f" SOCKET ERRORS {res['errors']}" if res["errors"] else ""
                bad += f"  others {res['others_cores']:.2f} cores" if "others_cores" in res else ""
                print(
                    f"    r{r + 1} c{conns:<3} {LABEL[key]:38} {endpoint:12} {res['rps']:8.1f} req/s  "
                    f"p50 {res['p50']:8.2f} ms  p99 {res['p99']:8.2f} ms{bad}",
                    flush=True,
                )
        if restart or r == args.rounds - 1:
            servers_ctl.stop_all()
            for key in SERVERS:
                fig["mem_mb"][key] = servers_ctl.memory.peak_kb.get(key, 0) / 1024
        rounds.append(fig)
    if not restart:  # one start for all rounds: the same cold start and memory in each
        for fig in rounds:
            fig["cold"], fig["mem_mb"] = rounds[0]["cold"], rounds[-1]["mem_mb"]
    return rounds


# --------------------------------------------------------------------------- rows


def rows_for(key: str, rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ratio rows of one model from every round's figures (``run_model``)."""
    bench = "serving"
    case = MODELS[key]

    def w(fig: dict[str, Any], key: str, endpoint: str, conns: int) -> dict[str, float]:
        return fig["wrk"][f"{key}/{endpoint}/{conns}"]

    def ours(fig: dict[str, Any], conns: int) -> dict[str, float]:
        return w(fig, "ours", "invocations", conns)

    def med(key: str, endpoint: str, conns: int, stat: str) -> float:
        return statistics.median(w(f, key, endpoint, conns)[stat] for f in rounds)

    figures = "; ".join(
        f"{conns} conn: "
        + ", ".join(
            f"{name} {med(k, e, conns, 'rps'):.0f}/s p50 {med(k, e, conns, 'p50'):.1f} "
            f"p99 {med(k, e, conns, 'p99'):.1f}"
            for k, e, name in [
                ("ours", "invocations", "ours"),
                ("mlflow", "invocations", "mlflow serve"),
                ("mlserver", "invocations", "MLServer"),
                *([("mlserver", "v2", "MLServer V2")] if conns == 1 else []),
                ("mlserver-adaptive", "v2", "MLServer adaptive V2"),
            ]
        )
        for conns in CONNECTIONS
    )
    out = []
    mlflow_peer, mls = LABEL["mlflow"], "MLServer 1.7.1"
    out.append(
        ratio_row(
            bench,
            f"{case}, 1 conn",
            "our requests/s / theirs",
            mlflow_peer,
            [ours(f, 1)["rps"] / w(f, "mlflow", "invocations", 1)["rps"] for f in rounds],
            same_work=False,
            goal=3,
            note=f"medians of rounds (req/s, p50 and p99 ms): {figures}",
        )
    )
    best = [
        max(
            w(f, "mlserver", "invocations", 1)["rps"],
            w(f, "mlserver", "v2", 1)["rps"],
            w(f, "mlserver-adaptive", "v2", 1)["rps"],
        )
        for f in rounds
    ]
    out.append(
        ratio_row(
            bench,
            f"{case}, 1 conn",
            "our requests/s / theirs",
            f"{mls}, best mode",
            [ours(f, 1)["rps"] / b for f, b in zip(rounds, best, strict=True)],
            same_work=False,
            goal=2,
            note="best of /invocations and V2 without batching and V2 with adaptive batching",
        )
    )
    for conns in (16, 64):
        out.append(
            ratio_row(
                bench,
                f"{case}, {conns} conn",
                "our requests/s / theirs",
                mlflow_peer,
                [ours(f, conns)["rps"] / w(f, "mlflow", "invocations", conns)["rps"] for f in rounds],
                same_work=False,
            )
        )
        out.append(
            ratio_row(
                bench,
                f"{case}, {conns} conn",
                "our requests/s / theirs",
                f"{mls}, adaptive batching (V2)",
                [ours(f, conns)["rps"] / w(f, "mlserver-adaptive", "v2", conns)["rps"] for f in rounds],
                same_work=False,
                goal=3,
            )
        )
    tail = [w(f, "mlflow", "invocations", 16)["p50"] / ours(f, 16)["p99"] for f in rounds]
    row = ratio_row(
        bench,
        f"{case}, 16 conn, tail",
        "their p50 / our p99",
        mlflow_peer,
        tail,
        same_work=False,
        goal=1,
        note="goal: our p99 below their p50 in every round (the min counts)",
    )
    row["goal_met"] = min(tail) > 1
    out.append(row)
    p99 = [ours(f, 16)["p99"] for f in rounds]
    row = ratio_row(
        bench,
        f"{case}, 16 conn, our p99 over rounds",
        "max / min of our p99 over the rounds",
        "(ours across rounds)",
        [max(p99) / min(p99)],
        same_work=False,
        goal=1.5,
        lower_is_better=True,
        note="our p99 at 16 connections per round: "
        + ", ".join(
            f"{v:.1f} ms" + (f" (others {o:.2f} cores)" if o is not None else "")
            for v, o in zip(p99, [ours(f, 16).get("others_cores") for f in rounds], strict=True)
        ),
    )
    row["rounds"] = len(p99)
    out.append(row)
    per_req = [(1.0 / ours(f, 1)["rps"]) / f["bare_s"] for f in rounds]
    out.append(
        ratio_row(
            bench,
            f"{case}, 1 conn, time per request",
            "our time per request / bare predict",
            "the model's own predict (one-row DataFrame)",
            per_req,
            same_work=True,
            goal=2,
            lower_is_better=True,
            note="bare predict per round: " + ", ".join(f"{f['bare_s'] * 1000:.2f} ms" for f in rounds),
        )
    )
    if all("step_s" in f for f in rounds):  # raw files from before it was measured lack it
        out.append(
            ratio_row(
                bench,
                f"{case}, 1 conn, time per request",
                "our time per request / our predict step",
                f"the gateway's predict step without the server ({rounds[0]['step_kind']})",
                [(1.0 / ours(f, 1)["rps"]) / f["step_s"] for f in rounds],
                same_work=True,
                goal=None,
                lower_is_better=True,
                note="what the server adds around the model; predict step per round: "
                + ", ".join(f"{f['step_s'] * 1e6:.0f} µs" for f in rounds),
            )
        )
    cold_note = "process start to first 200 answer, per round (s): " + "; ".join(
        ", ".join(f"{k} {f['cold'][k]:.1f}" for k in SERVERS) for f in rounds
    )
    mem_note = "peak RSS of the process tree, per round (MB): " + "; ".join(
        ", ".join(f"{k} {f['mem_mb'][k]:.0f}" for k in SERVERS) for f in rounds
    )
    for i, peer in enumerate(("mlflow", "mlserver-adaptive")):
        out.append(
            ratio_row(
                bench,
                f"{case}, cold start",
                "their cold start / ours",
                LABEL[peer],
                [f["cold"][peer] / f["cold"]["ours"] for f in rounds],
                same_work=False,
                note="" if i else cold_note,
            )
        )
    for i, peer in enumerate(("mlflow", "mlserver-adaptive")):
        out.append(
            ratio_row(
                bench,
                f"{case}, peak memory",
                "our peak memory / theirs (process tree)",
                LABEL[peer],
                [f["mem_mb"]["ours"] / f["mem_mb"][peer] for f in rounds],
                same_work=False,
                lower_is_better=True,
                note="" if i else mem_note,
            )
        )
    return out


def all_rows(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Every model's rows; the first says the machine's load during the run."""
    rows = [row for key, rounds in raw["models"].items() for row in rows_for(key, rounds)]
    if rows and "load_after" in raw:
        load = f"load average {raw['load_before']:.1f} at the start, {raw['load_after']:.1f} at the end"
        rows[0]["note"] = f"{load}; {rows[0]['note']}"
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run (default 6)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk before each timed run")
    ap.add_argument(
        "--models", default=None, help="comma-separated subset of lr,rf (default both; --quick: lr)"
    )
    ap.add_argument("--bare-calls", type=int, default=300)
    ap.add_argument("--json", default=None, metavar="PATH", help="write the ratio rows here")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="lr only, 1 s wrk runs, no warm-up, servers started at once and kept for all "
        "rounds (a smoke run)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    ap.add_argument(
        "--raw",
        default=None,
        metavar="PATH",
        help="every round's figures (default: next to --json, as NAME.raw.json)",
    )
    ap.add_argument(
        "--rows-from", default=None, metavar="RAW", help="do not run: the ratio rows of a --raw file"
    )
    args = ap.parse_args()
    # stop the servers (the finally blocks) on SIGTERM, and on SIGINT even when started in the
    # background by a non-interactive shell (which ignores SIGINT for its background jobs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raw_path = args.raw or (str(Path(args.json).with_suffix(".raw.json")) if args.json else None)
    if args.rows_from:
        raw = json.loads(Path(args.rows_from).read_text())
        write_rows(args.json, all_rows(raw))
        return 0
    if args.quick:
        args.duration, args.warmup, args.bare_calls = 1.0, 0.0, 50
    keys = (args.models or ("lr" if args.quick else "lr,rf")).split(",")
    if any(k not in MODELS for k in keys) or args.rounds < 1 or args.duration <= 0:
        ap.error(f"--models takes a subset of {','.join(MODELS)}; --rounds >= 1; --duration > 0")
    if not shutil.which("wrk"):
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    mlserver_python = ensure_peer_venv("mlserver", "mlserver_mlflow", MLSERVER_PINS)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    load_before = os.getloadavg()[0]
    print(f"work dir {tmp}; load average {load_before:.1f}", flush=True)
    memory = TreeMemory()
    raw: dict[str, Any] = {"load_before": load_before, "quick": args.quick, "models": {}}
    try:
        tracking, models = register(tmp, keys)
        ctl = Servers(tmp, tracking, mlserver_python, memory)
        try:
            for key in keys:
                print(f"== {key}: {MODELS[key]}", flush=True)
                raw["models"][key] = run_model(models[key], args, ctl, tmp)
        finally:
            ctl.stop_all()
    finally:
        memory.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    raw["load_after"] = os.getloadavg()[0]
    print(f"load average {raw['load_after']:.1f} at the end", flush=True)
    if raw_path:
        Path(raw_path).write_text(json.dumps(raw, indent=1))
    write_rows(args.json, all_rows(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
