"""``mlops-actions monitor`` end to end through the alert hook to a signed webhook on 127.0.0.1.

Needs the monitor command and its asset repo (branch ``monitoring``); skipped until merged."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_actions.cli import main
from mlops_actions.monitoring.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.alerting.conftest import Receiver, Request

pytest.importorskip("mlops_actions.commands.monitor")
store_mod = pytest.importorskip("mlops_actions.monitoring.store")
ASSET_REPO = Path(__file__).parents[1] / "assets" / "monitoring" / "repo"
pytestmark = pytest.mark.skipif(not ASSET_REPO.exists(), reason="monitoring's asset repo not on this branch")


def _log(repo: Path, *, shift: bool, accuracy: float, prefix: str, n: int = 300) -> None:
    ref = pd.read_csv(repo / "models" / "churn" / "reference.csv")
    rng = np.random.default_rng(3)
    rows = ref.sample(n, replace=True, random_state=4).reset_index(drop=True)
    if shift:
        rows["monthly_charges"] = rows["monthly_charges"] + 25
    now = time.time()
    store = store_mod.open_store(None, repo_root=repo)
    recs, actuals = [], {}
    for i, r in rows.iterrows():
        label = int(r["churned"])
        pred = label if rng.random() < accuracy else 1 - label
        recs.append(store_mod.PredictionRecord(f"{prefix}-{i}", "churn", "1.2.0", now - 600 + int(i),
                                               r.drop("churned").to_dict(), pred, latency_ms=5.0,
                                               environment="production"))
        actuals[f"{prefix}-{i}"] = label
    store.write(recs)
    store.attach_actuals(actuals)
    store.close()


def test_monitor_fires_then_resolves_through_the_declared_sink(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ASSET_REPO, repo)
    model = repo / "models" / "churn" / "model.yaml"
    model.write_text(model.read_text().replace(
        "monitoring:\n",
        "monitoring:\n  alerts:\n    - {type: webhook, url_env: HOOK_URL, secret_env: HOOK_SECRET}\n"))
    for var in ("MLOPS_PREDICTION_STORE", "GITHUB_STEP_SUMMARY", "MLOPS_ALERT_STATE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOOK_URL", receiver.url + "/hook")
    monkeypatch.setenv("HOOK_SECRET", "s3cret")

    def check(req: Request) -> tuple[int, object]:
        ok = verify_signature("s3cret", req.headers[TIMESTAMP_HEADER.lower()], req.body,
                              req.headers[SIGNATURE_HEADER.lower()])
        return (200, {}) if ok else (401, {})

    receiver.handler = check
    _log(repo, shift=True, accuracy=0.6, prefix="bad")
    assert main(["-C", str(repo), "monitor", "--env", "production"]) == 1
    # one signed notification for the model in the environment, listing the failing checks
    assert len(receiver.requests) == 1
    fired = receiver.requests[0].json()
    assert fired["key"] == "churn/production" and fired["status"] == "firing"
    assert fired["details"]["findings"][0]["check"] == "accuracy"
    assert "notification(s) sent" in capsys.readouterr().err
    assert main(["-C", str(repo), "monitor", "--env", "production"]) == 1
    assert len(receiver.requests) == 1  # the same problems: nothing sent again

    # a healthy window: the group resolves, once
    (repo / ".mlops").mkdir(exist_ok=True)
    for p in repo.glob(".mlops/*.db*"):
        p.unlink()
    _log(repo, shift=False, accuracy=0.97, prefix="good")
    assert main(["-C", str(repo), "monitor", "--env", "production"]) == 0
    later = [r.json() for r in receiver.requests[1:]]
    assert [(m["key"], m["status"]) for m in later] == [("churn/production", "resolved")]
