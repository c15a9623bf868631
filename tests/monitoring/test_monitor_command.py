"""``mlops-actions monitor`` end to end: a repo, a SQLite store filled like the gateway does, reports."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_actions.cli import main
from mlops_actions.commands import monitor as monitor_cmd
from mlops_actions.errors import EXIT_NO_DATA
from mlops_actions.monitoring.health import Finding
from mlops_actions.monitoring.store import PredictionRecord, open_store

ASSET_REPO = Path(__file__).parent.parent / "assets" / "monitoring" / "repo"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(ASSET_REPO, dst)
    monkeypatch.delenv("MLOPS_PREDICTION_STORE", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return dst


def _log(repo: Path, *, shift: bool, n: int = 300, version: str = "1.2.0", accuracy: float = 0.95,
         prefix: str = "req") -> None:
    ref = pd.read_csv(repo / "models" / "churn" / "reference.csv")
    rng = np.random.default_rng(3)
    rows = ref.sample(n, replace=True, random_state=4).reset_index(drop=True)
    if shift:
        rows["monthly_charges"] = rows["monthly_charges"] + 25
        rows["plan"] = rng.choice(["basic", "pro", "enterprise", "student"], n, p=[0.2, 0.2, 0.2, 0.4])
    now = time.time()
    store = open_store(None, repo_root=repo)
    recs, actuals = [], {}
    for i, r in rows.iterrows():
        label = int(r["churned"])
        pred = label if rng.random() < accuracy else 1 - label
        feats = r.drop("churned").to_dict()
        recs.append(PredictionRecord(f"{prefix}-{i}", "churn", version, now - 600 + i, feats, pred,
                                     latency_ms=5.0 + (i % 10), environment="production"))
        actuals[f"{prefix}-{i}"] = label
    store.write(recs)
    store.attach_actuals(actuals)
    store.close()


def test_healthy_model_exits_0_and_writes_reports(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False)
    out = repo / "reports"
    assert main(["-C", str(repo), "monitor", "--env", "production", "--out", str(out)]) == 0
    md = capsys.readouterr().out
    assert "### Monitoring: production — ✅ healthy" in md and "| churn | 1.2.0 |" in md
    for ext in ("md", "html", "json"):
        assert (out / f"monitor-production.{ext}").stat().st_size > 200
    payload = json.loads((out / "monitor-production.json").read_text())
    model = payload["models"][0]
    assert payload["healthy"] is True and model["performance"]["metrics"]["accuracy"] > 0.85
    assert model["data_drift"]["n_tested"] == 4  # the label column is not a feature
    html = (out / "monitor-production.html").read_text()
    assert html.count("data:image/png;base64,") == 2


def test_drifted_model_exits_1_worst_first_and_alert_hook_gets_findings(
        repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _log(repo, shift=True, accuracy=0.6)
    received: list[tuple[list[Finding], monitor_cmd.AlertContext]] = []
    monkeypatch.setattr(monitor_cmd, "ALERT_HOOKS", [])
    monitor_cmd.register_alert_hook(lambda f, ctx: received.append((f, ctx)))
    assert main(["-C", str(repo), "monitor", "--env", "production"]) == 1
    md = capsys.readouterr().out
    assert "❌ unhealthy" in md
    worst = md.split("worst first:")[1]
    rows = [[cell.strip().strip("`") for cell in line.strip("|").split("|")]
            for line in worst.splitlines() if line.startswith("| ") and not line.startswith("| check")]
    # worst first: failed checks only here, in the monitor's order (performance, the dataset's
    # drift, the drifted columns by severity, quality), each with its value and limit
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("performance", "accuracy", "❌ failed"), ("data_drift", "*", "❌ failed"),
        ("data_drift", "monthly_charges", "❌ failed"), ("data_drift", "plan", "❌ failed"),
        ("quality", "plan:unseen_categories", "❌ failed")]
    assert float(rows[0][3]) < float(rows[0][4]) == 0.8  # accuracy below its threshold
    assert "'student'" in md  # unseen category named
    findings, ctx = received[0]
    assert ctx.environment == "production" and "unhealthy" in ctx.markdown
    keys = {f.key for f in findings if f.verdict.value == "failed"}
    assert {"production/churn/performance/accuracy", "production/churn/data_drift/monthly_charges",
            "production/churn/quality/plan:unseen_categories"} <= keys


def test_json_output_and_other_version_is_empty_window(repo: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False, version="1.1.0")
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == EXIT_NO_DATA
    payload = json.loads(capsys.readouterr().out)
    m = payload["models"][0]
    assert m["verdict"] == "inconclusive" and m["performance"]["n_predictions"] == 0
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json", "--all-versions"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["performance"]["n_predictions"] == 300


def test_window_excludes_old_rows(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False)
    assert main(["-C", str(repo), "monitor", "--env", "production", "--window", "1s", "--json"]) == 5
    assert json.loads(capsys.readouterr().out)["models"][0]["performance"]["n_predictions"] == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--env", "nope"], "no environment 'nope'"),
    (["--env", "production", "--window", "soon"], "is not a duration"),
    (["--env", "production", "--store", "mysql://x"], "valid schemes"),
    (["--env", "production", "--model", "other"], "not pinned in production"),
])
def test_bad_input_exits_2_with_a_clear_message(repo: Path, capsys: pytest.CaptureFixture[str],
                                                argv: list[str], message: str) -> None:
    assert main(["-C", str(repo), "monitor", *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_reference_is_a_note_not_a_crash(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False)
    code = main(["-C", str(repo), "monitor", "--env", "production", "--reference", str(repo / "nope.csv")])
    out = capsys.readouterr().out
    assert code == 0 and "reference data unusable" in out and "--reference" in out


def test_prediction_drift_against_stored_baseline(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False, accuracy=0.95)
    store = open_store(None, repo_root=repo)
    store.set_baseline("churn", {"predictions": [0] * 270 + [1] * 30}, kind="prediction")
    store.close()
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 1
    model = json.loads(capsys.readouterr().out)["models"][0]
    pdrift = model["prediction_drift"]
    assert pdrift["drifted"] is True and pdrift["method"] == "z"  # 300 labels 0/1 -> Z-test
    assert any(f["kind"] == "prediction_drift" for f in model["findings"])


def test_rows_of_other_environments_are_not_counted(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False)  # tagged production
    store = open_store(None, repo_root=repo)
    store.write([PredictionRecord(f"stg-{i}", "churn", "1.2.0", time.time() - 5, {"tenure": 1.0}, 0,
                                  environment="staging") for i in range(40)])
    store.close()
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["performance"]["n_predictions"] == 300
    main(["-C", str(repo), "monitor", "--env", "production", "--json", "--any-environment"])
    assert json.loads(capsys.readouterr().out)["models"][0]["performance"]["n_predictions"] == 340


def test_untagged_rows_are_used_with_a_note(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(None, repo_root=repo)
    store.write([PredictionRecord(f"u-{i}", "churn", "1.2.0", time.time() - 5, {"tenure": 1.0}, 0)
                 for i in range(10)])
    store.close()
    main(["-C", str(repo), "monitor", "--env", "production", "--json"])
    model = json.loads(capsys.readouterr().out)["models"][0]
    assert model["performance"]["n_predictions"] == 10
    assert any("no rows tagged environment='production'" in n for n in model["notes"])


def test_retention_deletes_old_rows_first(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log(repo, shift=False)  # timestamps from now-600 s to now-300 s
    main(["-C", str(repo), "monitor", "--env", "production", "--json", "--retention", "7m"])
    captured = capsys.readouterr()
    deleted = int(captured.err.split("retention: deleted ")[1].split()[0])
    assert 180 <= deleted <= 200  # older than now - 420 s (plus the seconds the test took)
    assert json.loads(captured.out)["models"][0]["performance"]["n_predictions"] == 300 - deleted
    assert main(["-C", str(repo), "monitor", "--env", "production", "--retention", "forever"]) == 2


def test_variants_are_compared_side_by_side(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    store = open_store(None, repo_root=repo)
    recs = [PredictionRecord(f"v-{i}", "churn", "1.2.0", now - 100 + i * 0.1, {"tenure": 10.0}, 1,
                             latency_ms=5.0, environment="production",
                             variant="stable" if i % 4 else "canary") for i in range(400)]
    store.write(recs)
    store.attach_actuals({r.request_id: (1 if r.variant == "stable" else 0) for r in recs})
    store.close()
    main(["-C", str(repo), "monitor", "--env", "production", "--out", str(repo / "out")])
    md = capsys.readouterr().out
    assert "**churn** by variant (checks and drift per variant):" in md
    assert "| canary | ❌ failed | 100 (100) | 0 |" in md and "| stable | ❌ failed | 300 (300) | 1 |" in md
    assert "<h3>By variant</h3>" in (repo / "out" / "monitor-production.html").read_text()


def _log_variants(repo: Path, *, n_stable: int, n_canary: int, canary_shift: float) -> None:
    """Stable traffic drawn from the reference; a canary whose monthly charges and plans drifted."""
    ref = pd.read_csv(repo / "models" / "churn" / "reference.csv")
    rng = np.random.default_rng(11)
    now = time.time()
    recs, actuals = [], {}
    for variant, n in (("stable", n_stable), ("canary", n_canary)):
        seed = 5 if variant == "stable" else 6
        rows = ref.sample(n, replace=True, random_state=seed).reset_index(drop=True)
        if variant == "canary":
            rows["monthly_charges"] = rows["monthly_charges"] + canary_shift
            rows["plan"] = rng.choice(["basic", "pro", "enterprise"], n, p=[0.1, 0.2, 0.7])
        for i, r in rows.iterrows():
            rid = f"{variant}-{i}"
            label = int(r["churned"])
            recs.append(PredictionRecord(rid, "churn", "1.2.0", now - 900 + int(i) * 0.5,
                                         r.drop("churned").to_dict(), label, latency_ms=5.0,
                                         environment="production", variant=variant))
            actuals[rid] = label
    store = open_store(None, repo_root=repo)
    store.write(recs)
    store.attach_actuals(actuals)
    store.close()


def test_a_drifted_canary_is_not_diluted_by_healthy_stable_traffic(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _log_variants(repo, n_stable=540, n_canary=60, canary_shift=10.0)
    out = repo / "out"
    assert main(["-C", str(repo), "monitor", "--env", "production", "--out", str(out)]) == 1
    md = capsys.readouterr().out
    report = json.loads((out / "monitor-production.json").read_text())["models"][0]
    assert report["checked_per_variant"] is True
    canary, stable = report["variants"]["canary"], report["variants"]["stable"]
    assert canary["data_drift"]["dataset_drift"] is True and canary["verdict"] == "failed"
    assert stable["data_drift"]["dataset_drift"] is False and stable["verdict"] == "passed"
    cols = {c["column"]: c for c in canary["data_drift"]["columns"]}
    assert cols["monthly_charges"]["drifted"] and cols["plan"]["drifted"]
    # all rows together, the canary's shift is diluted below the threshold: why checks run per variant
    overall = {c["column"]: c for c in report["data_drift"]["columns"]}
    assert not overall["monthly_charges"]["drifted"] and report["data_drift"]["dataset_drift"] is False
    assert report["verdict"] == "failed"
    keys = {f["key"] for f in report["findings"]}
    assert "production/churn/data_drift/*@canary" in keys
    assert not any(k.endswith("@stable") for k in keys if "data_drift" in k)
    # the Markdown names the variant of each finding and summarises drift per variant
    assert "| canary: ❌ 4/4 drifted · stable: ✅ 0/4 drifted |" in md
    assert "`monthly_charges @canary`" in md
    html = (out / "monitor-production.html").read_text()
    assert "<h4>Data drift: canary</h4>" in html and "<h4>Data drift: stable</h4>" in html


# --------------------------------------------------------------------------- never passes silently (issue 16)


def test_no_rows_for_a_pinned_model_is_its_own_exit_code_and_a_warning(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert EXIT_NO_DATA == 5
    assert main(["-C", str(repo), "monitor", "--env", "production"]) == EXIT_NO_DATA
    captured = capsys.readouterr()
    assert "No predictions of `churn` 1.2.0 in the window: nothing was checked" in captured.out
    assert "warning: no predictions of churn 1.2.0 in the window" in captured.err


def test_model_yaml_with_another_registered_name_is_monitored_under_its_directory(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the gateway logs rows under the directory (the pin's key); a registered name must not hide them
    path = repo / "models" / "churn" / "model.yaml"
    path.write_text(path.read_text().replace("name: churn", "registered_name: churn-classifier"))
    _log(repo, shift=False)
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["performance"]["n_predictions"] == 300


def test_drift_needs_min_samples_rows_per_variant(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a canary's first minutes: 30 drifted rows beside 540 healthy ones; min_samples is 50
    _log_variants(repo, n_stable=540, n_canary=30, canary_shift=10.0)
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["models"][0]
    canary = report["variants"]["canary"]
    assert canary["data_drift"] is None and canary["verdict"] == "inconclusive"
    messages = [f["message"] for f in report["findings"] if f["variant"] == "canary"]
    assert any(m.startswith("not enough data (n=30 < min_samples 50)") for m in messages)
    assert any("accuracy" in m and "not enough data (n=30" in m for m in messages)


def test_prediction_baseline_of_another_version_is_not_used(repo: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # a canary of 1.2.0 judged against 1.1.0's outputs would "drift" because it is a different model
    _log(repo, shift=False, accuracy=0.95)
    store = open_store(None, repo_root=repo)
    store.set_baseline("churn", {"predictions": [0] * 270 + [1] * 30, "version": "1.1.0"}, kind="prediction")
    store.close()
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["models"][0]
    assert model["prediction_drift"] is None
    assert any("the prediction baseline is of version 1.1.0, not 1.2.0" in n for n in model["notes"])


def test_baseline_cli_sets_the_pinned_versions_baseline_that_monitor_uses(
        repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # before: the prediction-drift baseline could be set only from Python
    assert main(["-C", str(repo), "baseline", "--env", "production", "--model", "churn"]) == 2
    assert "no prediction baseline of churn 1.2.0" in capsys.readouterr().err
    preds = tmp_path / "preds.csv"
    preds.write_text("prediction\n" + "0\n" * 270 + "1\n" * 30)
    assert main(["-C", str(repo), "baseline", "--env", "production", "--model", "churn",
                 "--from-file", str(preds)]) == 0
    assert "churn 1.2.0: prediction baseline set: 300 predictions" in capsys.readouterr().out
    _log(repo, shift=False, accuracy=0.95)
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 1  # as with the Python API
    assert json.loads(capsys.readouterr().out)["models"][0]["prediction_drift"]["drifted"] is True
    # from the gateway's own log: the window just logged becomes the baseline, and nothing drifts
    assert main(["-C", str(repo), "baseline", "--env", "production", "--model", "churn",
                 "--from-window", "1h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "model": "churn", "version": "1.2.0", "n": 300, "source": "the gateway's log over 1h"}
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 0
    assert main(["-C", str(repo), "baseline", "--env", "production", "--model", "churn",
                 "--from-file", str(preds), "--column", "nope"]) == 2
    assert "has no column 'nope'" in capsys.readouterr().err


def test_the_readmes_jq_example_prints_the_row_counts(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # issue 16: the README's `jq '.models[].rows'` printed null (now in docs/troubleshooting.md)
    import re
    import shutil
    import subprocess

    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (Debian package jq)")
    readme = (Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md").read_text()
    [expression] = re.findall(r"monitor --env ENV --json \| jq '([^']+)'", readme)
    _log(repo, shift=False)
    main(["-C", str(repo), "monitor", "--env", "production", "--json"])
    out = subprocess.run([jq, "-c", expression], input=capsys.readouterr().out, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out) == {"model": "churn", "version": "1.2.0", "rows": 300}


def test_a_canarys_rows_are_not_judged_against_the_stable_versions_outputs(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # issue 16's false drift alert: the baseline was taken (Python API, no version) while 1.1.0 was
    # stable; the canary of 1.2.0 (the pin) predicts otherwise, as a new model should
    from mlops_actions.monitoring.model_monitor import ModelMonitor

    _log(repo, shift=False, version="1.1.0", accuracy=0.5)
    store = open_store(None, repo_root=repo)
    monitor = ModelMonitor(store=store)
    assert monitor.set_prediction_baseline("churn") == 300
    assert store.get_baseline("churn", kind="prediction")["versions"] == ["1.1.0"]
    store.close()
    _log(repo, shift=False, version="1.2.0", n=120, accuracy=0.99, prefix="canary")
    assert main(["-C", str(repo), "monitor", "--env", "production", "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["models"][0]
    assert model["prediction_drift"] is None
    assert any("the prediction baseline is of version 1.1.0, not 1.2.0" in n for n in model["notes"])


def test_since_window_ends_when_the_command_starts(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--since T covers [T, start of the command]: run_monitor gets that end as `now`, so the
    seconds it spends importing pandas and scipy before querying do not cut the window's start."""
    seen: dict[str, object] = {}
    real = monitor_cmd.run_monitor

    def slow(*args: object, **kw: object) -> object:
        seen.update(kw)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(monitor_cmd, "run_monitor", slow)
    since = time.time() - 120
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(since))
    main(["-C", str(repo), "monitor", "--env", "production", "--since", iso, "--json"])
    now, window = seen["now"], float(str(seen["window"]).removesuffix("s"))
    assert isinstance(now, float) and now - window == pytest.approx(int(since), abs=1e-3)
