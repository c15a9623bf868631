"""The hook the ``monitor`` command calls: findings in, notifications out.

A finding is anything with (attributes or mapping keys) ``model``,
``environment``, ``check`` (or ``name``), ``verdict`` (or ``status``) and
``message``; optionally ``version``, ``severity`` and ``details``.

- ``failed``: fire the alert ``<model>/<environment>/<check>``;
- ``passed``: resolve it if it fired earlier;
- ``inconclusive`` / ``error``: leave it as it is (too little data is no news).

With ``group=True`` (what the ``monitor`` hook uses) the findings of one model
in one environment make **one** alert, keyed ``<model>/<environment>``, like
Alertmanager's ``group_by: [model, environment]``: it lists the failing checks,
worst first; it is sent again only when that list (or the worst severity)
changes, and resolved once, when no check of the group fails any more. A check
that failed before and is inconclusive now stays on the list (no news is not
good news).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_actions.errors import ConfigError, MlopsActionsError
from mlops_actions.monitoring.alerts.factory import make_sink, parse_alert_spec
from mlops_actions.monitoring.alerts.interface import Alert, AlertSink, Severity
from mlops_actions.monitoring.alerts.manager import AlertManager, NotifyReport, sink_ids
from mlops_actions.monitoring.metrics import MonitoringMetrics

__all__ = ["Finding", "alert_key", "finding_to_alert", "findings_from_reports", "group_alert", "group_key",
           "notify"]

VERDICTS = ("passed", "failed", "inconclusive", "error")

#: Default severity per check when a finding does not say.
DEFAULT_SEVERITY: dict[str, Severity] = {
    "error_rate": Severity.CRITICAL,
    "latency_p95_ms": Severity.ERROR,
    "latency_p99_ms": Severity.ERROR,
    "data_drift": Severity.WARNING,
    "dataset_drift": Severity.WARNING,
    "prediction_drift": Severity.WARNING,
    "data_quality": Severity.WARNING,
    "quality": Severity.WARNING,
}


@dataclass(frozen=True)
class Finding:
    """A monitoring check's verdict, as ``notify`` needs it."""

    model: str
    environment: str
    check: str
    verdict: str  # passed, failed, inconclusive, error
    message: str
    version: str = ""
    severity: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return default


def _check_name(obj: Any) -> str:
    """``check`` (or ``name``); with the monitor's ``kind`` + ``name``: ``accuracy`` for
    performance, ``dataset_drift`` for the dataset, ``data_drift/<column>``,
    ``prediction_drift``, ``quality/<column:check>``; ``@<variant>`` appended when the
    monitor checked a gateway variant apart (``dataset_drift@canary``)."""
    check = _get(obj, "check")
    if check:
        return str(check)
    variant = str(_get(obj, "variant", default="") or "")
    base = _kind_check(obj)
    return f"{base}@{variant}" if variant else base


def _kind_check(obj: Any) -> str:
    name, kind = str(_get(obj, "name", default="") or ""), _get(obj, "kind")
    if not kind:
        return name
    if kind == "performance":
        return name if name not in ("", "*") else "performance"
    if kind == "data_drift" and name in ("", "*"):
        return "dataset_drift"
    if kind == "prediction_drift":
        return "prediction_drift"
    return f"{kind}/{name}" if name and name != "*" else str(kind)


def _as_finding(obj: Any) -> Finding:
    if isinstance(obj, Finding):
        return obj
    verdict = _get(obj, "verdict", "status", default="")
    verdict = getattr(verdict, "value", verdict)
    severity = _get(obj, "severity")
    details = dict(_get(obj, "details", default={}) or {})
    for extra in ("value", "limit"):
        if _get(obj, extra) is not None:
            details.setdefault(extra, _get(obj, extra))
    return Finding(model=str(_get(obj, "model", default="")),
                   environment=str(_get(obj, "environment", default="")),
                   check=_check_name(obj), verdict=str(verdict).lower(),
                   message=str(_get(obj, "message", default="")),
                   version=str(_get(obj, "version", default="") or ""),
                   severity=None if severity is None else str(getattr(severity, "value", severity)),
                   details=details)


def alert_key(model: str, environment: str, check: str) -> str:
    return f"{model}/{environment}/{check}"


def group_key(model: str, environment: str) -> str:
    """The key of the grouped alert of one model in one environment."""
    return f"{model}/{environment}"


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.ERROR: 1, Severity.WARNING: 2, Severity.INFO: 3}


