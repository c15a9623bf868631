"""AlertManager: dedup, resolve, retries, persisted state; the factory; notify()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mlops_actions.errors import ConfigError
from mlops_actions.monitoring.alerts import (
    Alert,
    AlertError,
    AlertManager,
    Finding,
    Severity,
    make_sink,
    notify,
)
from mlops_actions.monitoring.alerts.memory import MemorySink
from mlops_actions.monitoring.alerts.slack import SlackSink
from mlops_actions.monitoring.metrics import monitoring_metrics
from tests.alerting.conftest import Receiver
from tests.alerting.test_sinks import FakeGitHub, pagerduty_receiver, slack_receiver


def _alert(key: str = "m/prod/accuracy", severity: Severity = Severity.ERROR) -> Alert:
    return Alert(key=key, severity=severity, summary=f"{key} bad", model="m", environment="prod")


def test_same_key_firing_twice_notifies_once_across_runs(tmp_path: Path) -> None:
    sink = MemorySink()
    state = tmp_path / "alerts.json"
    first = AlertManager([sink], state).fire([_alert(), _alert()])
    second = AlertManager([sink], state).fire([_alert()])  # a new process, same state file
    assert sink.sent == [("m/prod/accuracy", "firing", None)]
    assert first.suppressed == ("m/prod/accuracy",) and second.suppressed == ("m/prod/accuracy",)
    assert second.firing == ("m/prod/accuracy",)


def test_severity_change_notifies_again_with_the_ref(tmp_path: Path) -> None:
    sink = MemorySink()
    mgr = AlertManager([sink], tmp_path / "s.json")
    mgr.fire([_alert()])
    mgr.fire([_alert(severity=Severity.CRITICAL)])
    assert sink.sent[1] == ("m/prod/accuracy", "firing", "ref-m/prod/accuracy")


def test_resolve_tells_the_sinks_told_before_then_forgets(tmp_path: Path) -> None:
    sink = MemorySink()
    state = tmp_path / "s.json"
    AlertManager([sink], state).fire([_alert()])
    report = AlertManager([sink], state).resolve(["m/prod/accuracy", "never/fired/key"])
    assert sink.sent[-1] == ("m/prod/accuracy", "resolved", "ref-m/prod/accuracy")
    assert report.firing == () and json.loads(state.read_text())["alerts"] == {}
    AlertManager([sink], state).resolve(["m/prod/accuracy"])
    assert len(sink.sent) == 2  # resolving twice sends nothing


def test_failing_sink_never_stops_the_others_and_is_retried(tmp_path: Path) -> None:
    good, bad = MemorySink("slack"), MemorySink("pagerduty", fail=True)
    state = tmp_path / "s.json"
    report = AlertManager([bad, good], state).fire([_alert()])
    assert good.sent == [("m/prod/accuracy", "firing", None)]
    assert not report.ok and report.failures[0].sink == "pagerduty"
    assert "down" in report.failures[0].error
    bad.fail = False
    report = AlertManager([bad, good], state).fire([_alert()])
    assert report.ok and bad.sent == [("m/prod/accuracy", "firing", None)] and len(good.sent) == 1


def test_failed_resolve_is_retried_on_the_next_run(tmp_path: Path) -> None:
    sink = MemorySink()
    state = tmp_path / "s.json"
    AlertManager([sink], state).fire([_alert()])
    sink.fail = True
    assert not AlertManager([sink], state).resolve(["m/prod/accuracy"]).ok
    sink.fail = False
    AlertManager([sink], state).fire([])  # any later run retries pending resolves
    assert sink.sent[-1][1] == "resolved" and json.loads(state.read_text())["alerts"] == {}


def test_reconcile_resolves_keys_of_its_scope_only(tmp_path: Path) -> None:
    sink = MemorySink()
    mgr = AlertManager([sink], tmp_path / "s.json")
    mgr.fire([_alert("a/prod/drift"), _alert("b/prod/drift")])
    report = mgr.reconcile([], scope="a/")
    assert report.firing == ("b/prod/drift",)
    assert ("a/prod/drift", "resolved", "ref-a/prod/drift") in sink.sent


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    state.write_text("{not json")
    with pytest.raises(AlertError, match="unreadable") as err:
        AlertManager([MemorySink()], state).fire([_alert()])
    assert "delete it" in str(err.value)


def test_metrics_count_notifications_and_firing(tmp_path: Path) -> None:
    reg = CollectorRegistry()
    metrics = monitoring_metrics(reg)
    AlertManager([MemorySink("slack"), MemorySink("webhook", fail=True)], tmp_path / "s.json",
                 metrics=metrics).fire([_alert()])
    assert reg.get_sample_value("mlops_alert_notifications_total",
                                {"sink": "slack", "result": "sent"}) == 1
    assert reg.get_sample_value("mlops_alert_notifications_total",
                                {"sink": "webhook", "result": "failed"}) == 1
    assert reg.get_sample_value("mlops_alerts_firing",
                                {"model": "m", "environment": "prod", "severity": "error"}) == 1


# --------------------------------------------------------------------------- factory
def test_factory_unknown_type_names_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        make_sink({"type": "teams"}, env={})
    assert "teams" in str(err.value) and "slack, pagerduty, webhook, github_issue" in str(err.value)


def test_factory_missing_secret_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_URL"):
        make_sink({"type": "slack"}, env={})
    with pytest.raises(ConfigError, match="MLOPS_ALERT_WEBHOOK_URL is not set"):
        make_sink({"type": "webhook"}, env={})  # the default name, passed by monitor.yml
    signed = make_sink({"type": "webhook"}, env={"MLOPS_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                                                 "MLOPS_ALERT_WEBHOOK_SECRET": "s3cret"})
    assert "signed=True" in repr(signed)
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        make_sink({"type": "github_issue"}, env={"GITHUB_REPOSITORY": "o/r"})
    with pytest.raises(ConfigError, match="bad alert spec"):
        make_sink({"type": "slack", "webhook_url": "http://x"}, env={})


def test_factory_builds_each_type_without_leaking_secrets() -> None:
    env = {"SLACK_WEBHOOK_URL": "http://127.0.0.1:1/services/SECRET1", "PAGERDUTY_ROUTING_KEY": "SECRET2",
           "HOOK": "http://127.0.0.1:1/h", "HOOK_SECRET": "SECRET3", "GITHUB_TOKEN": "SECRET4",
           "GITHUB_REPOSITORY": "octo/models"}
    sinks = [make_sink(s, env) for s in (
        {"type": "slack"}, {"type": "pagerduty", "severity": "critical"},
        {"type": "webhook", "url_env": "HOOK", "secret_env": "HOOK_SECRET"}, {"type": "github_issue"})]
    assert [s.type for s in sinks] == ["slack", "pagerduty", "webhook", "github_issue"]
    assert isinstance(sinks[0], SlackSink)
    assert not any(f"SECRET{i}" in repr(s) for s in sinks for i in range(1, 5))


# --------------------------------------------------------------------------- notify (the monitor hook)
def test_notify_fires_dedups_and_resolves_through_real_receivers(tmp_path: Path, receiver: Receiver) -> None:
    gh = FakeGitHub()

    def route(req):  # one loopback server plays Slack, PagerDuty and GitHub
        if req.path.startswith("/slack"):
            return slack_receiver(req)
        if req.path.startswith("/v2/"):
            return pagerduty_receiver(req)
        return gh(req)

    receiver.handler = route
    env = {"SLACK_WEBHOOK_URL": receiver.url + "/slack/T/B/C", "PAGERDUTY_ROUTING_KEY": "R" * 32,
           "MLOPS_PAGERDUTY_EVENTS_URL": receiver.url + "/v2/enqueue", "GITHUB_TOKEN": "ghs_token",
           "GITHUB_REPOSITORY": "octo/models", "GITHUB_API_URL": receiver.url,
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "42"}
    specs = [{"type": "slack"}, {"type": "pagerduty"}, {"type": "github_issue"},
             {"type": "webhook", "url_env": "UNSET_HOOK"}]  # misconfigured: reported, others still run
    state = tmp_path / ".mlops" / "alerts.json"
    failed = [Finding("churn", "production", "accuracy", "failed", "accuracy 0.81 < 0.90", version="1.3.0"),
              {"model": "churn", "environment": "production", "check": "dataset_drift",
               "verdict": "inconclusive", "message": "42 rows < min_samples 100"}]
    opts = {"retries": 1, "backoff": 0.01}
    report = notify(failed, specs, state, env=env, sink_options=opts)
    assert {d.sink for d in report.deliveries if d.ok} == {"slack", "pagerduty", "github_issue"}
    assert report.config_errors and "UNSET_HOOK" in report.config_errors[0]
    assert report.firing == ("churn/production/accuracy",)
    assert len(receiver.requests) == 4  # slack, pagerduty, github (lookup + create)
    again = notify(failed, specs, state, env=env, sink_options=opts)
    assert again.deliveries == () and again.suppressed == ("churn/production/accuracy",)
    healthy = [Finding("churn", "production", "accuracy", "passed", "accuracy 0.93 >= 0.90")]
    done = notify(healthy, specs, state, env=env, sink_options=opts)
    assert {d.sink for d in done.deliveries} == {"slack", "pagerduty", "github_issue"}
    assert all(d.ok and d.status.value == "resolved" for d in done.deliveries)
    assert gh.issues[1]["state"] == "closed" and done.firing == ()
    pd = [r.json() for r in receiver.requests if r.path == "/v2/enqueue"]
    assert [e["event_action"] for e in pd] == ["trigger", "resolve"]
    run = "https://github.com/octo/models/actions/runs/42"
    assert pd[0]["links"] == [{"href": run, "text": "details"}]
    slack = [r.json() for r in receiver.requests if r.path.startswith("/slack")]
    assert all(f"<{run}|details>" in m["blocks"][-1]["elements"][0]["text"] for m in slack)
    assert f"[Details]({run})" in gh.issues[1]["body"]


def test_unreachable_sink_is_called_once_per_run_not_once_per_alert(tmp_path: Path) -> None:
    from mlops_actions.monitoring.alerts.webhook import WebhookSink
    from tests.conftest import free_port

    class Counting(WebhookSink):
        calls = 0

        def send(self, alert: Alert, ref: str | None = None) -> str | None:
            Counting.calls += 1
            return super().send(alert, ref)

    good = MemorySink("slack")
    dead = Counting(f"http://127.0.0.1:{free_port()}/x", retries=1, backoff=0.01, timeout=1)
    report = AlertManager([dead, good], tmp_path / "s.json").fire([_alert(f"m/prod/c{i}") for i in range(5)])
    assert Counting.calls == 1 and len(good.sent) == 5
    assert sum(1 for d in report.failures if d.error.startswith("skipped")) == 4


def test_a_4xx_for_one_alert_does_not_skip_the_others(tmp_path: Path, receiver: Receiver) -> None:
    from mlops_actions.monitoring.alerts.webhook import WebhookSink
    receiver.handler = lambda r: (422, {"message": "bad"}) if b"c0" in r.body else (200, {})
    report = AlertManager([WebhookSink(receiver.url, retries=1, backoff=0.01)], tmp_path / "s.json").fire(
        [_alert(f"m/prod/c{i}") for i in range(3)])
    assert len(receiver.requests) == 3 and len(report.failures) == 1


def test_secrets_echoed_by_a_service_are_masked(receiver: Receiver) -> None:
    receiver.handler = lambda r: (400, b"invalid routing key R0UTINGKEY0123456789abcdef012345")
    from mlops_actions.monitoring.alerts.pagerduty import PagerDutySink
    with pytest.raises(AlertError) as err:
        PagerDutySink("R0UTINGKEY0123456789abcdef012345", url=receiver.url, retries=0).send(_alert())
    assert "R0UTINGKEY" not in str(err.value) and "***" in str(err.value)


def test_notify_rejects_malformed_findings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"finding #2 .*missing environment"):
        notify([Finding("m", "p", "c", "passed", "ok"), {"model": "m", "check": "c", "verdict": "failed"}],
               [], tmp_path / "s.json", sinks={})
    with pytest.raises(ConfigError, match="verdict 'bad' is not one of"):
        notify([{"model": "m", "environment": "p", "check": "c", "verdict": "bad"}], [], tmp_path / "s.json",
               sinks={})
