"""A small JSON-over-HTTP helper for the sinks: timeouts, bounded retries (the shared policy of
:mod:`mlops_actions.retry`), no secrets in errors."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from mlops_actions.monitoring.alerts.interface import AlertError
from mlops_actions.retry import RetryPolicy, TryAgain

__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "MAX_WAIT", "json_default", "policy", "redact_url",
           "request_json"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
MAX_WAIT = 5.0  # seconds: the longest backoff or Retry-After a sink waits
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
    final: list[str] = []  # set when an answer is final (not 429/5xx): not transient

    def attempt(n: int) -> requests.Response:
        try:
            resp = http.request(method, url, data=payload, headers=hdrs, timeout=timeout)
        except requests.RequestException as exc:
            raise TryAgain(f"{type(exc).__name__}") from None
        if resp.status_code in ok:
            return resp
        last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        if resp.status_code not in _RETRY_STATUS:
            final.append(last)
            raise _Final(last)
        retry_after = resp.headers.get("Retry-After", "")
        wait = float(retry_after) if retry_after.isdigit() and int(retry_after) > 0 else None
        raise TryAgain(last, retry_after=wait)

    try:
        return policy(retries, backoff).call(attempt)
    except (TryAgain, _Final) as exc:
        last = str(exc)
    for secret in secrets:
        if secret:
            last = last.replace(secret, "***")
    err = AlertError(
        f"{what}: {method} {redact_url(url)} failed: {last}",
        hint="check the endpoint and credentials in the environment variables the alert spec names",
    )
    err.transient = not final
    raise err


class _Final(Exception):
    """An answer no retry changes (4xx): the sink gives up at once."""


def policy(retries: int = DEFAULT_RETRIES, backoff: float = 0.5) -> RetryPolicy:
    """The sinks' retry policy: ``retries`` resends, backoff doubling from ``backoff`` up to
    5 s, a ``Retry-After`` honoured up to 5 s (an alert is worth little an hour late)."""
    return RetryPolicy(retries=retries, backoff=backoff, max_backoff=MAX_WAIT, retry_after_cap=MAX_WAIT,
                       sleep=lambda seconds: time.sleep(seconds))
