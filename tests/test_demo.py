"""The README's first command, end to end: `./scripts/demo --fast` on the embedded default.

Asserts on the outcomes, not on output text: versions live in each environment,
the broken candidate rolled back, an alert reached the receiver, the PR comments
and reports were written, and no process was left running.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.readme_examples import example

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the demo itself is bounded at 900 s


def _demo_gateways() -> list[str]:
    """Gateways started by a demo of this checkout (the demo puts it first on their PYTHONPATH), so
    that a demo another checkout runs on the same machine at the same time is not counted."""
    found = []
    ours = f"PYTHONPATH={REPO_ROOT.resolve()}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                env = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            mine = any(v == ours or v.startswith(ours + os.pathsep.encode()) for v in env)
            if mine and "mlops_actions serve" in cmd and "--state-dir .mlops/gateway-" in cmd:
                found.append(cmd)
    return found


def _readme_command(start: str) -> str:
    """The line of the README's "Two commands" that starts with ``start``, without its comment."""
    lines = [line.split("#")[0].strip() for line in example("two-commands").splitlines()]
    [command] = [line for line in lines if line.startswith(start)]
    return command


def test_the_readmes_test_command_is_what_ci_runs() -> None:
    ci = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == _readme_command("./scripts/test")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITHUB_"))}
    command = _readme_command("./scripts/demo")
    done = subprocess.run(["bash", "-c", f"{command} --fast --out {out}"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    summary_path = out / "summary.json"
    assert summary_path.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    summary: dict[str, object] = json.loads(summary_path.read_text())
    summary["_exit"] = done.returncode
    summary["_stdout"] = done.stdout
    summary["_out"] = str(out)
    return summary


def test_every_step_ends_as_expected(demo: dict) -> None:
    bad = [(s["title"], s["exit_code"], Path(s["log"]).read_text()[-800:])
           for s in demo["steps"] if not s["ok"]]
    assert bad == []
    assert demo["ok"] is True
    assert demo["_exit"] == 0


def test_candidate_is_live_and_broken_one_was_rolled_back(demo: dict) -> None:
    assert demo["live"]["staging"]["breast_cancer"] == "1.1.0"
    assert demo["live"]["production"]["breast_cancer"] == "1.1.0"
    applies = {s["title"]: s["exit_code"] for s in demo["steps"] if "apply" in s["command"]}
    assert applies["merge promote-1.2.0-staging: apply staging"] == 1  # rolled back
    assert applies["merge promote-1.1.0-production: apply production"] == 0
    validations = {s["title"]: s["exit_code"] for s in demo["steps"] if "validate" in s["command"]}
    assert validations["PR promote-1.2.0-staging: validate"] == 1
    assert validations["PR promote-1.1.0-staging: validate"] == 0


def test_drift_fired_an_alert_to_the_webhook(demo: dict) -> None:
    monitors = {s["title"]: s["exit_code"] for s in demo["steps"] if "monitor" in s["command"]}
    assert monitors.pop("monitor production (A/B test)") in (0, 1)  # see test_the_ab_test_has_a_verdict
    assert monitors == {"monitor production (healthy)": 0,
                        "monitor production (drift injected)": 1}
    assert len(demo["alerts_received"]) >= 1
    assert any("breast_cancer" in json.dumps(alert) for alert in demo["alerts_received"])


def test_pr_comments_and_reports_are_written(demo: dict) -> None:
    out = Path(demo["_out"])
    comment = (out / "pr" / "promote-1.1.0-staging" / "comment.md").read_text()
    assert comment.startswith("<!-- mlops-actions:pr:staging -->")
    for section in ("Plan", "Validation", "Policy", "Staging check"):
        assert f"<b>{section}</b>" in comment
    assert "1.0.0" in comment and "1.1.0" in comment
    assert len(comment) < 65_536
    htmls = list(out.rglob("*.html"))
    assert any("validation" in p.name for p in htmls)
    assert any("monitor" in p.name for p in htmls)
    assert all("data:image/png;base64," in p.read_text() for p in htmls)
    rollback = next(s for s in demo["steps"] if s["command"].startswith("mlops-actions rollback-pr"))
    assert '"1.1.0"' in Path(rollback["log"]).read_text()


def test_no_process_is_left_running(demo: dict) -> None:
    assert _demo_gateways() == []


def test_the_ab_test_has_a_verdict_and_its_winner_is_kept(demo: dict) -> None:
    """1.1.0 against the broken 1.2.0 (shuffled labels) on ~170 rows each: A wins, in one sentence,
    printed and in the summary; conclude's PR keeps 1.1.0 alone, which is what is live after."""
    assert demo["ab_test"].startswith("A (1.1.0) beats B (1.2.0) on accuracy: -"), demo["ab_test"]
    assert f"A/B verdict: {demo['ab_test']}" in demo["_stdout"]
    steps = {s["title"]: s for s in demo["steps"]}
    conclude = steps["conclude the A/B test (the PR it opens, printed)"]
    log = Path(conclude["log"]).read_text()
    assert conclude["exit_code"] == 0 and "-      type: ab_test" in log
    assert steps["apply production (1.1.0 alone)"]["exit_code"] == 0


JUDGED = re.compile(r"^  - (error_rate|latency_ms|accuracy) (High|Low|Pass|NoData) \(", re.M)


def test_deploy_comments_show_the_canary_vs_stable_judgement(demo: dict) -> None:
    """Issue 18: the canary runs with compare_to_stable, and the deploy comment report-deploy
    posts on the merged PR (status --markdown) shows each window's judgement: verdict, score and
    every metric's High/Low/Pass."""
    comments = {title: Path(path) for title, path in demo["comments"].items()}
    good = comments["deploy staging (promote-1.1.0-staging)"].read_text()
    assert good.startswith("<!-- mlops-actions:deploy:staging -->\n### ✅ Deploy to `staging`: success")
    assert "**breast_cancer** 1.1.0: canary vs stable (Kayenta's judge, same window):" in good
    verdict = r"^- \d\d:\d\d:\d\dZ \*\*(passed|inconclusive)\*\*: Canary vs stable: "
    assert re.search(verdict, good, re.M), good
    assert {m[0] for m in JUDGED.findall(good)} >= {"error_rate", "latency_ms"}, good
    broken = comments["deploy staging (promote-1.2.0-staging)"].read_text()
    assert "Deploy to `staging`: failure" in broken and "**RolledBack**" in broken
    assert "canary vs stable" in broken and JUDGED.search(broken), broken
    shown = comments["deploy staging (promote-1.1.0-staging)"]
    assert f"deploy comment on promote-1.1.0-staging, as report-deploy posts it: {shown}" in demo["_stdout"]
    assert re.search(r">   - (error_rate|latency_ms) (High|Low|Pass|NoData) \(", demo["_stdout"])


def test_the_monitor_comment_has_the_ab_verdict_and_table(demo: dict) -> None:
    path = Path(demo["comments"]["monitor production (A/B test)"])
    comment = path.read_text()
    assert comment.startswith("<!-- mlops-actions:ab-test:breast_cancer:production -->\n")
    assert f"> {demo['ab_test']}" in comment
    assert "| metric | role | variant | version | usable rows | value | CI |" in comment
    assert re.search(r"^\| accuracy \| primary \| A \| 1\.1\.0 \| \d+ \| [\d.]+% \| \[", comment, re.M)
    assert f"          > > {demo['ab_test']}" in demo["_stdout"] and str(path) in demo["_stdout"]
