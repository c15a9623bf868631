"""``mlops-actions alerts test|list|resolve`` against a loopback Slack and webhook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.monitoring.alerts import Alert, AlertManager, Severity
from mlops_actions.monitoring.alerts.slack import SlackSink
from tests.alerting.conftest import Receiver
from tests.alerting.test_sinks import slack_receiver


def _repo(tmp_path: Path, alerts: str) -> Path:
    d = tmp_path / "models" / "churn"
    d.mkdir(parents=True)
    (d / "model.yaml").write_text(
        "name: churn\ntask: binary_classification\ndata: {test: t.csv, label: y}\n"
        f"monitoring:\n  alerts: {alerts}\n")
    return tmp_path


def test_alerts_test_fires_and_resolves(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    receiver.handler = slack_receiver
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url + "/slack")
    repo = _repo(tmp_path, "[{type: slack}]")
    assert main(["-C", str(repo), "alerts", "test", "--model", "churn"]) == 0
    texts = [r.json()["text"] for r in receiver.requests]
    assert len(texts) == 2 and "test alert" in texts[0] and "RESOLVED" in texts[1]
    assert "ok: slack firing" in capsys.readouterr().out


def test_alerts_test_reports_failure_with_exit_3(tmp_path: Path, receiver: Receiver,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    receiver.handler = lambda r: (403, b"invalid_token")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url + "/slack/SECRETPART")
    repo = _repo(tmp_path, "[{type: slack}]")
    assert main(["-C", str(repo), "alerts", "test", "--model", "churn", "--no-resolve"]) == 3
    captured = capsys.readouterr()
    assert "FAILED: slack" in captured.out and "HTTP 403" in captured.out
    assert "SECRETPART" not in captured.out + captured.err


def test_alerts_test_missing_secret_or_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    repo = _repo(tmp_path, "[{type: slack}]")
    assert main(["-C", str(repo), "alerts", "test", "--model", "churn"]) == 2
    assert "SLACK_WEBHOOK_URL is not set" in capsys.readouterr().err
    assert main(["-C", str(repo), "alerts", "test", "--model", "nope"]) == 2
    assert "known models: churn" in capsys.readouterr().err


def test_alerts_list_and_resolve(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    receiver.handler = slack_receiver
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url + "/slack")
    repo = _repo(tmp_path, "[{type: slack}]")
    state = repo / ".mlops" / "alerts.json"
    AlertManager([SlackSink(receiver.url + "/slack")], state).fire(
        [Alert("churn/production/accuracy", Severity.ERROR, "accuracy 0.81 < 0.90", model="churn",
               environment="production")])
    assert main(["-C", str(repo), "alerts", "list"]) == 0
    assert "churn/production/accuracy" in capsys.readouterr().out
    assert main(["-C", str(repo), "alerts", "list", "--json"]) == 0
    assert "churn/production/accuracy" in json.loads(capsys.readouterr().out)
    assert main(["-C", str(repo), "alerts", "resolve", "churn/production/accuracy", "--model", "churn"]) == 0
    assert "RESOLVED" in receiver.requests[-1].json()["text"]
    capsys.readouterr()
    assert main(["-C", str(repo), "alerts", "list"]) == 0
    assert "no open alerts" in capsys.readouterr().out
    assert main(["-C", str(repo), "alerts", "resolve", "churn/production/accuracy", "--model", "churn"]) == 2


def test_alerts_notify_from_a_findings_file(tmp_path: Path, receiver: Receiver,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    receiver.handler = slack_receiver
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url + "/slack")
    repo = _repo(tmp_path, "[{type: slack}]")
    findings = repo / "findings.json"
    findings.write_text(json.dumps({"findings": [
        {"model": "churn", "environment": "production", "check": "dataset_drift", "verdict": "failed",
         "message": "5 of 8 features drifted", "details": {"share": 0.625}}]}))
    assert main(["-C", str(repo), "alerts", "notify", str(findings)]) == 0
    assert main(["-C", str(repo), "alerts", "notify", str(findings)]) == 0
    assert "already notified: churn/production/dataset_drift" in capsys.readouterr().out
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json()["text"].startswith(":warning: WARNING: churn in production")
    findings.write_text(json.dumps([{"model": "churn", "environment": "production", "check": "dataset_drift",
                                     "verdict": "passed", "message": "1 of 8 features drifted"}]))
    assert main(["-C", str(repo), "alerts", "notify", str(findings)]) == 0
    assert "RESOLVED" in receiver.requests[-1].json()["text"]
    findings.write_text(json.dumps([{"model": "ghost", "environment": "p", "check": "c", "verdict": "failed",
                                     "message": "m"}]))
    assert main(["-C", str(repo), "alerts", "notify", str(findings)]) == 2
    assert "ghost" in capsys.readouterr().err
