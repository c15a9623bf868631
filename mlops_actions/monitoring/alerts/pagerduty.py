"""PagerDuty Events API v2: ``POST /v2/enqueue``, answered with 202.

Trigger and resolve share ``dedup_key`` (the alert key), so PagerDuty itself
merges repeated triggers into one incident and a resolve closes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlops_actions.monitoring.alerts._http import DEFAULT_TIMEOUT, request_json
from mlops_actions.monitoring.alerts.interface import Alert, AlertStatus

__all__ = ["EVENTS_URL", "PagerDutySink", "pagerduty_payload"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


def pagerduty_payload(alert: Alert, routing_key: str, severity: str | None = None) -> dict[str, Any]:
    dedup_key = alert.key[:255]
    if alert.status is AlertStatus.RESOLVED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    payload: dict[str, Any] = {
        "summary": alert.summary[:1024],
        "source": alert.source or "mlops-actions",
        "severity": severity or alert.severity.value,
        "timestamp": datetime.fromtimestamp(alert.timestamp, tz=UTC).isoformat(timespec="seconds"),
        "custom_details": {"model": alert.model, "environment": alert.environment,
                           **{k: v for k, v in alert.details.items()}},
    }
    if alert.model:
        payload["component"] = alert.model
    if alert.environment:
        payload["group"] = alert.environment
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup_key,
                             "payload": payload, "client": "mlops-actions"}
    if alert.url:
        event["client_url"] = alert.url
        event["links"] = [{"href": alert.url, "text": "details"}]
    return event


class PagerDutySink:
    type = "pagerduty"

    def __init__(self, routing_key: str, *, severity: str | None = None, url: str = EVENTS_URL,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = 3, backoff: float = 0.5) -> None:
        self._key, self._severity, self._url = routing_key, severity, url
        self._timeout, self._retries, self._backoff = timeout, retries, backoff

    def __repr__(self) -> str:
        return f"PagerDutySink(routing_key=***, url={self._url!r})"

    def send(self, alert: Alert, ref: str | None = None) -> str | None:
        resp = request_json("POST", self._url, pagerduty_payload(alert, self._key, self._severity),
                            what="pagerduty alert", ok=(200, 202), timeout=self._timeout,
                            retries=self._retries, backoff=self._backoff, secrets=(self._key,))
        try:
            return str(resp.json().get("dedup_key") or alert.key)
        except ValueError:
            return alert.key
