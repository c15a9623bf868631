"""Grouped alerts (``notify(group=True)``, what the monitor hook sends): one notification per
model and environment, through every sink, against the loopback receivers of test_sinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_actions.monitoring.alerts import Finding, notify
from mlops_actions.monitoring.alerts.github_issue import marker
from mlops_actions.monitoring.alerts.notify import group_key
from mlops_actions.monitoring.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.alerting.conftest import Receiver, Request
from tests.alerting.test_sinks import FakeGitHub, pagerduty_receiver, slack_receiver

ENV_NAME = "production"


def _drift_event(n_quality: int = 33) -> list[Finding]:
    """What one drift event looks like to the sinks: a performance check, the dataset drift and
    a quality finding per shifted column (35 failing findings in all), plus passing ones."""
    out = [Finding("churn", ENV_NAME, "accuracy", "failed", "accuracy 0.71 < 0.80 (threshold); n=300",
                   version="1.2.0", details={"value": 0.71, "limit": 0.8}),
           Finding("churn", ENV_NAME, "dataset_drift", "failed", "20 of 30 column(s) drifted",
                   version="1.2.0", details={"value": 0.67, "limit": 0.5})]
    out += [Finding("churn", ENV_NAME, f"quality/f{i:02d}:out_of_range", "failed",
                    f"{10 + i}% of values outside the reference range", version="1.2.0")
            for i in range(n_quality)]
    out.append(Finding("churn", ENV_NAME, "error_rate", "passed", "error rate 0.00 <= 0.01"))
    return out


def _receivers(receiver: Receiver, gh: FakeGitHub, secret: str) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {"slack": [], "pagerduty": [], "webhook": [], "github": []}

    def route(req: Request) -> tuple[int, Any]:
        if req.path.startswith("/slack"):
            seen["slack"].append(req.json())
            return slack_receiver(req)
        if req.path.startswith("/v2/"):
            seen["pagerduty"].append(req.json())
            return pagerduty_receiver(req)
        if req.path.startswith("/hook"):
            ok = verify_signature(secret, req.headers[TIMESTAMP_HEADER.lower()], req.body,
                                  req.headers[SIGNATURE_HEADER.lower()])
            seen["webhook"].append(req.json())
            return (200, {}) if ok else (401, {})
        seen["github"].append((req.method, req.path))
        return gh(req)

    receiver.handler = route
    return seen


def test_one_drift_event_is_one_notification_per_sink_then_update_then_one_resolve(
        tmp_path: Path, receiver: Receiver) -> None:
    gh = FakeGitHub()
    seen = _receivers(receiver, gh, "s3cret")
    env = {"SLACK_WEBHOOK_URL": receiver.url + "/slack/T/B/C", "PAGERDUTY_ROUTING_KEY": "R" * 32,
           "MLOPS_PAGERDUTY_EVENTS_URL": receiver.url + "/v2/enqueue", "GITHUB_TOKEN": "ghs_token",
           "GITHUB_REPOSITORY": "octo/models", "GITHUB_API_URL": receiver.url,
           "HOOK_URL": receiver.url + "/hook", "HOOK_SECRET": "s3cret"}
    specs = [{"type": "slack"}, {"type": "pagerduty"}, {"type": "github_issue"},
             {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}]
    state = tmp_path / "alerts.json"
    opts = {"retries": 1, "backoff": 0.01}

    def run(findings: list[Finding]) -> Any:
        report = notify(findings, specs, state, env=env, sink_options=opts,
                        resolve_missing=[f"churn/{ENV_NAME}/"], group=True)
        assert report.ok, report.failures
        return report

    event = _drift_event()
    assert sum(f.verdict == "failed" for f in event) == 35
    report = run(event)
    key = group_key("churn", ENV_NAME)
    assert report.firing == (key,)
    # one message per sink for 35 failing findings
    assert len(seen["slack"]) == len(seen["pagerduty"]) == len(seen["webhook"]) == 1
    assert len(gh.issues) == 1 and not gh.comments
    slack = seen["slack"][0]
    assert slack["text"].startswith(":large_orange_circle: ERROR: churn in production: 35 check(s) failing; "
                                    "worst: accuracy")
    listed = slack["blocks"][1]["text"]["text"].splitlines()
    assert listed[0].startswith("• *accuracy* (error)")
    assert listed[1].startswith("• *dataset_drift* (warning)")
    assert listed[-1] == "… and 25 more"  # 10 listed, the rest counted: Slack's 3000-character text
    pd = seen["pagerduty"][0]
    assert pd["event_action"] == "trigger" and pd["dedup_key"] == key
    assert pd["payload"]["severity"] == "error"
    assert [f["check"] for f in pd["payload"]["custom_details"]["findings"]][:2] == ["accuracy",
                                                                                      "dataset_drift"]
    hook = seen["webhook"][0]
    assert hook["key"] == key and hook["status"] == "firing" and len(hook["details"]["findings"]) == 35
    issue = gh.issues[1]
    assert marker(key) in issue["body"] and "| `accuracy` | error | 0.71 | 0.8 |" in issue["body"]
    assert issue["title"].startswith("[mlops alert] churn in production: 35 check(s) failing")

    # the same event on the next run: nothing is sent
    before = {k: len(v) for k, v in seen.items()}
    assert run(event).suppressed == (key,)
    assert {k: len(v) for k, v in seen.items()} == before

    # the group changes (accuracy recovered): one update per sink, same incident and issue
    changed = [f for f in event if f.check != "accuracy"]
    run(changed)
    assert len(seen["slack"]) == len(seen["pagerduty"]) == len(seen["webhook"]) == 2
    assert seen["pagerduty"][1]["dedup_key"] == key and seen["pagerduty"][1]["event_action"] == "trigger"
    assert "34 check(s) failing; worst: dataset_drift" in seen["pagerduty"][1]["payload"]["summary"]
    assert len(gh.issues) == 1 and len(gh.comments) == 1 and "34 check(s) failing" in gh.comments[0][1]

    # all healthy: one resolve per sink, the issue closed
    healthy = [Finding("churn", ENV_NAME, f.check, "passed", "fine") for f in event]
    report = run(healthy)
    assert report.firing == ()
    assert seen["slack"][-1]["text"].startswith(":white_check_mark: RESOLVED: churn in production")
    assert seen["pagerduty"][-1] == {"routing_key": "R" * 32, "event_action": "resolve", "dedup_key": key}
    assert seen["webhook"][-1]["status"] == "resolved" and seen["webhook"][-1]["key"] == key
    assert gh.issues[1]["state"] == "closed" and len(gh.issues) == 1
    assert len(seen["slack"]) == len(seen["pagerduty"]) == len(seen["webhook"]) == 3
    run(healthy)  # nothing more to say
    assert len(seen["slack"]) == 3


def test_grouping_keeps_models_and_environments_apart_and_retires_per_check_keys(tmp_path: Path) -> None:
    from mlops_actions.monitoring.alerts.memory import MemorySink

    sink = MemorySink("slack")
    state = tmp_path / "alerts.json"
    # an alert left open by an older, per-check version of the hook
    notify([Finding("churn", "production", "accuracy", "failed", "bad")], [], state, sinks={"slack": sink})
    findings = [Finding("churn", "production", "dataset_drift", "failed", "drifted"),
                Finding("churn", "staging", "dataset_drift", "failed", "drifted"),
                Finding("fraud", "production", "accuracy", "failed", "bad")]
    report = notify(findings, [], state, sinks={"slack": sink}, group=True,
                    resolve_missing=["churn/production/", "churn/staging/", "fraud/production/"])
    assert set(report.firing) == {"churn/production", "churn/staging", "fraud/production"}
    assert ("churn/production/accuracy", "resolved", "ref-churn/production/accuracy") in sink.sent
    # a model with no finding at all any more (e.g. its pin was removed from the run) resolves
    notify([], [], state, sinks={"slack": sink}, group=True, resolve_missing=["fraud/production/"])
    assert sink.sent[-1][:2] == ("fraud/production", "resolved")


def test_per_variant_findings_of_the_monitor_keep_their_variant_and_severity(tmp_path: Path) -> None:
    from mlops_actions.monitoring.alerts.memory import MemorySink
    from mlops_actions.monitoring.health import Finding as MonitorFinding
    from mlops_actions.monitoring.verdict import Verdict

    sink = MemorySink("slack")
    findings = [MonitorFinding("churn", "production", "data_drift", "*", Verdict.FAILED, "4 of 4 drifted",
                               1.0, 0.5, "1.2.0", "canary"),
                MonitorFinding("churn", "production", "performance", "error_rate", Verdict.FAILED,
                               "error rate 0.2 > 0.05", 0.2, 0.05, "1.2.0", "canary"),
                MonitorFinding("churn", "production", "data_drift", "*", Verdict.PASSED, "0 of 4 drifted",
                               0.0, 0.5, "1.2.0", "stable")]
    notify(findings, [], tmp_path / "a.json", sinks={"slack": sink}, group=True)
    (alert,) = sink.alerts
    assert alert.key == "churn/production" and alert.severity.value == "critical"
    assert [(i["check"], i["severity"]) for i in alert.details["findings"]] == [
        ("error_rate@canary", "critical"), ("dataset_drift@canary", "warning")]
