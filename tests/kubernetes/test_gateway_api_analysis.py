"""gateway-api mode: ``apply --wait`` steps the HTTPRoute weights and runs the analyses itself,
against a REAL Prometheus (started here on 127.0.0.1) scraping a tiny exporter whose metrics
the test controls: the same metric objects the serving pods export
(``mlops_actions.monitoring.metrics.gateway_metrics``), queried with the same PromQL as the Argo
AnalysisTemplates. The cluster is the loopback fake API server."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from mlops_actions.config.specs import AnalysisMetric, AnalysisSpec, CanaryStep, Pause
from mlops_actions.deploy.targets.kubernetes.progressive import PrometheusAnalysis, resume_step
from mlops_actions.deploy.targets.kubernetes.render import analysis_query
from mlops_actions.monitoring.metrics import gateway_metrics
from tests.alerting.test_prometheus import _start, _stop, needs_prometheus
from tests.conftest import free_port
from tests.kubernetes.conftest import FakeApiServer
from tests.kubernetes.test_cli_targets import cli, mlflow_uri, repo  # noqa: F401 - fixtures

ENV = """target:
  type: kubernetes
  namespace: {namespace}
  mode: gateway-api
  replicas: 1
  gateway: {{name: edge-gateway}}
  prometheus_url: {prometheus}
models:
  {model}:
    version: "{version}"
    strategy:
      type: canary
      steps:
        - set_weight: 20
        - analysis:
            interval: 2s
            count: 2
            min_samples: 5
            metrics:
              - {{name: error_rate, max: 0.05}}
              - {{name: latency_p95_ms, max: 250}}
        - set_weight: 60
        - pause: {{duration: 1s}}
        - set_weight: 100
"""


@dataclass
class Traffic:
    """Requests the exporter counts, per (model, version, environment): error share, latency."""

    error_rates: dict[tuple[str, str, str], float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class LivePrometheus:
    url: str
    traffic: Traffic


def _serve_traffic(traffic: Traffic, registry: CollectorRegistry) -> None:
    metrics = gateway_metrics(registry)
    rnd = random.Random(7)
    while not traffic.stop.is_set():
        for (model, version, env), errors in list(traffic.error_rates.items()):
            for _ in range(20):
                code = 503 if rnd.random() < errors else 200
                metrics.observe_request(model=model, version=version, environment=env, variant="canary",
                                        code=code, seconds=rnd.uniform(0.005, 0.05))
        traffic.stop.wait(0.1)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePrometheus]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    tmp = tmp_path_factory.mktemp("prometheus")
    traffic = Traffic({("churn", "1.3.0", "edge-good"): 0.0, ("task_classifier", "2.1.0", "edge-bad"): 0.5,
                       ("churn", "1.2.0", "edge-good"): 0.0})
    registry = CollectorRegistry()
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    thread = threading.Thread(target=_serve_traffic, args=(traffic, registry), daemon=True)
    thread.start()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "pods", "static_configs": [
                  {"targets": [f"127.0.0.1:{server.server_port}"]}]}]}
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
                   f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                   "--storage.tsdb.retention.time=1h", "--log.level=warn"], url + "/-/ready", "prometheus")
    try:
        yield LivePrometheus(url, traffic)
    finally:
        traffic.stop.set()
        _stop(proc)
        server.shutdown()
        thread.join(timeout=5)


def wait_for_data(url: str, model: str, version: str, env: str, timeout: float = 60.0) -> None:
    """Until the analysis' own error-rate query has a value (a few scrapes in)."""
    spec = AnalysisSpec(interval="2s", min_samples=5, metrics=[AnalysisMetric(name="error_rate", max=0.05)])
    q = analysis_query(spec.metrics[0], spec).query
    promql = (q.replace("{{args.model}}", model).replace("{{args.version}}", version)
              .replace("{{args.environment}}", env))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if PrometheusAnalysis(url).query(promql):
            return
        time.sleep(0.5)
    pytest.fail(f"Prometheus at {url} has no data for {model} {version} after {timeout:.0f}s")


def route_weights(cluster: Any, namespace: str, model: str) -> list[list[tuple[str, int]]]:
    """Every HTTPRoute the target applied, as (backend, weight) lists, repeats collapsed."""
    seen: list[list[tuple[str, int]]] = []
    for obj in cluster.applied:
        if obj["kind"] == "HTTPRoute" and obj["metadata"]["namespace"] == namespace \
                and obj["metadata"]["name"] == model.replace("_", "-"):
            plain = [(b["name"], b["weight"]) for r in obj["spec"]["rules"] if not r.get("matches")
                     for b in r["backendRefs"]]
            if not seen or seen[-1] != plain:
                seen.append(plain)
    return seen


def write_env(root: Path, name: str, model: str, version: str, prometheus: str) -> None:
    (root / "environments" / f"{name}.yaml").write_text(
        ENV.format(namespace=f"ml-{name}", model=model, version=version, prometheus=prometheus))


