"""The AlertSink port: one :class:`Alert` value, one narrow protocol, one error.

A sink delivers one notification about one alert: fired or resolved. Dedup,
resolve and persistence are the :class:`~mlops_actions.monitoring.alerts.manager.AlertManager`'s
job, so a sink stays a thin translation to one service's wire format.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from mlops_actions.errors import MonitoringError

__all__ = ["Alert", "AlertError", "AlertSink", "AlertStatus", "Severity"]


class AlertStatus(StrEnum):
    """Where an alert is in its life; persisted in the alert state file."""

    FIRING = "firing"
    """The condition holds now."""
    RESOLVED = "resolved"
    """The condition held before and no longer does."""


class Severity(StrEnum):
    """PagerDuty's four severities; the other sinks map them."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Alert:
    """One alert. ``key`` identifies it across runs: the same key firing twice is
    one notification, and a resolve closes what that key opened."""

    key: str
    severity: Severity
    summary: str
    status: AlertStatus = AlertStatus.FIRING
    details: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""
    environment: str = ""
    source: str = "mlops-actions"
    timestamp: float = field(default_factory=time.time)
    url: str = ""  # where to look: e.g. the workflow run that found it
    #: what the alert says, for dedup: a grouped alert whose list of failing checks changed is
    #: sent again (an update), one whose list is unchanged is not ("" = key and severity only)
    fingerprint: str = ""

    def resolved(self, summary: str | None = None) -> Alert:
        """The same alert, resolved."""
        return Alert(key=self.key, severity=self.severity, summary=summary or self.summary,
                     status=AlertStatus.RESOLVED, details=self.details, model=self.model,
                     environment=self.environment, source=self.source, timestamp=time.time(),
                     url=self.url, fingerprint=self.fingerprint)


class AlertError(MonitoringError):
    """An alert sink could not deliver (after its bounded retries) or is misconfigured.

    ``transient``: the service was unreachable or kept failing (429/5xx), so the
    manager stops calling that sink for the rest of the run instead of waiting on
    it once per alert."""

    transient: bool = False


class AlertSink(Protocol):
    """Delivers notifications to one service."""

    type: str
    """The ``type`` of the AlertSpec it was made from: slack, pagerduty, webhook, github_issue."""

    def send(self, alert: Alert, ref: str | None = None) -> str | None:
        """Deliver ``alert``; raise :class:`AlertError` on failure.

        ``ref`` is what this sink returned when the same key last fired (for
        example a GitHub issue number), or None; the return value is stored by
        the manager and handed back on the next update or resolve.
        """
        ...