def _item(f: Finding, alert: Alert) -> dict[str, Any]:
    """One line of a grouped alert (JSON-able: it is persisted in the alert state)."""
    item = {"check": f.check, "severity": alert.severity.value, "message": f.message}
    for k in ("value", "limit"):
        if f.details.get(k) is not None:
            item[k] = f.details[k]
    if f.version:
        item["version"] = f.version
    return item


def group_alert(model: str, environment: str, items: Sequence[Mapping[str, Any]], url: str = "") -> Alert:
    """One alert listing the failing checks of a model in an environment, worst first.

    ``items`` are :func:`_item` dicts (check, severity, message, value, limit, version).
    The fingerprint is the sorted (check, severity) pairs: what must change for the
    group to be notified again."""
    ordered = sorted(items, key=lambda i: SEVERITY_RANK[Severity(i["severity"])])  # stable: keeps order
    worst = Severity(ordered[0]["severity"])
    first = ordered[0]
    more = f" (+{len(ordered) - 1} more)" if len(ordered) > 1 else ""
    summary = (f"{model} in {environment}: {len(ordered)} check(s) failing; worst: {first['check']}: "
               f"{first['message']}{more}")
    versions = sorted({str(i["version"]) for i in ordered if i.get("version")})
    details: dict[str, Any] = {"checks_failing": len(ordered), **({"version": ", ".join(versions)}
                                                                  if versions else {}),
                               "findings": [dict(i) for i in ordered]}
    fingerprint = ",".join(sorted(f"{i['check']}={i['severity']}" for i in ordered))
    return Alert(key=group_key(model, environment), severity=worst, summary=summary, details=details,
                 model=model, environment=environment, url=url, fingerprint=fingerprint)


