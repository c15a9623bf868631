"""A small JSON-over-HTTP helper for the sinks: timeouts, bounded retries, no secrets in errors."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from mlops_actions.monitoring.alerts.interface import AlertError

__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "json_default", "redact_url", "request_json"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
_RETRY_STATUS = {429, 500, 502, 503, 504}


def json_default(obj: Any) -> Any:
    """JSON for what monitoring code puts in details: numpy scalars and arrays, sets, the rest as text."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/secret`` -> ``https://hooks.slack.com/...``:
    webhook URLs are secrets, so errors name only the scheme and host."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # never the user:password of https://user:pw@host/
    return f"{parts.scheme}://{host}/..." if host else "<url>"


def request_json(method: str, url: str, body: Any = None, *, what: str,
                 headers: Mapping[str, str] | None = None, data: bytes | None = None,
                 ok: tuple[int, ...] = (200, 201, 202, 204), timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, backoff: float = 0.5,
                 session: requests.Session | None = None,
                 secrets: tuple[str, ...] = ()) -> requests.Response:
    """Send ``body`` as JSON (or ``data`` as is); retry connection errors, 429 and 5xx
    up to ``retries`` times with exponential backoff (honouring ``Retry-After`` up to
    5 s). Raise :class:`AlertError` naming ``what`` and the host, never the full URL;
    any of ``secrets`` echoed in a response body is masked. The error is ``transient``
    when the endpoint was unreachable or kept answering 429/5xx."""
    payload = data if data is not None else json.dumps(body, default=json_default).encode()
    hdrs = {"Content-Type": "application/json", "User-Agent": "mlops-actions"}
    hdrs.update(headers or {})
    http = session or requests
    last = ""
    transient = True
    wait = 0.0
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(wait or min(backoff * 2 ** (attempt - 1), 5.0))
        wait = 0.0
        try:
            resp = http.request(method, url, data=payload, headers=hdrs, timeout=timeout)
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}"
            continue
        if resp.status_code in ok:
            return resp
        last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        if resp.status_code not in _RETRY_STATUS:
            transient = False
            break
        retry_after = resp.headers.get("Retry-After", "")
        if retry_after.isdigit():
            wait = min(float(retry_after), 5.0)
    for secret in secrets:
        if secret:
            last = last.replace(secret, "***")
    err = AlertError(
        f"{what}: {method} {redact_url(url)} failed: {last}",
        hint="check the endpoint and credentials in the environment variables the alert spec names",
    )
    err.transient = transient
    raise err
