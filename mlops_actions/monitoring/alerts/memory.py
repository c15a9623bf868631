"""An in-memory AlertSink for tests: records what it was told, can be made to fail."""

from __future__ import annotations

from mlops_actions.monitoring.alerts.interface import Alert, AlertError

__all__ = ["MemorySink"]


class MemorySink:
    def __init__(self, type: str = "memory", *, fail: bool = False) -> None:
        self.type = type
        self.fail = fail
        self.sent: list[tuple[str, str, str | None]] = []  # (key, status, ref it was given)
        self.alerts: list[Alert] = []

    def send(self, alert: Alert, ref: str | None = None) -> str | None:
        if self.fail:
            raise AlertError(f"{self.type} is down")
        self.sent.append((alert.key, alert.status.value, ref))
        self.alerts.append(alert)
        return f"ref-{alert.key}"
