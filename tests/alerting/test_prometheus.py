"""Rules with promtool; every PromQL query of the rules and dashboards against a REAL
Prometheus scraping the real exporter (fed with values computed on real data) and a
gateway-like server exposing the same metrics.py objects."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from mlops_actions.monitoring.alerts import Alert, AlertManager, Severity
from mlops_actions.monitoring.alerts.webhook import WebhookSink
from mlops_actions.monitoring.exporter import (
    FeatureDrift,
    MonitoringResult,
    export_results,
    serve_metrics,
)
from mlops_actions.monitoring.metrics import gateway_metrics, monitoring_metrics, process_metrics
from tests.alerting.conftest import Receiver
from tests.alerting.test_sinks import pagerduty_receiver
from tests.conftest import REPO_ROOT, free_port

PROM = REPO_ROOT / "docs" / "operations" / "prometheus"
GRAFANA = REPO_ROOT / "docs" / "operations" / "grafana"
needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None or shutil.which("promtool") is None,
                                      reason="prometheus/promtool not installed (apt-get install prometheus)")


@pytest.mark.prometheus
@needs_prometheus
def test_promtool_check_rules() -> None:
    out = subprocess.run(["promtool", "check", "rules", str(PROM / "rules.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 12 rules found" in out.stdout


@pytest.mark.prometheus
@needs_prometheus
def test_promtool_rules_unit_tests() -> None:
    out = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], cwd=PROM,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_generated_and_provisioning_ready() -> None:
    for name, text in _generator().render().items():
        assert (GRAFANA / "dashboards" / name).read_text() == text, \
            f"{name} is stale: run python docs/operations/grafana/build_dashboards.py"
    uids = set()
    for path in (GRAFANA / "dashboards").glob("*.json"):
        d = json.loads(path.read_text())
        assert d["uid"] not in uids and d["panels"] and d["schemaVersion"] >= 36
        uids.add(d["uid"])
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        for p in d["panels"]:
            assert p["targets"] and all(t["expr"] for t in p["targets"])
            assert p["gridPos"]["x"] >= 0 and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    assert len(uids) == 5
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus"
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mlops-actions.yml").read_text())
    assert prov["providers"][0]["type"] == "file" and prov["providers"][0]["options"]["path"]


# The AnalysisTemplate query shapes of branch `kubernetes`
# (mlops_actions/deploy/targets/kubernetes/render.py: analysis_query), args filled in:
# the same vocabulary must answer them.
_SEL = '{model="churn",version="1.3.0",environment="production"}'
ARGO_ANALYSIS = [
    ("argo error_rate", f"(sum(rate(mlops_request_errors_total{_SEL}[60s])) or on() vector(0))"
                        f" / sum(rate(mlops_requests_total{_SEL}[60s]))"),
    ("argo latency_p95_ms", "histogram_quantile(0.95, sum by (le) "
                            f"(rate(mlops_request_duration_seconds_bucket{_SEL}[60s]))) * 1000"),
    ("argo min_samples", f"sum(increase(mlops_requests_total{_SEL}[60s])) >= 1"),
    ("argo accuracy", f"max(mlops_model_accuracy{_SEL})"),
    ("argo prediction_drift", f"max(mlops_prediction_drift_score{_SEL})"),
]


def all_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule, recorded series, dashboard target and variable."""
    out: list[tuple[str, str]] = []
    rules = yaml.safe_load((PROM / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            out.append((f"rules.yml {name}", rule["expr"]))
            if "record" in rule:
                out.append((f"rules.yml recorded {name}", rule["record"]))
    out.extend(ARGO_ANALYSIS)
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        d = json.loads(path.read_text())
        for p in d["panels"]:
            for t in p["targets"]:
                out.append((f"{path.name} '{p['title']}' {t['refId']}", t["expr"]))
        for v in d["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v.get("definition", ""))
            if m:
                out.append((f"{path.name} variable {v['name']}", m.group(1)))
    return out


def grafana_to_promql(expr: str) -> str:
    return (expr.replace("$__rate_interval", "15s").replace("$model", ".+")
            .replace("$environment", ".+").replace("$job", ".+"))


# --------------------------------------------------------------------------- data sources
def computed_results() -> list[MonitoringResult]:
    """Real values: a model trained on real data, scored on a shifted copy; KS per feature."""
    from scipy.stats import ks_2samp, wasserstein_distance
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.iloc[:, :8]
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.4, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(xtr, ytr)
    other = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000)).fit(xtr, ytr)
    current = xte.copy()
    for col in current.columns[:5]:
        current[col] = current[col] + xtr[col].std()
    drift = tuple(FeatureDrift(c, float(ks_2samp(xtr[c], current[c]).pvalue), "ks",
                               bool(ks_2samp(xtr[c], current[c]).pvalue < 0.05)) for c in x.columns)
    base_acc = float((model.predict(xte) == yte).mean())
    pred_drift = float(wasserstein_distance(model.predict_proba(xte)[:, 1],
                                            model.predict_proba(current)[:, 1]))
    share = sum(d.drifted for d in drift) / len(drift)
    now = time.time()
    return [
        MonitoringResult("churn", "1.3.0", "production",
                         metrics={"accuracy": float((model.predict(current) == yte).mean())},
                         baseline={"accuracy": base_acc}, feature_drift=drift, dataset_drift=share >= 0.5,
                         prediction_drift=pred_drift, prediction_drift_method="wasserstein",
                         prediction_drifted=pred_drift >= 0.1, samples=len(current), timestamp=now),
        MonitoringResult("pricing", "2.0.0", "production", metrics={"accuracy": base_acc},
                         baseline={"accuracy": base_acc}, samples=len(xte), timestamp=now),
        MonitoringResult("pricing", "2.1.0", "production",
                         metrics={"accuracy": float((other.predict(xte) == yte).mean())},
                         samples=len(xte), timestamp=now),
        MonitoringResult("idle", "0.1.0", "production", metrics={"accuracy": 0.9}, timestamp=now - 3 * 3600),
    ]


def gateway_traffic(stop: threading.Event, registry: CollectorRegistry) -> None:
    """Gateway-like traffic through the same metrics.py objects the gateway uses."""
    g = gateway_metrics(registry)
    rnd = random.Random(0)
    g.set_deployment(model="churn", environment="production", version="1.3.0", strategy="canary",
                     phase="progressing", phases=["progressing", "paused", "healthy", "degraded"])
    g.set_deployment(model="pricing", environment="production", version="2.0.0", strategy="ab_test",
                     phase="healthy")
    g.set_deployment(model="idle", environment="production", version="0.1.0", strategy="full",
                     phase="healthy")
    g.set_weights(model="churn", environment="production", weights={("1.2.0", "stable"): 0.8,
                                                                     ("1.3.0", "canary"): 0.2})
    g.set_weights(model="pricing", environment="production", weights={("2.0.0", "stable"): 0.5,
                                                                       ("2.1.0", "b"): 0.5})
    g.rollout_step.labels("churn", "production").set(1)
    routes = [("churn", "1.2.0", "stable", 0.01, 0.05), ("churn", "1.3.0", "canary", 0.2, 0.0),
              ("pricing", "2.0.0", "stable", 0.02, 0.0), ("pricing", "2.1.0", "b", 0.03, 0.0)]
    while not stop.is_set():
        for model, version, variant, err, slow in routes:
            for _ in range(5):
                code = 503 if rnd.random() < err else 200
                seconds = 0.9 if rnd.random() < slow else rnd.uniform(0.001, 0.02)
                g.observe_request(model=model, version=version, environment="production", variant=variant,
                                  code=code, seconds=seconds)
                g.predictions_logged_total.labels(model, version, "production").inc()
        g.predictions_rejected_total.labels("churn", "production").inc()
        g.prediction_queue_depth.set(rnd.randint(0, 50))
        stop.wait(0.05)


ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _start(cmd: list[str], ready: str, what: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(ready, timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"{what} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"{what} not ready within 15 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def alertmanager_config(receiver_url: str) -> dict[str, Any]:
    """The shipped docs/operations/alertmanager/alertmanager.yml, pointed at the loopback receiver,
    fast timers."""
    am = yaml.safe_load((REPO_ROOT / "docs" / "operations" / "alertmanager" / "alertmanager.yml").read_text())
    am["route"].update(group_wait="1s", group_interval="1s")
    for r in am["receivers"]:
        for c in r.get("slack_configs", []):
            c.pop("api_url_file")
            c["api_url"] = receiver_url + "/am-slack"
        for c in r.get("pagerduty_configs", []):
            c.pop("routing_key_file")
            c.update(routing_key="R" * 32, url=receiver_url + "/v2/enqueue")
        for c in r.get("webhook_configs", []):
            c["url"] = receiver_url + "/alertmanager"
    return am


@dataclass
class Live:
    url: str
    receiver: Receiver | None  # what Alertmanager delivered, when it is installed


@pytest.fixture
def live_prometheus(tmp_path: Path, receiver: Receiver) -> Iterator[Live]:
    stop = threading.Event()
    # the gateway-like server
    greg = CollectorRegistry()
    process_metrics(greg)
    gserver, _ = start_http_server(0, addr="127.0.0.1", registry=greg)
    traffic = threading.Thread(target=gateway_traffic, args=(stop, greg), daemon=True)
    traffic.start()
    # the exporter, with an alert manager whose sink is down (so delivery failures count)
    ereg = CollectorRegistry()
    process_metrics(ereg)
    metrics = monitoring_metrics(ereg)
    export_results(metrics, computed_results())
    eserver, _ = serve_metrics(ereg, 0)
    manager = AlertManager([WebhookSink(f"http://127.0.0.1:{free_port()}/down", retries=0, timeout=1)],
                           tmp_path / "alerts.json", metrics=metrics)

    def alerting() -> None:
        while not stop.is_set():
            manager.fire([Alert("churn/production/accuracy", Severity.ERROR, "accuracy drop",
                                model="churn", environment="production")])
            stop.wait(0.5)

    alerts = threading.Thread(target=alerting, daemon=True)
    alerts.start()
    port = free_port()
    am_proc = None
    if ALERTMANAGER:
        receiver.handler = lambda r: pagerduty_receiver(r) if r.path == "/v2/enqueue" else (200, b"ok")
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(receiver.url)))
        am_port = free_port()
        am_proc = _start([ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}",
                          f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                          "--cluster.listen-address=", "--log.level=warn"],
                         f"http://127.0.0.1:{am_port}/-/ready", "alertmanager")
    config: dict[str, Any] = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(PROM / "rules.yml")],
              "scrape_configs": [
                  {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{server.server_port}"]}]}
                  for job, server in (("gateway", gserver), ("exporter", eserver))]}
    if ALERTMANAGER:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    proc = None
    try:
        proc = _start(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                       f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                       "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                      url + "/-/ready", "prometheus")
        yield Live(url, receiver if ALERTMANAGER else None)
    finally:
        stop.set()
        for p in (proc, am_proc):
            if p is not None:
                _stop(p)
        gserver.shutdown()
        eserver.shutdown()
        traffic.join(timeout=5)
        alerts.join(timeout=5)


def _query(url: str, promql: str) -> tuple[str, list[Any]]:
    resp = requests.get(url + "/api/v1/query", params={"query": promql}, timeout=5)
    body = resp.json()
    if body.get("status") != "success":
        return f"{body.get('errorType')}: {body.get('error')}", []
    return "", body["data"]["result"]


@pytest.mark.prometheus
@pytest.mark.slow
@needs_prometheus
def test_every_query_returns_data_from_a_real_prometheus(live_prometheus: Live) -> None:
    url = live_prometheus.url
    queries = [(where, grafana_to_promql(q)) for where, q in all_queries()]
    assert len(queries) > 40
    pending = dict(queries)
    errors: dict[str, str] = {}
    deadline = time.monotonic() + 25
    while pending and time.monotonic() < deadline:
        for where, promql in list(pending.items()):
            error, result = _query(url, promql)
            if error:
                errors[where] = error  # a syntax error will not go away by waiting
                del pending[where]
            elif result:
                del pending[where]
        time.sleep(0.5)
    assert not errors, "queries Prometheus rejects:\n" + "\n".join(f"{w}: {e}" for w, e in errors.items())
    assert not pending, "queries without data after 25 s:\n" + "\n".join(
        f"{w}: {q}" for w, q in pending.items())
    # the data is unhealthy by design, so every alert of rules.yml is at least pending
    _, alerts = _query(url, "ALERTS")
    names = {a["metric"]["alertname"] for a in alerts}
    expected = {r["alert"] for g in yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
                for r in g["rules"] if "alert" in r}
    assert names == expected
    # alerts without `for:` fire at once and go through the shipped Alertmanager routing
    rec = live_prometheus.receiver
    if rec is None:
        return
    deadline = time.monotonic() + 20
    want = {"/alertmanager", "/am-slack"}
    while time.monotonic() < deadline and not want <= {r.path for r in rec.requests}:
        time.sleep(0.5)
    hooks = [r.json() for r in rec.requests if r.path == "/alertmanager"]
    assert hooks, f"no webhook from Alertmanager in 20 s; got {[r.path for r in rec.requests]}"
    firing = {a["labels"]["alertname"] for h in hooks for a in h["alerts"] if a["status"] == "firing"}
    assert "MlopsAlertDeliveryFailing" in firing
    note = next(a for h in hooks for a in h["alerts"]
                if a["labels"]["alertname"] == "MlopsAlertDeliveryFailing")
    assert note["labels"]["sink"] == "webhook" and "failed to deliver" in note["annotations"]["summary"]
    slack = [r.json() for r in rec.requests if r.path == "/am-slack"]
    assert any("MlopsAlertDeliveryFailing" in a["title"] for m in slack for a in m["attachments"])


AMTOOL = shutil.which("amtool")


@pytest.mark.prometheus
@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (apt-get install prometheus-alertmanager)")
def test_alertmanager_config_checks_and_routes_every_rule() -> None:
    cfg = REPO_ROOT / "docs" / "operations" / "alertmanager" / "alertmanager.yml"
    out = subprocess.run([str(AMTOOL), "check-config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    expected = {"critical": "pagerduty,slack", "error": "slack", "warning": "slack"}
    cases: dict[tuple[str, str], str] = {}  # one amtool call per distinct route, not per rule
    for group in yaml.safe_load((PROM / "rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                sev = rule["labels"]["severity"]
                special = rule["alert"] == "MlopsAlertDeliveryFailing"
                cases.setdefault((sev, rule["alert"] if special else ""), rule["alert"])
    assert {sev for sev, _ in cases} == set(expected)
    for (sev, _), alert in cases.items():
        got = subprocess.run([str(AMTOOL), "config", "routes", "test", f"--config.file={cfg}",
                              f"severity={sev}", f"alertname={alert}"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        want = "mlops-webhook,slack" if alert == "MlopsAlertDeliveryFailing" else expected[sev]
        assert got == want, f"{alert} ({sev}) routes to {got}, expected {want}"
