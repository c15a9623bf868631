"""``mlops-actions alerts``: test the configured alert sinks, list and resolve open alerts."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops_actions.config.loader import load_repo
from mlops_actions.config.specs import ModelSpec
from mlops_actions.errors import EXIT_OK, ConfigError, ExternalError
from mlops_actions.github import actions
from mlops_actions.monitoring.alerts import Alert, AlertManager, Severity, make_sink, notify
from mlops_actions.monitoring.alerts.hook import monitor_alert_hook, state_path
from mlops_actions.monitoring.alerts.interface import AlertSink
from mlops_actions.monitoring.alerts.manager import NotifyReport, sink_ids

ORDER = 74
DEFAULT_STATE = ".mlops/alerts.json"

STATE_HELP = f"alert state file (default: $MLOPS_ALERT_STATE, else <repo>/{DEFAULT_STATE})"



def _warn(message: str) -> None:
    """An alerting problem, for people (stderr) and, inside Actions, as an annotation."""
    print(f"warning: alerts: {message}", file=sys.stderr, flush=True)
    if actions.in_actions():
        actions.annotate("warning", message, title="mlops-actions alerts")


def alert_hook(findings: Sequence[Any], context: Any) -> NotifyReport:
    """The monitor command's alert hook: :func:`monitor_alert_hook` warning at the CLI edge."""
    return monitor_alert_hook(findings, context, warn=_warn)


def register_with_monitor() -> bool:
    """Register :func:`alert_hook` with the monitor command, once; False when the monitor
    command is not installed."""
    try:
        from mlops_actions.commands import monitor  # type: ignore[attr-defined,unused-ignore]
    except Exception:  # not installed, or broken: the rest of the CLI must still work
        return False
    hooks = getattr(monitor, "ALERT_HOOKS", None)
    register = getattr(monitor, "register_alert_hook", None)
    if hooks is None or register is None:
        return False
    if alert_hook not in hooks:
        register(alert_hook)
    return True


# `mlops-actions monitor` sends its findings through the declared sinks
register_with_monitor()


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "alerts", help="test alert sinks; send, list or resolve alerts",
        description="Work with the alerts declared in models/<name>/model.yaml (monitoring.alerts).")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    t = asub.add_parser("test", help="send a test alert (fire, then resolve) through a model's sinks")
    t.add_argument("--model", required=True, help="model directory under models/")
    t.add_argument("--env", default="test", help="environment named in the test alert (default: test)")
    t.add_argument("--no-resolve", action="store_true", help="leave the test alert open")
    t.set_defaults(func=run_test)
    n = asub.add_parser("notify", help="fire failed findings and resolve passed ones from a JSON file")
    n.add_argument("findings", help="JSON: a list of {model, environment, check, verdict, message, "
                   "version?, severity?, details?}, or {\"findings\": [...]}")
    n.add_argument("--state", default=None, help=STATE_HELP)
    n.add_argument("--group", action="store_true",
                   help="one alert per model and environment listing its failing checks (as monitor "
                        "sends), instead of one per check")
    n.set_defaults(func=run_notify)
    ls = asub.add_parser("list", help="list alerts still open in the state file")
    ls.add_argument("--state", default=None, help=STATE_HELP)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)
    r = asub.add_parser("resolve", help="resolve an open alert by key through a model's sinks")
    r.add_argument("key", help="alert key, e.g. churn/production (grouped) or churn/production/accuracy")
    r.add_argument("--model", required=True, help="model directory under models/ (whose sinks to use)")
    r.add_argument("--state", default=None, help=STATE_HELP)
    r.set_defaults(func=run_resolve)


def _state(args: argparse.Namespace) -> Path:
    return Path(args.state) if args.state else state_path(args.repo)


def _model(args: argparse.Namespace) -> ModelSpec:
    repo = load_repo(args.repo)
    if args.model not in repo.models:
        raise ConfigError(f"no model {args.model!r} under {Path(args.repo) / 'models'}",
                          hint=f"known models: {', '.join(sorted(repo.models)) or '(none)'}")
    spec = repo.models[args.model]
    if not spec.monitoring.alerts:
        raise ConfigError(f"models/{args.model}/model.yaml declares no monitoring.alerts",
                          hint="add e.g. `monitoring: {alerts: [{type: slack}]}`; see docs/alerting.md")
    return spec


