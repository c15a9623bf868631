"""``mlops-actions exporter``: serve monitoring results on /metrics, or write a textfile."""

from __future__ import annotations

import argparse
import csv
import sys
import threading
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from mlops_actions.config.loader import load_repo
from mlops_actions.config.specs import ModelSpec
from mlops_actions.errors import ConfigError
from mlops_actions.monitoring.exporter import (
    Snapshot,
    export_results,
    load_results,
    serve_metrics,
    write_textfile,
)
from mlops_actions.monitoring.metrics import monitoring_metrics, process_metrics

ORDER = 72


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "exporter", help="export monitoring results as Prometheus metrics (/metrics or a textfile)",
        description="Export monitoring results (accuracy, drift, prediction drift...) as the gauges "
        "listed in docs/metrics.md: serve them on /metrics (127.0.0.1 by default), or write "
        "node-exporter's textfile format atomically. The results file is re-read every --interval.")
    p.add_argument("--env", required=True, help="environment whose results to export")
    p.add_argument("--results", required=True, metavar="PATH",
                   help="JSON results: a list of {model, version, environment, metrics, feature_drift, "
                   "dataset_drift, prediction_drift, samples} (see docs/alerting.md)")
    p.add_argument("--port", type=int, help="serve /metrics on this port")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--textfile", metavar="PATH.prom", help="write the exposition format to this file")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between refreshes (default 60)")
    p.add_argument("--once", action="store_true", help="export once and exit (textfile from cron)")
    p.set_defaults(func=run)


def _csv_columns(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def declared_features(spec: ModelSpec, model_dir: Path) -> list[str] | None:
    """The features model.yaml declares: drift.features, else data.features, else the
    test data's columns but the label (CSV header or Parquet schema); None if unknown."""
    if spec.monitoring.drift.features:
        return list(spec.monitoring.drift.features)
    if spec.data.features:
        return list(spec.data.features)
    test = model_dir / spec.data.test
    try:
        if test.suffix == ".csv":
            cols = _csv_columns(test)
        elif test.suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            cols = list(pq.read_schema(test).names)
        else:
            return None
    except OSError:
        return None
    return [c for c in cols if c != spec.data.label]


def run(args: argparse.Namespace) -> int:
    if args.port is None and args.textfile is None:
        raise ConfigError("exporter needs --port or --textfile (or both)",
                          hint="--port 9109 serves /metrics; --textfile /var/lib/node_exporter/mlops.prom")
    if args.interval <= 0:
        raise ConfigError(f"--interval must be > 0, got {args.interval}")
    if args.once and args.textfile is None:
        raise ConfigError("--once needs --textfile", hint="--once writes the textfile one time and exits")
    repo = load_repo(args.repo)
    known_envs = {e.name or k for k, e in repo.environments.items()}
    if known_envs and args.env not in known_envs:
        raise ConfigError(f"unknown environment {args.env!r}",
                          hint=f"environments in {args.repo}/environments: {', '.join(sorted(known_envs))}")
    features: dict[str, list[str]] | None = None
    if repo.models:
        features = {}
        for key, spec in repo.models.items():
            declared = declared_features(spec, repo.model_dir(key))
            if declared is not None:
                features[key] = features[spec.name] = declared
    served = CollectorRegistry()
    process_metrics(served)
    snapshot = Snapshot()
    served.register(snapshot)

    last_dropped: list[tuple[str, ...]] = [()]

    def refresh() -> None:
        results = [r for r in load_results(args.results) if r.environment == args.env]
        registry = CollectorRegistry()  # built aside, then swapped in whole
        summary = export_results(monitoring_metrics(registry), results, declared_features=features)
        if summary.dropped != last_dropped[0]:  # say it once, not every interval
            for line in summary.dropped:
                print(f"warning: not exported: {line}", file=sys.stderr, flush=True)
            last_dropped[0] = summary.dropped
        snapshot.set(registry)
        if args.textfile:
            write_textfile(registry, args.textfile)

    refresh()
    if args.once:
        print(f"exported results of {args.env} from {args.results}")
        return 0
    server = None
    if args.port is not None:
        server, _ = serve_metrics(served, args.port, args.host)
        print(f"serving /metrics on http://{args.host}:{server.server_port}/metrics", flush=True)
    stop = threading.Event()
    try:
        while not stop.wait(args.interval):
            try:
                refresh()
            except ConfigError as err:  # a half-written results file: keep the last good values
                print(f"warning: results not refreshed: {err}", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.shutdown()
    return 0
