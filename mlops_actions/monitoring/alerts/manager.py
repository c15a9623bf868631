"""AlertManager: dedup, resolve and delivery state that survives between runs.

A scheduled ``monitor`` job is a fresh process each time, so what it fired is
kept in a small JSON file (written atomically, under an exclusive lock). Per
alert key and per sink it records the last status delivered and the sink's
``ref`` (e.g. the GitHub issue number), so:

- the same key firing again is not sent again (dedup), unless its severity or its
  fingerprint (a grouped alert's list of failing checks) changed;
- a sink that failed is retried on the next run, and a failing sink never stops
  the others;
- resolving a key notifies exactly the sinks that were told it fired, then
  forgets the key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_actions.monitoring.alerts._http import json_default
from mlops_actions.monitoring.alerts.interface import Alert, AlertError, AlertSink, AlertStatus, Severity
from mlops_actions.monitoring.metrics import MonitoringMetrics

__all__ = ["AlertManager", "Delivery", "NotifyReport", "sink_ids"]

STATE_VERSION = 1


@dataclass(frozen=True)
class Delivery:
    """One attempt to tell one sink about one alert."""

    key: str
    sink: str
    status: AlertStatus
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class NotifyReport:
    deliveries: tuple[Delivery, ...] = ()
    suppressed: tuple[str, ...] = ()  # keys already notified: nothing sent
    firing: tuple[str, ...] = ()  # keys firing after this run
    config_errors: tuple[str, ...] = ()  # sinks that could not be built

    @property
    def failures(self) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if not d.ok)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.config_errors

    def merged(self, other: NotifyReport) -> NotifyReport:
        return NotifyReport(self.deliveries + other.deliveries, self.suppressed + other.suppressed,
                            other.firing, self.config_errors + other.config_errors)


def sink_ids(types: Sequence[str]) -> list[str]:
    """Stable ids for sinks in spec order: ``slack``, ``slack#2``, ``webhook``..."""
    seen: dict[str, int] = {}
    out = []
    for t in types:
        seen[t] = seen.get(t, 0) + 1
        out.append(t if seen[t] == 1 else f"{t}#{seen[t]}")
    return out