def run_url(env: Mapping[str, str]) -> str:
    """The GitHub Actions run that is sending, when running in one (else "")."""
    server, repo, run = (env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""


def finding_to_alert(finding: Any, url: str = "") -> Alert:
    f = _as_finding(finding)
    plain = f.check.split("@")[0]
    default = DEFAULT_SEVERITY.get(plain) or DEFAULT_SEVERITY.get(plain.split("/")[0], Severity.ERROR)
    try:
        severity = Severity(f.severity) if f.severity else default
    except ValueError:
        severity = default
    details = {"check": f.check, **({"version": f.version} if f.version else {}), **dict(f.details)}
    summary = f"{f.model} in {f.environment}: {f.message}" if f.model else f.message
    return Alert(key=alert_key(f.model, f.environment, f.check), severity=severity, summary=summary,
                 details=details, model=f.model, environment=f.environment, url=url)


def _value(v: Any) -> str:
    return str(getattr(v, "value", v))


def findings_from_reports(model: str, environment: str, version: str = "", *, performance: Any = None,
                          drift: Any = None, quality: Any = None,
                          prediction_drift: Any = None) -> list[Finding]:
    """Findings from the reports of ``mlops_actions.monitoring`` (duck-typed): one per
    performance check (``checks``: metric, value, verdict, message, baseline, bound), one
    ``dataset_drift`` (a DriftReport), one ``data_quality`` (a QualityReport), one
    ``prediction_drift`` (a ColumnDrift)."""
    out: list[Finding] = []
    common = {"model": model, "environment": environment, "version": version}
    if performance is not None:
        for c in _get(performance, "checks", default=()) or ():
            details = {k: _get(c, k) for k in ("value", "baseline", "bound") if _get(c, k) is not None}
            out.append(Finding(check=str(_get(c, "metric")), verdict=_value(_get(c, "verdict")),
                               message=str(_get(c, "message", default="")), details=details, **common))
    if drift is not None:
        summary = drift.summary() if callable(getattr(drift, "summary", None)) else ""
        drifted = [str(_get(c, "column")) for c in (_get(drift, "columns", default=()) or ())
                   if _get(c, "drifted")]
        share = _get(drift, "share")
        out.append(Finding(check="dataset_drift", verdict=_value(_get(drift, "verdict")),
                           message=summary or f"{len(drifted)} feature(s) drifted",
                           details={"share": share, "drifted": ", ".join(drifted[:10])}, **common))
    if quality is not None:
        problems = [p for p in (_get(quality, "findings", default=()) or ())
                    if _value(_get(p, "verdict")) != "passed"]
        message = "; ".join(str(_get(p, "message", default="")) for p in problems[:3]) or "no problem"
        out.append(Finding(check="data_quality", verdict=_value(_get(quality, "verdict")), message=message,
                           details={"problems": len(problems)}, **common))
    if prediction_drift is not None:
        out.append(Finding(check="prediction_drift", verdict=_value(_get(prediction_drift, "verdict")),
                           message=str(_get(prediction_drift, "message", default="")) or
                           f"prediction drift {_get(prediction_drift, 'method')} "
                           f"{_get(prediction_drift, 'statistic')}",
                           details={"method": _get(prediction_drift, "method"),
                                    "statistic": _get(prediction_drift, "statistic")}, **common))
    return out


def notify(findings: Iterable[Any], specs: Sequence[Any], state_path: str | Path, *,
           env: Mapping[str, str] | None = None, metrics: MonitoringMetrics | None = None,
           sink_options: Mapping[str, Any] | None = None,
           sinks: Mapping[str, AlertSink] | None = None,
           resolve_missing: Iterable[str] = (), group: bool = False) -> NotifyReport:
    """Fire failed findings, resolve passed ones, through the sinks ``specs`` declare
    (model.yaml's ``monitoring.alerts``). A sink whose secret is missing is reported in
    ``config_errors`` and skipped; the others still run. ``sinks`` replaces building from
    ``specs`` (tests, or callers with their own sinks). ``resolve_missing``: key prefixes
    (``"<model>/<environment>/"``) this run covered completely: an open alert under one of
    them that no finding mentions any more is resolved (absent = healthy). ``group``: one
    alert per model and environment (see the module docstring)."""
    config_errors: list[str] = []
    if sinks is None:
        parsed = [parse_alert_spec(s) for s in specs]
        built: dict[str, AlertSink] = {}
        for sid, spec in zip(sink_ids([s.type for s in parsed]), parsed, strict=True):
            try:
                built[sid] = make_sink(spec, env, **dict(sink_options or {}))
            except MlopsActionsError as exc:
                config_errors.append(f"{sid}: {exc}")
        sinks = built
    fire: list[Alert] = []
    resolve: list[tuple[str, str]] = []
    url = run_url(os.environ if env is None else env)
    parsed = [_as_finding(obj) for obj in findings]
    for i, f in enumerate(parsed):
        missing = [k for k in ("model", "environment", "check") if not getattr(f, k)]
        if missing or f.verdict not in VERDICTS:
            raise ConfigError(
                f"finding #{i + 1} ({f.model or '?'}/{f.environment or '?'}/{f.check or '?'}): "
                + (f"missing {', '.join(missing)}" if missing else
                   f"verdict {f.verdict!r} is not one of {', '.join(VERDICTS)}"),
                hint="a finding has model, environment, check, verdict (passed, failed, inconclusive, "
                     "error) and message")
    manager = AlertManager(sinks, state_path, metrics=metrics)
    if group:
        fire, resolve = _grouped(parsed, manager.firing(), url)
    else:
        for f in parsed:
            if f.verdict == "failed":
                fire.append(finding_to_alert(f, url))
            elif f.verdict == "passed":
                resolve.append((alert_key(f.model, f.environment, f.check),
                                f"{f.model} in {f.environment}: {f.check} is healthy again: {f.message}"))
    report = manager.fire(fire)
    for key, summary in resolve:
        report = report.merged(manager.resolve([key], summary))
    scopes = tuple(resolve_missing)
    if scopes:
        present = {a.key for a in fire} | {k for k, _ in resolve} | {
            alert_key(f.model, f.environment, f.check) for f in parsed if not group}
        gone = [k for k, e in manager.firing().items()
                if (k.startswith(scopes) or f"{k}/" in scopes) and k not in present
                and e.get("status") == "firing"]
        if gone:
            report = report.merged(manager.resolve(gone))
    return NotifyReport(report.deliveries, report.suppressed, report.firing, tuple(config_errors))


def _grouped(parsed: Sequence[Finding], open_alerts: Mapping[str, Any],
             url: str) -> tuple[list[Alert], list[tuple[str, str]]]:
    """Grouped alerts to fire and group keys to resolve, one per (model, environment)."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in parsed:
        groups.setdefault((f.model, f.environment), []).append(f)
    fire: list[Alert] = []
    resolve: list[tuple[str, str]] = []
    for (model, env), found in groups.items():
        key = group_key(model, env)
        previous = {i["check"]: i for i in (open_alerts.get(key, {}).get("details", {}).get("findings") or [])
                    if isinstance(i, Mapping) and "check" in i}
        items = [_item(f, finding_to_alert(f, url)) for f in found if f.verdict == "failed"]
        for f in found:  # a failing check that is inconclusive now stays failing
            if f.verdict in ("inconclusive", "error") and f.check in previous:
                items.append({**previous[f.check], "message": f"{previous[f.check]['message']} "
                                                              f"(last known; now {f.verdict}: {f.message})"})
        if items:
            fire.append(group_alert(model, env, items, url))
        elif key in open_alerts:
            resolve.append((key, f"{model} in {env}: every check is healthy again"))
    return fire, resolve
