"""Shared helpers: a real MLflow registry on SQLite with tiny models, and a real gateway process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ASSETS = Path(__file__).parent.parent / "assets" / "serving"
ROOT = Path(__file__).parent.parent.parent
TOKEN = "test-token-0123456789"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    name: str
    uris: dict[str, str]  # semver -> models:/name/N
    rows: list[list[float]]  # sample rows (iris features)


def build_registry(tmp: Path, name: str = "task_classifier") -> Registry:
    """Register 1.0.0 (LogisticRegression), 1.1.0 (a weaker LogisticRegression) and 2.0.0 (always raises)."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    exp = mlflow.create_experiment(f"serving-{time.time_ns()}", artifact_location=str(tmp / "artifacts"))
    data = load_iris(as_frame=True)
    X = data.frame[data.feature_names].copy()
    X.columns = FEATURES
    y = data.target
    client = MlflowClient(uri)
    uris: dict[str, str] = {}
    models: list[tuple[str, Any]] = [
        ("1.0.0", LogisticRegression(max_iter=500).fit(X, y)),
        ("1.1.0", LogisticRegression(C=0.05, max_iter=500).fit(X, y)),
        ("2.0.0", None),
    ]
    for semver, model in models:
        with mlflow.start_run(experiment_id=exp):
            if model is not None:
                info = mlflow.sklearn.log_model(model, name="model",
                                                signature=infer_signature(X, model.predict(X)),
                                                pip_requirements=["scikit-learn"])
            else:
                info = mlflow.pyfunc.log_model(name="model", python_model=str(ASSETS / "failing_model.py"),
                                               signature=infer_signature(X, y), pip_requirements=["mlflow"])
        mv = mlflow.register_model(info.model_uri, name)
        client.set_model_version_tag(name, mv.version, "mlops.semver", semver)
        uris[semver] = f"models:/{name}/{mv.version}"
    return Registry(uri, name, uris, X.head(20).values.tolist())


def write_env(repo: Path, env: str, port: int, version: str, strategy: str = "",
              model: str = "task_classifier") -> None:
    (repo / "environments").mkdir(parents=True, exist_ok=True)
    text = (f"target:\n  type: local\n  url: http://127.0.0.1:{port}\n"
            f"models:\n  {model}:\n    version: \"{version}\"\n")
    if strategy:
        text += "    strategy:\n" + "".join(f"      {line}\n" for line in strategy.strip("\n").splitlines())
    (repo / "environments" / f"{env}.yaml").write_text(text)


_SHARED: dict[str, Registry] = {}


def shared_registry(tmp_path_factory: Any) -> Registry:
    """One registry per test session (building it takes tens of seconds on a busy machine)."""
    if "registry" not in _SHARED:
        _SHARED["registry"] = build_registry(tmp_path_factory.mktemp("mlflow"))
    os.environ["MLFLOW_TRACKING_URI"] = _SHARED["registry"].tracking_uri
    return _SHARED["registry"]


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, headers={"Authorization": f"Bearer {TOKEN}"},
                                timeout=10, **kwargs)

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = self.admin("GET", "/admin/status").json()
        return data

    def score(self, rows: list[list[float]], **headers: str) -> requests.Response:
        return requests.post(self.url + "/invocations", json={"dataframe_split": {
            "columns": FEATURES, "data": rows}}, headers=headers, timeout=10)


def gateway_env(registry: Registry) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri, "MLOPS_GATEWAY_TOKEN": TOKEN,
            "PYTHONPATH": str(ROOT), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def start_gateway(repo: Path, env: str, port: int, registry: Registry, *, store: str | None = None,
                  tick: float = 0.05, wait: float = 180.0, args: tuple[str, ...] = ()) -> GatewayProcess:
    log = repo / f"gateway-{port}-{time.time_ns()}.log"
    cmd = [sys.executable, "-m", "mlops_actions", "-C", str(repo), "serve", "--env", env,
           "--port", str(port), "--tick", str(tick)]
    if store:
        cmd += ["--store", store]
    cmd += list(args)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=gateway_env(registry), cwd=ROOT)
    gw = GatewayProcess(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(gw.url + "/readyz", timeout=1).status_code == 200:
                return gw
        time.sleep(0.1)
    stop(gw)
    raise RuntimeError(f"gateway not ready in {wait}s:\n{log.read_text()[-3000:]}")


def stop(gw: GatewayProcess, sig: int = signal.SIGTERM, wait: float = 30.0) -> int:
    if gw.proc.poll() is None:
        gw.proc.send_signal(sig)
        try:
            gw.proc.wait(wait)
        except subprocess.TimeoutExpired:
            gw.proc.kill()
            gw.proc.wait(10)
    return gw.proc.returncode


@contextlib.contextmanager
def running(repo: Path, env: str, port: int, registry: Registry, **kwargs: Any) -> Iterator[GatewayProcess]:
    gw = start_gateway(repo, env, port, registry, **kwargs)
    try:
        yield gw
    finally:
        stop(gw)


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


# --------------------------------------------------------------------------- in-process helpers


class FakeBackend:
    """Row-wise model: predicts int(sum of the row) * factor; raises when asked to."""

    def __init__(self, uri: str, factor: int = 1, fail: bool = False,
                 columns: tuple[str, ...] | None = ("a", "b")) -> None:
        self.uri = uri
        self.factor = factor
        self.fail = fail
        self.input_columns = columns
        self.calls = 0

    def predict(self, frame: Any) -> Any:
        import numpy as np

        self.calls += 1
        if self.fail:
            raise RuntimeError("broken on purpose")
        if "boom" in frame.columns and (frame["boom"] == 1).any():
            raise ValueError("row asked to fail")
        values = frame.select_dtypes("number").sum(axis=1).to_numpy()
        return (values * self.factor).astype(np.int64)


class FakeLoader:
    """uri -> FakeBackend; ``fake://v2?fail`` makes a failing one; ``fake://missing`` fails to load."""

    def __init__(self) -> None:
        self.backends: dict[str, FakeBackend] = {}

    def __call__(self, uri: str) -> FakeBackend:
        from mlops_actions.serving.interface import ServingError

        if "missing" in uri:
            raise ServingError(f"could not load {uri}")
        factor = int(uri.split("fake://v", 1)[1].split("?", 1)[0]) if uri.startswith("fake://v") else 1
        backend = FakeBackend(uri, factor=factor, fail=uri.endswith("?fail"))
        self.backends[uri] = backend
        return backend


async def asgi_call(app: Any, method: str, path: str, body: bytes = b"",
                    headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Call an ASGI app in-process; returns status, headers, body."""
    hdrs = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body and not any(k == b"content-length" for k, _ in hdrs):
        hdrs.append((b"content-length", str(len(body)).encode()))
    path_only, _, query = path.partition("?")
    scope = {"type": "http", "method": method, "path": path_only, "raw_path": path_only.encode(),
             "query_string": query.encode(), "headers": hdrs, "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1234), "root_path": "",
             "asgi": {"version": "3.0"}}
    sent = False
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]