class AlertManager:
    def __init__(self, sinks: Sequence[AlertSink] | Mapping[str, AlertSink], state_path: str | Path, *,
                 metrics: MonitoringMetrics | None = None) -> None:
        if isinstance(sinks, Mapping):
            self._sinks = dict(sinks)
        else:
            self._sinks = dict(zip(sink_ids([s.type for s in sinks]), sinks, strict=True))
        self._path = Path(state_path)
        self._metrics = metrics
        self._down: set[str] = set()

    # ------------------------------------------------------------------ public
    def fire(self, alerts: Iterable[Alert]) -> NotifyReport:
        """Notify about firing alerts; keys already notified are suppressed."""
        with self._state() as state:
            return self._process(state, [a for a in alerts], [])

    def resolve(self, keys: Iterable[str], summary: str | None = None) -> NotifyReport:
        """Resolve keys fired earlier (unknown keys are ignored)."""
        with self._state() as state:
            return self._process(state, [], [(k, summary) for k in keys])

    def reconcile(self, firing: Iterable[Alert], *, scope: str = "") -> NotifyReport:
        """``firing`` is everything firing now among keys starting with ``scope``;
        any key of that scope fired earlier and absent now is resolved."""
        alerts = list(firing)
        with self._state() as state:
            now = {a.key for a in alerts}
            gone: list[tuple[str, str | None]] = [
                (k, None) for k in state["alerts"] if k.startswith(scope) and k not in now]
            return self._process(state, alerts, gone)

    def firing(self) -> dict[str, dict[str, Any]]:
        """The persisted state of every alert not yet fully resolved."""
        with self._state(write=False) as state:
            return dict(state["alerts"])

    # ------------------------------------------------------------------ internals
    def _process(self, state: dict[str, Any], fire: list[Alert],
                 resolve: list[tuple[str, str | None]]) -> NotifyReport:
        deliveries: list[Delivery] = []
        suppressed: list[str] = []
        entries: dict[str, Any] = state["alerts"]
        self._down = set()  # sinks that failed transiently in this run
        for alert in fire:
            entry = entries.setdefault(alert.key, {"since": alert.timestamp, "sinks": {}})
            entry.update(status=AlertStatus.FIRING.value, severity=alert.severity.value,
                         summary=alert.summary, model=alert.model, environment=alert.environment,
                         details=_jsonable(alert.details), updated=alert.timestamp, url=alert.url,
                         fingerprint=alert.fingerprint)
            sent = self._deliver(entry, alert, deliveries)
            if not sent:
                suppressed.append(alert.key)
        for key, summary in resolve:
            entry = entries.get(key)
            if entry is None:
                continue
            alert = Alert(key=key, severity=Severity(entry["severity"]),
                          summary=summary or f"{entry['summary']} (resolved)",
                          status=AlertStatus.RESOLVED, details=entry.get("details", {}),
                          model=entry.get("model", ""), environment=entry.get("environment", ""),
                          url=entry.get("url", ""))
            entry.update(status=AlertStatus.RESOLVED.value, updated=alert.timestamp,
                         resolved_summary=alert.summary)
            self._deliver(entry, alert, deliveries)
        # retry resolves that failed on an earlier run
        handled = {a.key for a in fire} | {k for k, _ in resolve}
        for key, entry in entries.items():
            if key not in handled and entry["status"] == AlertStatus.RESOLVED.value:
                self._deliver(entry, Alert(
                    key=key, severity=Severity(entry["severity"]),
                    summary=entry.get("resolved_summary") or entry["summary"],
                    status=AlertStatus.RESOLVED, details=entry.get("details", {}),
                    model=entry.get("model", ""), environment=entry.get("environment", "")), deliveries)
        # a resolved key whose every notified sink has heard the resolve is done
        for key in [k for k, e in entries.items() if e["status"] == AlertStatus.RESOLVED.value]:
            if all(s["status"] == AlertStatus.RESOLVED.value for s in entries[key]["sinks"].values()):
                del entries[key]
        firing = tuple(k for k, e in entries.items() if e["status"] == AlertStatus.FIRING.value)
        self._export(entries)
        return NotifyReport(tuple(deliveries), tuple(suppressed), firing)

    def _deliver(self, entry: dict[str, Any], alert: Alert, out: list[Delivery]) -> bool:
        sent = False
        for sink_id, sink in self._sinks.items():
            last = entry["sinks"].get(sink_id)
            if alert.status is AlertStatus.RESOLVED:
                if last is None or last["status"] == AlertStatus.RESOLVED.value:
                    continue  # never told it fired (or already told it resolved)
            elif last is not None and last["status"] == AlertStatus.FIRING.value \
                    and last["severity"] == alert.severity.value \
                    and last.get("fingerprint", "") == alert.fingerprint:
                continue  # dedup
            sent = True
            if sink_id in self._down:
                out.append(Delivery(alert.key, sink_id, alert.status, False,
                                    "skipped: the sink failed earlier in this run; retried next run"))
                continue
            try:
                ref = sink.send(alert, last.get("ref") if last else None)
            except Exception as exc:  # a failing sink never stops the others
                message = str(exc) if isinstance(exc, AlertError) else f"{type(exc).__name__}: {exc}"
                out.append(Delivery(alert.key, sink_id, alert.status, False, message))
                self._count(sink.type, "failed")
                if getattr(exc, "transient", False):
                    self._down.add(sink_id)
                continue
            entry["sinks"][sink_id] = {"status": alert.status.value, "severity": alert.severity.value,
                                       "fingerprint": alert.fingerprint,
                                       "ref": ref if ref is not None else (last or {}).get("ref"),
                                       "at": time.time()}
            out.append(Delivery(alert.key, sink_id, alert.status, True))
            self._count(sink.type, "sent")
        return sent

    def _count(self, sink: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.alert_notifications_total.labels(sink, result).inc()

    def _export(self, entries: Mapping[str, Any]) -> None:
        if self._metrics is None:
            return
        counts: dict[tuple[str, str, str], int] = {}
        for e in entries.values():
            if e["status"] == AlertStatus.FIRING.value:
                k = (e.get("model", ""), e.get("environment", ""), e["severity"])
                counts[k] = counts.get(k, 0) + 1
        self._metrics.alerts_firing.clear()
        for (model, env, sev), n in counts.items():
            self._metrics.alerts_firing.labels(model, env, sev).set(n)

    @contextlib.contextmanager
    def _state(self, write: bool = True) -> Iterator[dict[str, Any]]:
        if not write and not self._path.exists():
            yield {"version": STATE_VERSION, "alerts": {}}
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_name(self._path.name + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._load()
                yield state
                if write:
                    self._save(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        if not self._path.exists():
            return {"version": STATE_VERSION, "alerts": {}}
        try:
            state = json.loads(self._path.read_text() or "{}")
        except (OSError, ValueError) as exc:
            raise AlertError(f"alert state {self._path} is unreadable: {exc}",
                             hint="it holds which alerts were sent; delete it to start afresh "
                                  "(open alerts will be sent again)") from exc
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION \
                or not isinstance(state.get("alerts"), dict):
            raise AlertError(f"alert state {self._path}: expected version {STATE_VERSION} with an "
                             "'alerts' object", hint="delete the file to start afresh")
        return state

    def _save(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(state, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _jsonable(details: Mapping[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = json.loads(json.dumps(dict(details), default=json_default))
    return plain
