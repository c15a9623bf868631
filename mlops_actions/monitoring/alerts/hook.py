"""The alerting side of ``mlops-actions monitor``: its findings go to the sinks each
model.yaml declares (``monitoring.alerts``), with dedup and resolve.

The monitor command calls every function registered with
``mlops_actions.commands.monitor.register_alert_hook`` with ``(findings, context)``; the
``alerts`` command module registers :func:`monitor_alert_hook` there on import (the CLI edge
wires the layers together: this module never imports a command), passing the function that
shows a warning (stderr, and an annotation inside GitHub Actions).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops_actions.errors import MlopsActionsError
from mlops_actions.monitoring.alerts.manager import NotifyReport
from mlops_actions.monitoring.alerts.notify import _get, notify

__all__ = ["STATE_ENV", "monitor_alert_hook", "state_path"]

#: Environment variable overriding where the alert state lives (default: <repo>/.mlops/alerts.json).
STATE_ENV = "MLOPS_ALERT_STATE"


def state_path(repo_root: str | Path) -> Path:
    return Path(os.environ.get(STATE_ENV) or Path(repo_root) / ".mlops" / "alerts.json")


def _print_warning(message: str) -> None:
    print(f"warning: alerts: {message}", file=sys.stderr, flush=True)


def monitor_alert_hook(findings: Sequence[Any], context: Any, *,
                       warn: Callable[[str], None] = _print_warning) -> NotifyReport:
    """Send one monitor run's findings, grouped: one alert per model and environment listing
    its failing checks worst first (sent again only when that list changes), resolved once
    when none fails any more; an open alert of a monitored model that no finding mentions any
    more resolves. Per-column data drift findings are left out of the list (the dataset
    finding names the drifted columns). Never raises: a problem is a ``warn(message)``."""
    env_name = str(_get(context, "environment", default=""))
    repo = _get(context, "repo")
    models = getattr(repo, "models", {}) or {}
    by_name = {**models, **{spec.name: spec for spec in models.values()}}
    usable = [f for f in findings
              if not (_get(f, "kind") == "data_drift" and _get(f, "name") not in (None, "", "*"))]
    monitored = {str(_get(h, "model", default="")) for h in (_get(context, "healths", default=()) or ())}
    monitored |= {str(_get(f, "model", default="")) for f in usable}
    total = NotifyReport()
    for model in sorted(m for m in monitored if m):
        spec = by_name.get(model)
        if spec is None or not spec.monitoring.alerts:
            continue  # no sink declared: nothing to send, no state to keep
        try:
            report = notify([f for f in usable if str(_get(f, "model", default="")) == model],
                            spec.monitoring.alerts, state_path(getattr(repo, "root", ".")),
                            resolve_missing=[f"{model}/{env_name}/"], group=True)
        except MlopsActionsError as exc:
            warn(f"{model}: {exc}")
            continue
        for err in report.config_errors:
            warn(f"{model}: sink not configured: {err}")
        for d in report.failures:
            warn(f"{model}: {d.sink} could not deliver {d.status.value} {d.key}: {d.error}")
        sent = sum(1 for d in report.deliveries if d.ok)
        if sent or report.suppressed:
            print(f"alerts: {model}: {sent} notification(s) sent, {len(report.suppressed)} already open, "
                  f"{len(report.firing)} firing", file=sys.stderr, flush=True)
        total = total.merged(report)
    return total