@pytest.mark.prometheus
@pytest.mark.slow
@needs_prometheus
def test_a_healthy_canary_is_stepped_analysed_and_promoted(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer,  # noqa: F811
        prometheus: LivePrometheus) -> None:
    write_env(repo, "edge-good", "churn", "1.2.0", prometheus.url)
    assert cli(capsys, repo, "apply", "--env", "edge-good", "--wait", "--timeout", "30")[0] == 0
    wait_for_data(prometheus.url, "churn", "1.3.0", "edge-good")
    write_env(repo, "edge-good", "churn", "1.3.0", prometheus.url)
    started = time.monotonic()
    code, out, _ = cli(capsys, repo, "apply", "--env", "edge-good", "--wait", "--timeout", "60")
    assert code == 0, out
    assert "churn 1.3.0: Healthy (changed)" in out
    assert "analysis passed" in out and "error_rate 0 ok" in out
    assert route_weights(api_server.cluster, "ml-edge-good", "churn") == [
        [("churn-v1-2-0", 100)],
        [("churn-v1-2-0", 80), ("churn-v1-3-0", 20)],  # declared, then the analysis at 20%
        [("churn-v1-2-0", 40), ("churn-v1-3-0", 60)],
        [("churn-v1-2-0", 0), ("churn-v1-3-0", 100)],
        [("churn-v1-3-0", 100)],  # promoted: the old version leaves the route
    ]
    # two measurements every 2 s, then a 1 s pause: not less than that
    assert time.monotonic() - started >= 2 * 2 + 1


@pytest.mark.prometheus
@needs_prometheus
def test_a_failing_canary_is_rolled_back_to_the_live_version(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer,  # noqa: F811
        prometheus: LivePrometheus) -> None:
    write_env(repo, "edge-bad", "task_classifier", "2.0.0", prometheus.url)
    assert cli(capsys, repo, "apply", "--env", "edge-bad", "--wait", "--timeout", "30")[0] == 0
    wait_for_data(prometheus.url, "task_classifier", "2.1.0", "edge-bad")
    write_env(repo, "edge-bad", "task_classifier", "2.1.0", prometheus.url)
    code, out, _ = cli(capsys, repo, "apply", "--env", "edge-bad", "--wait", "--timeout", "60")
    assert code == 1, out
    assert "task_classifier 2.1.0: RolledBack" in out and "out of bounds" in out
    assert route_weights(api_server.cluster, "ml-edge-bad", "task_classifier")[-2:] == [
        [("task-classifier-v2-0-0", 80), ("task-classifier-v2-1-0", 20)],
        [("task-classifier-v2-0-0", 100), ("task-classifier-v2-1-0", 0)],  # back to the live version
    ]
    # a rerun does not restart it: rolled back stays rolled back until promoted or re-pinned
    code, out, _ = cli(capsys, repo, "apply", "--env", "edge-bad", "--wait", "--timeout", "10")
    assert code == 1 and "rolled back earlier" in out


@pytest.mark.prometheus
@needs_prometheus
def test_a_rerun_resumes_from_the_live_weight(
        capsys: pytest.CaptureFixture[str], repo: Path, api_server: FakeApiServer,  # noqa: F811
        prometheus: LivePrometheus) -> None:
    write_env(repo, "edge-good", "churn", "1.2.0", prometheus.url)
    assert cli(capsys, repo, "apply", "--env", "edge-good", "--wait", "--timeout", "30")[0] == 0
    write_env(repo, "edge-good", "churn", "1.3.0", prometheus.url)
    assert cli(capsys, repo, "apply", "--env", "edge-good")[0] == 0  # declared at 20%, nobody watching
    code, out, _ = cli(capsys, repo, "status", "--env", "edge-good")  # another process reads the weights
    assert code == 0 and "churn: stable 1.2.0, canary 1.3.0 at 20%" in out
    # the job that drove it got as far as 60% and died: the route is all that is left of it
    route = api_server.cluster.get("HTTPRoute", "ml-edge-good", "churn")
    assert route is not None
    route["spec"]["rules"][0]["backendRefs"] = [{"name": "churn-v1-2-0", "port": 80, "weight": 40},
                                                {"name": "churn-v1-3-0", "port": 80, "weight": 60}]
    code, out, _ = cli(capsys, repo, "apply", "--env", "edge-good", "--wait", "--timeout", "30")
    assert code == 0, out
    assert "resuming at step 3 from the live weight 60%" in out and "analysis" not in out
    assert route_weights(api_server.cluster, "ml-edge-good", "churn")[-2:] == [
        [("churn-v1-2-0", 0), ("churn-v1-3-0", 100)], [("churn-v1-3-0", 100)]]


def test_resume_step_is_after_the_last_set_weight_at_or_below_the_live_weight() -> None:
    steps = [CanaryStep(set_weight=20), CanaryStep(pause=Pause()), CanaryStep(set_weight=60),
             CanaryStep(pause=Pause(duration="1s")), CanaryStep(set_weight=100)]
    assert [resume_step(steps, w) for w in (0, 20, 30, 60, 100)] == [0, 1, 1, 3, 5]


def test_prometheus_down_is_an_error_measurement_not_a_crash() -> None:
    spec = AnalysisSpec(interval="1s", metrics=[AnalysisMetric(name="error_rate", max=0.1)])
    [m] = PrometheusAnalysis(f"http://127.0.0.1:{free_port()}", timeout=2).measure(
        spec, model="m", version="1.0.0", environment="e", at=0.0)
    assert m.result.value == "error" and "ConnectionError" in m.message
    with pytest.raises(requests.ConnectionError):
        PrometheusAnalysis(f"http://127.0.0.1:{free_port()}", timeout=2).query("up")
