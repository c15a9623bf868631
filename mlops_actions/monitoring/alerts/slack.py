"""Slack incoming webhook: ``{"text": ..., "blocks": [...]}``.

``text`` is required by Slack (it is the notification and the fallback when
blocks cannot render); blocks carry the details as a section with fields.
"""

from __future__ import annotations

from typing import Any

from mlops_actions.monitoring.alerts._http import DEFAULT_TIMEOUT, request_json
from mlops_actions.monitoring.alerts.interface import Alert, AlertStatus

__all__ = ["SlackSink", "slack_payload"]

_EMOJI = {"critical": ":red_circle:", "error": ":large_orange_circle:",
          "warning": ":warning:", "info": ":information_source:"}
_MAX_FIELDS = 10  # Slack's limit of fields per section block
_MAX_TEXT = 3000  # Slack's limit of a text object
_MAX_LISTED = 10  # findings listed in a grouped alert; the rest are counted


def findings_text(findings: list[dict[str, Any]]) -> str:
    """A grouped alert's findings as Slack mrkdwn bullets, worst first, within one text object."""
    lines = [f"• *{f.get('check')}* ({f.get('severity')}): {f.get('message', '')}" for f in findings]
    shown = lines[:_MAX_LISTED]
    if len(lines) > len(shown):
        shown.append(f"… and {len(lines) - len(shown)} more")
    text = "\n".join(shown)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 1] + "…"


def slack_payload(alert: Alert) -> dict[str, Any]:
    if alert.status is AlertStatus.RESOLVED:
        head = f":white_check_mark: RESOLVED: {alert.summary}"
    else:
        head = f"{_EMOJI[alert.severity.value]} {alert.severity.value.upper()}: {alert.summary}"
    head = head[:_MAX_TEXT]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
    findings = alert.details.get("findings")
    if isinstance(findings, list) and findings and alert.status is AlertStatus.FIRING:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": findings_text(findings)}})
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in
              [("model", alert.model), ("environment", alert.environment), *alert.details.items()]
              if v != "" and k != "findings"]
    if fields:
        blocks.append({"type": "section", "fields": fields[:_MAX_FIELDS]})
    link = f" · <{alert.url}|details>" if alert.url else ""
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"key `{alert.key}` · {alert.source}{link}"[:_MAX_TEXT]}]})
    return {"text": head, "blocks": blocks}


class SlackSink:
    type = "slack"

    def __init__(self, webhook_url: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = 3,
                 backoff: float = 0.5) -> None:
        self._url = webhook_url
        self._timeout, self._retries, self._backoff = timeout, retries, backoff

    def __repr__(self) -> str:  # never show the webhook URL: it is the secret
        return "SlackSink(webhook_url=***)"

    def send(self, alert: Alert, ref: str | None = None) -> str | None:
        request_json("POST", self._url, slack_payload(alert), what="slack alert",
                     ok=(200,), timeout=self._timeout, retries=self._retries, backoff=self._backoff,
                     secrets=(self._url,))
        return None
