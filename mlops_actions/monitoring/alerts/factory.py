"""Build sinks from ``monitoring.alerts`` specs (``config/specs.py``'s AlertSpec).

Secrets come from environment variables the spec names, never from git; an
unknown type or a missing variable is an error naming what is valid and what to set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, assert_never

import pydantic

from mlops_actions.config.specs import (
    AlertSpec,
    GitHubIssueAlert,
    PagerDutyAlert,
    SlackAlert,
    WebhookAlert,
)
from mlops_actions.errors import ConfigError
from mlops_actions.monitoring.alerts.github_issue import API_URL, GitHubIssueSink
from mlops_actions.monitoring.alerts.interface import AlertSink
from mlops_actions.monitoring.alerts.pagerduty import EVENTS_URL, PagerDutySink
from mlops_actions.monitoring.alerts.slack import SlackSink
from mlops_actions.monitoring.alerts.webhook import WebhookSink

__all__ = ["SINK_TYPES", "make_sink", "parse_alert_spec"]

SINK_TYPES: tuple[str, ...] = ("slack", "pagerduty", "webhook", "github_issue")
_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(AlertSpec)


def parse_alert_spec(raw: Mapping[str, Any] | Any) -> Any:
    """A pydantic AlertSpec from a mapping (or the spec itself); bad input -> ConfigError."""
    if isinstance(raw, SlackAlert | PagerDutyAlert | WebhookAlert | GitHubIssueAlert):
        return raw
    if isinstance(raw, Mapping) and raw.get("type") not in SINK_TYPES:
        raise ConfigError(f"unknown alert type {raw.get('type')!r}",
                          hint=f"valid types: {', '.join(SINK_TYPES)}")
    try:
        return _ADAPTER.validate_python(raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"bad alert spec: {exc.errors()[0]['msg']} at "
                          f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])}",
                          hint=f"valid types: {', '.join(SINK_TYPES)}") from exc


DEFAULT_WEBHOOK_SECRET_ENV = "MLOPS_ALERT_WEBHOOK_SECRET"  # noqa: S105 - a variable name: signs webhooks when set


def _need(env: Mapping[str, str], name: str, what: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{what}: environment variable {name} is not set",
                          hint=f"set {name} (a repository secret passed through env:) or remove the alert")
    return value


def _full_client(repository: str, token: str, api_url: str) -> Any:
    """The toolkit's full GitHub REST client when it is installed (rate limits, pagination),
    else None and the sink's own minimal client is used."""
    try:
        from mlops_actions.github.rest import GitHubClient  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return GitHubClient(repository, token, api_url=api_url, timeout=10.0, max_retries=3, max_wait=30.0)


def make_sink(spec: Any, env: Mapping[str, str] | None = None, **options: Any) -> AlertSink:
    """The sink for one AlertSpec (or a mapping validated as one).

    ``options`` go to the sink (``timeout``, ``retries``, ``backoff``). Endpoints can be
    redirected by environment: ``MLOPS_PAGERDUTY_EVENTS_URL`` (e.g. the EU service),
    ``GITHUB_API_URL`` (GitHub Enterprise; set by Actions).
    """
    env = os.environ if env is None else env
    spec = parse_alert_spec(spec)
    if isinstance(spec, SlackAlert):
        return SlackSink(_need(env, spec.webhook_url_env, "slack alert"), **options)
    if isinstance(spec, PagerDutyAlert):
        return PagerDutySink(_need(env, spec.routing_key_env, "pagerduty alert"), severity=spec.severity,
                             url=env.get("MLOPS_PAGERDUTY_EVENTS_URL") or EVENTS_URL, **options)
    if isinstance(spec, WebhookAlert):
        url = spec.url if spec.url is not None else _need(env, spec.url_env, "webhook alert")
        secret = _need(env, spec.secret_env, "webhook alert") if spec.secret_env \
            else env.get(DEFAULT_WEBHOOK_SECRET_ENV) or None
        return WebhookSink(url, secret=secret, **options)
    if isinstance(spec, GitHubIssueAlert):
        token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or ""
        if not token:
            raise ConfigError("github_issue alert: neither GITHUB_TOKEN nor GH_TOKEN is set",
                              hint="pass secrets.GITHUB_TOKEN through env: with permissions issues: write")
        repository = _need(env, "GITHUB_REPOSITORY", "github_issue alert")
        api_url = env.get("GITHUB_API_URL") or API_URL
        return GitHubIssueSink(repository, token, labels=spec.labels, api_url=api_url,
                               client=_full_client(repository, token, api_url), **options)
    assert_never(spec)
