"""``staging-check``: serve the pinned versions of an environment on 127.0.0.1 through the
real gateway, replay rows of each model's test data, and check what a deploy would meet.

Checks (four-valued, like policy):

* ``health``: ``/healthz`` and ``/readyz`` answer 200 once the gateway has loaded every model;
* ``errors``: every replayed row is answered 200;
* ``parity``: served predictions equal the offline ones (``mlflow.pyfunc`` on the same rows);
* ``latency``: served p95 per row within the model's latency budget (``latency`` behavioural
  test's ``p95_ms`` in model.yaml, else ``--latency-budget-ms``).
"""

from __future__ import annotations

import json
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from mlops_actions.config.loader import load_model
from mlops_actions.config.specs import EnvironmentSpec, LatencyTest, ModelSpec
from mlops_actions.errors import ConfigError, MlopsActionsError
from mlops_actions.gitops.policy import Outcome

__all__ = ["StagingCheck", "render_markdown", "render_text", "run_staging_check"]

START_TIMEOUT = 300.0  # loading models can be slow on a busy runner


@dataclass(frozen=True)
class StagingCheck:
    check: str
    model: str | None
    outcome: Outcome
    reason: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _test_rows(repo: Path, key: str, spec: ModelSpec, rows: int) -> Any:
    import pandas as pd

    path = repo / "models" / key / spec.data.test
    try:
        frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the test data of {key}: {exc}",
                          hint=f"data.test in models/{key}/model.yaml names {spec.data.test}") from None
    features = spec.data.features or [c for c in frame.columns if c != spec.data.label]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ConfigError(f"test data of {key} lacks feature column(s) {', '.join(missing)}")
    return frame[features].head(rows).reset_index(drop=True)


def _same(served: Sequence[Any], offline: Sequence[Any]) -> int:
    """How many predictions differ (numbers compared with a tolerance)."""
    diff = 0
    for a, b in zip(served, offline, strict=True):
        try:
            ok = bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                  rtol=1e-6, atol=1e-9))
        except (TypeError, ValueError):
            ok = a == b
        diff += 0 if ok else 1
    return diff


def _predictions(body: Any) -> list[Any]:
    if isinstance(body, dict) and "predictions" in body:
        preds = body["predictions"]
        return list(preds) if isinstance(preds, list) else [preds]
    return list(body) if isinstance(body, list) else [body]


def _check_model(base: str, key: str, uri: str, frame: Any, budget_ms: float) -> list[StagingCheck]:
    import mlflow.pyfunc

    offline = mlflow.pyfunc.load_model(uri).predict(frame)
    offline_list = offline.tolist() if hasattr(offline, "tolist") else list(offline)
    served: list[Any] = []
    failures: list[str] = []
    latencies: list[float] = []
    columns = list(frame.columns)
    for i in range(len(frame)):
        row = frame.iloc[[i]]
        body = {"dataframe_split": {"columns": columns, "data": json.loads(row.to_json(orient="values"))}}
        t0 = time.perf_counter()
        try:
            resp = requests.post(f"{base}/models/{key}/invocations", json=body, timeout=30)
        except requests.RequestException as exc:
            failures.append(f"row {i}: {type(exc).__name__}")
            served.append(None)
            continue
        latencies.append((time.perf_counter() - t0) * 1000)
        if resp.status_code != 200:
            failures.append(f"row {i}: HTTP {resp.status_code} {resp.text[:120]}")
            served.append(None)
            continue
        served.extend(_predictions(resp.json())[:1])
    checks = []
    n = len(frame)
    if failures:
        checks.append(StagingCheck("errors", key, Outcome.FAILED,
                                   f"{len(failures)} of {n} requests failed; first: {failures[0]}"))
    else:
        checks.append(StagingCheck("errors", key, Outcome.PASSED, f"{n} of {n} requests answered 200"))
    answered = [(s, o) for s, o in zip(served, offline_list, strict=True) if s is not None]
    if not answered:
        checks.append(StagingCheck("parity", key, Outcome.ERROR, "no prediction was served"))
    else:
        differ = _same([s for s, _ in answered], [o for _, o in answered])
        outcome = Outcome.PASSED if differ == 0 else Outcome.FAILED
        checks.append(StagingCheck("parity", key, outcome,
                                   f"{differ} of {len(answered)} served predictions differ from offline "
                                   f"{uri}" if differ else
                                   f"{len(answered)} served predictions equal the offline ones"))
    if len(latencies) < 5:
        checks.append(StagingCheck("latency", key, Outcome.INCONCLUSIVE,
                                   f"{len(latencies)} timed requests: too few for a p95"))
    else:
        p95 = float(np.percentile(latencies, 95))
        outcome = Outcome.PASSED if p95 <= budget_ms else Outcome.FAILED
        checks.append(StagingCheck("latency", key, outcome,
                                   f"p95 {p95:.1f} ms per row over {len(latencies)} requests; "
                                   f"budget {budget_ms:.0f} ms"))
    return checks


