"""A generic JSON webhook, signed like GitHub's webhooks.

Headers: ``X-Mlops-Timestamp: <unix seconds>`` and
``X-Mlops-Signature-256: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``
with the shared secret. Signing the timestamp with the body lets a receiver
refuse replays (:func:`verify_signature` checks both).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from mlops_actions.monitoring.alerts._http import DEFAULT_TIMEOUT, json_default, request_json
from mlops_actions.monitoring.alerts.interface import Alert

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookSink", "sign", "verify_signature",
           "webhook_payload"]

SIGNATURE_HEADER = "X-Mlops-Signature-256"
TIMESTAMP_HEADER = "X-Mlops-Timestamp"


def webhook_payload(alert: Alert) -> dict[str, Any]:
    return {"key": alert.key, "status": alert.status.value, "severity": alert.severity.value,
            "summary": alert.summary, "model": alert.model, "environment": alert.environment,
            "source": alert.source, "timestamp": alert.timestamp, "url": alert.url,
            "details": dict(alert.details)}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *,
                     tolerance: float = 300.0, now: float | None = None) -> bool:
    """True when ``signature`` is ours for this body and timestamp, and the timestamp
    is within ``tolerance`` seconds of now (constant-time comparison)."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSink:
    type = "webhook"

    def __init__(self, url: str, *, secret: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = 3, backoff: float = 0.5) -> None:
        self._url, self._secret = url, secret
        self._timeout, self._retries, self._backoff = timeout, retries, backoff

    def __repr__(self) -> str:
        return f"WebhookSink(url=***, signed={self._secret is not None})"

    def send(self, alert: Alert, ref: str | None = None) -> str | None:
        body = json.dumps(webhook_payload(alert), sort_keys=True, default=json_default).encode()
        ts = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: ts}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, ts, body)
        request_json("POST", self._url, data=body, headers=headers, what="webhook alert",
                     timeout=self._timeout, retries=self._retries, backoff=self._backoff,
                     secrets=(self._url, self._secret or ""))
        return None
