"""Cost of the metrics helpers on the gateway's hot path, and of export/notify.

Peer: raw prometheus-client calls doing the same work (labels().inc(), observe()),
in the same run, so the ratio is the overhead of GatewayMetrics.observe_request.
Not run by the test suite: ``.venv/bin/python benchmarks/bench_metrics.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from mlops_actions.monitoring.alerts import Alert, AlertManager, MemorySink, Severity
from mlops_actions.monitoring.exporter import FeatureDrift, MonitoringResult, export_results
from mlops_actions.monitoring.metrics import gateway_metrics, monitoring_metrics, status_class

N = 200_000


def ours() -> float:
    g = gateway_metrics(CollectorRegistry())
    start = time.perf_counter()
    for i in range(N):
        g.observe_request(model="churn", version="1.3.0", environment="production", variant="stable",
                          code=200 if i % 50 else 503, seconds=0.004)
    return time.perf_counter() - start


def ours_route() -> float:
    r = gateway_metrics(CollectorRegistry()).route(model="churn", version="1.3.0", environment="production",
                                                   variant="stable")
    start = time.perf_counter()
    for i in range(N):
        r.observe(200 if i % 50 else 503, 0.004)
    return time.perf_counter() - start


def peer() -> float:
    g = gateway_metrics(CollectorRegistry())
    start = time.perf_counter()
    for i in range(N):
        code = 200 if i % 50 else 503
        g.requests_total.labels("churn", "1.3.0", "production", "stable", status_class(code)).inc()
        g.request_duration_seconds.labels("churn", "1.3.0", "production", "stable").observe(0.004)
        if code >= 500:
            g.request_errors_total.labels("churn", "1.3.0", "production", "stable").inc()
    return time.perf_counter() - start


def main() -> None:
    runs = [(ours(), peer(), ours_route()) for _ in range(3)]  # interleaved, best of 3: shared machine
    a, b, c = (min(r[i] for r in runs) for i in range(3))
    print(f"observe_request: {N / a:,.0f} calls/s ({a / N * 1e6:.2f} us/call); "
          f"raw prometheus-client: {N / b:,.0f} calls/s; time ratio ours/raw = {a / b:.2f}")
    print(f"RouteMetrics.observe (children bound once): {N / c:,.0f} calls/s ({c / N * 1e6:.2f} us/call); "
          f"speed-up over raw labels() per call = {b / c:.1f}x")
    reg = CollectorRegistry()
    m = monitoring_metrics(reg)
    results = [MonitoringResult(f"model{k}", "1.0.0", "production", metrics={"accuracy": 0.9, "f1": 0.8},
                                feature_drift=tuple(FeatureDrift(f"f{j}", 0.01, "ks", j % 3 == 0)
                                                    for j in range(50)), dataset_drift=False,
                                prediction_drift=0.05, samples=1000) for k in range(20)]
    start = time.perf_counter()
    for _ in range(20):
        export_results(m, results)
    t = (time.perf_counter() - start) / 20
    start = time.perf_counter()
    body = generate_latest(reg)
    s = time.perf_counter() - start
    print(f"export_results 20 models x 50 features: {t * 1000:.1f} ms; "
          f"scrape body {len(body) / 1024:.0f} KiB "
          f"rendered in {s * 1000:.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        mgr = AlertManager([MemorySink("slack"), MemorySink("webhook")], Path(tmp) / "alerts.json")
        alerts = [Alert(f"model{k}/production/accuracy", Severity.ERROR, "bad") for k in range(100)]
        start = time.perf_counter()
        mgr.fire(alerts)
        first = time.perf_counter() - start
        start = time.perf_counter()
        mgr.fire(alerts)
        again = time.perf_counter() - start
    print(f"AlertManager 100 alerts x 2 sinks: first run {first * 1000:.1f} ms, "
          f"deduplicated re-run {again * 1000:.1f} ms (state file round trip included)")


if __name__ == "__main__":
    main()