def _budget(spec: ModelSpec, default_ms: float) -> float:
    for test in spec.validation.behavioural:
        if isinstance(test, LatencyTest):
            return float(test.p95_ms)
    return default_ms


def run_staging_check(repo: Path, env_name: str, env: EnvironmentSpec, *, rows: int = 100,
                      latency_budget_ms: float = 500.0, registry: Any = None) -> list[StagingCheck]:
    """Serve ``env``'s pins through the gateway on 127.0.0.1 and run the checks."""
    import uvicorn

    from mlops_actions.deploy.registry_bridge import get_deploy_registry
    from mlops_actions.serving.gateway import GatewayConfig
    from mlops_actions.serving.local_plane import initial_routes, local_gateway
    from mlops_actions.serving.server import uvicorn_config

    specs: dict[str, ModelSpec] = {}
    for key in env.models:
        path = repo / "models" / key / "model.yaml"
        if not path.is_file():
            raise ConfigError(f"models/{key}/model.yaml not found: staging-check needs its test data")
        specs[key] = load_model(path)
    frames = {key: _test_rows(repo, key, spec, rows) for key, spec in specs.items()}
    routes = initial_routes(repo, env, registry or get_deploy_registry())
    checks: list[StagingCheck] = []
    with tempfile.TemporaryDirectory(prefix="mlops-staging-") as tmp:
        gateway = local_gateway(GatewayConfig(environment=env_name, state_dir=Path(tmp),
                                              token=secrets.token_hex(16), store=None, initial_routes=routes))
        port = _free_port()
        server = uvicorn.Server(uvicorn_config(gateway, "127.0.0.1", port))
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                server.run()
            except BaseException as exc:  # reported below as a failed health check
                failure.append(exc)

        thread = threading.Thread(target=serve, name="staging-gateway", daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not server.started:
                why = f"{type(failure[0]).__name__}: {failure[0]}" if failure else \
                    ("it exited during startup (a model did not load?)" if not thread.is_alive()
                     else f"not started within {START_TIMEOUT:.0f}s")
                return [StagingCheck("health", None, Outcome.FAILED, f"the gateway did not start: {why}")]
            while (gateway.not_ready_reason() is not None and gateway.start_error is None
                   and time.monotonic() < deadline):  # the server answers first, then loads the models
                time.sleep(0.2)
            if gateway.start_error is not None:
                return [StagingCheck("health", None, Outcome.FAILED,
                                     f"the gateway did not start: {gateway.start_error}")]
            health = requests.get(f"{base}/healthz", timeout=10)
            ready = requests.get(f"{base}/readyz", timeout=10)
            if health.status_code == 200 and ready.status_code == 200:
                checks.append(StagingCheck("health", None, Outcome.PASSED,
                                           "/healthz and /readyz answered 200"))
            else:
                checks.append(StagingCheck("health", None, Outcome.FAILED,
                                           f"/healthz {health.status_code}, /readyz {ready.status_code}"))
            for key, spec in specs.items():
                try:
                    checks += _check_model(base, key, routes[key].stable_uri, frames[key],
                                           _budget(spec, latency_budget_ms))
                except MlopsActionsError as exc:
                    checks.append(StagingCheck("parity", key, Outcome.ERROR, exc.message))
        finally:
            server.should_exit = True
            thread.join(timeout=60)
    return checks


_ICON = {Outcome.PASSED: "✅", Outcome.FAILED: "❌", Outcome.INCONCLUSIVE: "⚠️", Outcome.ERROR: "💥"}


def render_text(env: str, checks: list[StagingCheck]) -> str:
    lines = [f"{c.outcome.value.upper():<12} {c.check:<8} {c.model or env:<24} {c.reason}" for c in checks]
    counts = {o: sum(c.outcome is o for c in checks) for o in Outcome}
    lines.append(f"staging-check {env}: " + ", ".join(f"{n} {o.value}" for o, n in counts.items() if n))
    return "\n".join(lines)


def render_markdown(env: str, checks: list[StagingCheck]) -> str:
    out = [f"### mlops-actions staging-check `{env}`", "",
           "| | check | model | detail |", "|---|---|---|---|"]
    for c in checks:
        out.append(f"| {_ICON[c.outcome]} {c.outcome.value} | {c.check} | {c.model or '-'} | "
                   f"{c.reason.replace('|', '/')} |")
    return "\n".join(out) + "\n"