def _sinks(spec: ModelSpec) -> dict[str, AlertSink]:
    alerts = spec.monitoring.alerts
    return {sid: make_sink(a) for sid, a in zip(sink_ids([a.type for a in alerts]), alerts, strict=True)}


def _print(report: NotifyReport) -> None:
    for d in report.deliveries:
        print(f"{'ok' if d.ok else 'FAILED'}: {d.sink} {d.status.value} {d.key}"
              + (f": {d.error}" if d.error else ""))


def run_test(args: argparse.Namespace) -> int:
    spec = _model(args)
    sinks = _sinks(spec)
    alert = Alert(key=f"{args.model}/{args.env}/alert-test-{int(time.time())}", severity=Severity.INFO,
                  summary=f"test alert from mlops-actions for {args.model}: sinks work, ignore it",
                  model=args.model, environment=args.env, details={"check": "alert-test"})
    report = AlertManager(sinks, Path(args.repo) / ".mlops" / "alerts-test.json").fire([alert])
    if not args.no_resolve:
        report = report.merged(
            AlertManager(sinks, Path(args.repo) / ".mlops" / "alerts-test.json").resolve([alert.key]))
    _print(report)
    if report.failures:
        raise ExternalError(f"{len(report.failures)} notification(s) failed",
                            hint="check each sink's endpoint and secret; see the lines above")
    return EXIT_OK


def run_notify(args: argparse.Namespace) -> int:
    """Findings of each model go through the sinks its model.yaml declares."""
    try:
        data = json.loads(Path(args.findings).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"findings file {args.findings}: {exc}",
                          hint="expected a JSON list of findings; see docs/alerting.md") from exc
    findings = data.get("findings") if isinstance(data, dict) else data
    if not isinstance(findings, list) or not all(isinstance(f, dict) for f in findings):
        raise ConfigError(f"findings file {args.findings}: expected a list of objects")
    repo = load_repo(args.repo)
    by_name = {**repo.models, **{v.name: v for v in repo.models.values()}}
    unknown = sorted({str(f.get("model")) for f in findings} - set(by_name))
    if unknown:
        raise ConfigError(f"findings name models not under {Path(args.repo) / 'models'}: "
                          f"{', '.join(unknown)}",
                          hint=f"known models: {', '.join(sorted(repo.models)) or '(none)'}")
    report = NotifyReport()
    for name in sorted({str(f["model"]) for f in findings}):
        spec = by_name[name]
        report = report.merged(notify([f for f in findings if f["model"] == name], spec.monitoring.alerts,
                                      _state(args), group=args.group))
    _print(report)
    for key in report.suppressed:
        print(f"already notified: {key}")
    for err in report.config_errors:
        print(f"not configured: {err}", file=sys.stderr)
    if report.failures:
        raise ExternalError(f"{len(report.failures)} notification(s) failed",
                            hint="they are retried on the next run")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    path = _state(args)
    if not path.exists():
        print(f"no alert state at {path}: nothing open" if not args.json else "{}")
        return EXIT_OK
    open_alerts = AlertManager({}, path).firing()
    if args.json:
        print(json.dumps(open_alerts, indent=2, sort_keys=True))
        return EXIT_OK
    if not open_alerts:
        print("no open alerts")
    for key, e in sorted(open_alerts.items()):
        sinks = ", ".join(f"{s}:{v['status']}" for s, v in sorted(e["sinks"].items())) or "none delivered"
        print(f"{e['status']:8} {e['severity']:8} {key}  {e['summary']}  [{sinks}]")
    return EXIT_OK


def run_resolve(args: argparse.Namespace) -> int:
    path = _state(args)
    manager = AlertManager(_sinks(_model(args)), path)
    if args.key not in manager.firing():
        raise ConfigError(f"no open alert {args.key!r} in {path}",
                          hint="`mlops-actions alerts list` shows the open keys")
    report = manager.resolve([args.key], f"{args.key} resolved by hand")
    _print(report)
    if report.failures:
        raise ExternalError(f"{len(report.failures)} notification(s) failed",
                            hint="they are retried on the next monitor run")
    return EXIT_OK
