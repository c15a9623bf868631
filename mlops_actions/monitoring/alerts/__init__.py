"""Alert sinks (Slack, PagerDuty, signed webhook, GitHub issue), the AlertManager
(dedup, resolve, persisted state) and the ``notify`` hook the monitor calls."""

from __future__ import annotations

from mlops_actions.monitoring.alerts.factory import SINK_TYPES, make_sink, parse_alert_spec
from mlops_actions.monitoring.alerts.interface import Alert, AlertError, AlertSink, AlertStatus, Severity
from mlops_actions.monitoring.alerts.manager import AlertManager, Delivery, NotifyReport
from mlops_actions.monitoring.alerts.memory import MemorySink
from mlops_actions.monitoring.alerts.notify import Finding, finding_to_alert, notify

__all__ = [
    "SINK_TYPES",
    "Alert",
    "AlertError",
    "AlertManager",
    "AlertSink",
    "AlertStatus",
    "Delivery",
    "Finding",
    "MemorySink",
    "NotifyReport",
    "Severity",
    "finding_to_alert",
    "make_sink",
    "notify",
    "parse_alert_spec",
]
