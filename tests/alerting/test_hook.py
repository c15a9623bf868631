"""The monitor command's alert hook: findings of the monitor's shape -> sinks of model.yaml."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlops_actions.commands import alerts as alerts_cmd
from mlops_actions.commands import monitor as monitor_cmd
from mlops_actions.config.loader import load_repo
from mlops_actions.monitoring.alerts.hook import monitor_alert_hook
from mlops_actions.monitoring.health import Finding
from mlops_actions.verdict import Verdict
from tests.alerting.conftest import Receiver
from tests.alerting.test_sinks import slack_receiver


def MonitorFinding(model: str, environment: str, kind: str, name: str, verdict: str, message: str,
                   value: float | None = None, limit: float | None = None,
                   version: str | None = None) -> Finding:
    """The monitor's own Finding (its verdict an enum, not a string), so a change to it that
    the hook does not follow fails here."""
    return Finding(model, environment, kind, name, Verdict(verdict), message, value, limit, version)


def _repo(root: Path, alerts: str = "[{type: slack}]") -> Path:
    d = root / "models" / "churn"
    d.mkdir(parents=True)
    (d / "model.yaml").write_text("name: churn-model\ntask: binary_classification\n"
                                  f"data: {{test: t.csv, label: y}}\nmonitoring:\n  alerts: {alerts}\n")
    return root


def _context(repo: Path) -> monitor_cmd.AlertContext:
    """What the monitor command hands its hooks (a health stands in: the hook reads its model)."""
    health: Any = SimpleNamespace(model="churn-model")
    return monitor_cmd.AlertContext(environment="production", repo=load_repo(repo), healths=(health,),
                                    markdown="")


def _run(repo: Path, findings: list[Finding]) -> Any:
    return monitor_alert_hook(findings, _context(repo))


def test_hook_fires_once_per_problem_and_resolves_what_disappears(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver.handler = slack_receiver
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url + "/slack")
    monkeypatch.delenv("MLOPS_ALERT_STATE", raising=False)
    repo = _repo(tmp_path)
    run1 = [MonitorFinding("churn-model", "production", "performance", "accuracy", "failed",
                           "accuracy 0.81 < threshold 0.9", 0.81, 0.9, "1.3.0"),
            MonitorFinding("churn-model", "production", "data_drift", "*", "failed", "3 of 5 drifted",
                           0.6, 0.5),
            MonitorFinding("churn-model", "production", "data_drift", "age", "failed", "ks p=0.001"),
            MonitorFinding("churn-model", "production", "data_drift", "income", "failed", "ks p=0.002"),
            MonitorFinding("churn-model", "production", "quality", "age:missing", "failed", "12% missing"),
            MonitorFinding("churn-model", "production", "prediction_drift", "prediction", "inconclusive", "")]
    report = _run(repo, run1)
    texts = [r.json()["text"] for r in receiver.requests]
    # one notification for the model in the environment, listing its failing checks worst first
    assert len(texts) == 1 and "3 check(s) failing; worst: accuracy" in texts[0]
    listed = receiver.requests[0].json()["blocks"][1]["text"]["text"].splitlines()
    assert [line.split("*")[1] for line in listed] == ["accuracy", "dataset_drift", "quality/age:missing"]
    assert report.firing == ("churn-model/production",)
    assert (tmp_path / ".mlops" / "alerts.json").exists()
    _run(repo, run1)
    assert len(receiver.requests) == 1  # unchanged: dedup across runs
    # accuracy passes, the quality problem is gone, drift still fails: the group changed, one update
    run3 = [MonitorFinding("churn-model", "production", "performance", "accuracy", "passed", "0.93"),
            run1[1], run1[2]]
    report = _run(repo, run3)
    assert len(receiver.requests) == 2 and "1 check(s) failing; worst: dataset_drift" in texts_of(receiver)[1]
    assert report.firing == ("churn-model/production",)
    # drift inconclusive now (too few rows): no news is not good news, nothing sent, still open
    run4 = [run1[0].__class__("churn-model", "production", "data_drift", "*", "inconclusive", "12 rows"),
            MonitorFinding("churn-model", "production", "performance", "accuracy", "passed", "0.93")]
    assert _run(repo, run4).firing == ("churn-model/production",) and len(receiver.requests) == 2
    # everything healthy: one resolve
    healthy = [MonitorFinding("churn-model", "production", "performance", "accuracy", "passed", "0.93"),
               MonitorFinding("churn-model", "production", "data_drift", "*", "passed", "0 of 5 drifted")]
    report = _run(repo, healthy)
    assert len(receiver.requests) == 3 and "RESOLVED" in texts_of(receiver)[2]
    assert report.firing == ()
    _run(repo, healthy)
    assert len(receiver.requests) == 3


def texts_of(receiver: Receiver) -> list[str]:
    return [r.json()["text"] for r in receiver.requests]


def test_hook_never_raises_and_skips_models_without_sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("MLOPS_ALERT_STATE", str(tmp_path / "state" / "a.json"))
    repo = _repo(tmp_path)
    _run(repo, [MonitorFinding("churn-model", "production", "performance", "accuracy", "failed", "bad")])
    assert "SLACK_WEBHOOK_URL is not set" in capsys.readouterr().err
    assert (tmp_path / "state" / "a.json").exists()
    _run(repo, [MonitorFinding("unknown", "production", "performance", "accuracy", "failed", "bad")])


def test_the_cli_registers_the_hook_once_and_monitor_findings_reach_the_sinks(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # the CLI imports every command module; importing the alerts command wires the hook into monitor
    import importlib

    receiver.handler = slack_receiver
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url + "/slack")
    monkeypatch.setenv("MLOPS_ALERT_STATE", str(tmp_path / "alerts.json"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr(monitor_cmd, "ALERT_HOOKS", [])
    importlib.reload(alerts_cmd)
    assert [alerts_cmd.alert_hook] == monitor_cmd.ALERT_HOOKS
    assert alerts_cmd.register_with_monitor() is True  # a second registration adds nothing
    assert [alerts_cmd.alert_hook] == monitor_cmd.ALERT_HOOKS
    failed = MonitorFinding("churn-model", "production", "performance", "accuracy", "failed",
                            "accuracy 0.81 < threshold 0.9", 0.81, 0.9, "1.3.0")
    monitor_cmd.dispatch_findings([failed], _context(_repo(tmp_path)))
    assert len(receiver.requests) == 1 and "accuracy" in receiver.requests[0].json()["text"]
    # a problem is a warning at the CLI edge: stderr, and an annotation inside Actions
    monkeypatch.delenv("SLACK_WEBHOOK_URL")
    monitor_cmd.dispatch_findings([failed], _context(tmp_path))
    out, err = capsys.readouterr()
    assert "SLACK_WEBHOOK_URL is not set" in err
    assert "::warning title=mlops-actions alerts::" in out and "SLACK_WEBHOOK_URL is not set" in out
