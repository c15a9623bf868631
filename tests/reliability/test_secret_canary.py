"""Issue 9 item 5: a canary token in every secret the toolkit reads never appears where it
should not: stdout, stderr, the step summary and outputs, written reports, ``.mlops/`` files,
comment and issue bodies, alert payloads (except where the secret must be sent: the
Authorization header to GitHub, the routing key to PagerDuty, the Slack webhook URL itself).

The secrets: ``GITHUB_TOKEN``, ``GH_TOKEN``, ``MLOPS_GATEWAY_TOKEN``, ``SLACK_WEBHOOK_URL``,
``PAGERDUTY_ROUTING_KEY``, the webhook signing secret and a webhook URL with a password,
the MLflow tracking URI password and ``MLFLOW_TRACKING_TOKEN``, and the PostgreSQL
prediction-store URL password. The commands run as workflow steps (``GITHUB_ACTIONS=true``)
on a demo-sized repository: check, plan, validate, monitor with alerts to loopback
receivers, alerts test, comment against the fake GitHub, serve/status/apply against a dead
gateway, and the same with every outside system failing on purpose (receivers answering
401, GitHub 502, MLflow and PostgreSQL unreachable) so that error messages get printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import free_port, postgres_database
from tests.github.fakegithub import FakeGitHub
from tests.reliability.figures import record

ROOT = Path(__file__).resolve().parents[2]
ASSET_REPO = ROOT / "tests" / "assets" / "monitoring" / "repo"


def canary(name: str) -> str:
    return f"CANARY{name}{uuid.uuid4().hex[:16]}"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receivers:
    """Slack, PagerDuty and webhook endpoints on 127.0.0.1 that record what they get."""

    status: int = 200
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    @contextlib.contextmanager
    def serve(self) -> Iterator[Receivers]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                owner.seen.append(Seen(self.path, dict(self.headers), body))
                self.send_response(owner.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "success", "dedup_key": "k"}' if owner.status < 300
                                 else b'{"error": "receiver failing on purpose"}')

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def pg_database() -> Iterator[tuple[str, str]]:
    """(host:port/db of a fresh database, its name); trust auth accepts any password."""
    with postgres_database("mlops_canary") as name:
        yield f"127.0.0.1:5432/{name}", name


def _log_traffic(store_url: str, repo: Path) -> None:
    """Drifted, inaccurate traffic for churn 1.2.0 in production: every alert has a reason to fire."""
    from mlops_actions.monitoring.interface import PredictionRecord
    from mlops_actions.monitoring.store import open_store

    ref = pd.read_csv(repo / "models" / "churn" / "reference.csv")
    rows = ref.sample(200, replace=True, random_state=4).reset_index(drop=True)
    rows["monthly_charges"] = rows["monthly_charges"] + 25
    rng = np.random.default_rng(3)
    now = time.time()
    store = open_store(store_url)
    actuals = {}
    records = []
    for i, r in rows.iterrows():
        label = int(r["churned"])
        features = r.drop("churned").to_dict()
        records.append(PredictionRecord(f"c-{i}", "churn", "1.2.0", now - 600 + int(i), features,
                                        label if rng.random() < 0.6 else 1 - label, latency_ms=5.0,
                                        environment="production"))
        actuals[f"c-{i}"] = label
    store.write(records)
    store.attach_actuals(actuals)
    store.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_no_secret_leaks_anywhere(tmp_path: Path, pg_database: tuple[str, str]) -> None:
    tokens = {name: canary(name) for name in (
        "GITHUB", "GHCLI", "GATEWAY", "SLACK", "PAGERDUTY", "HOOKSECRET", "HOOKPASS", "MLFLOWPASS",
        "MLFLOWTOKEN", "PGPASS")}
    repo = tmp_path / "repo"
    shutil.copytree(ASSET_REPO, repo)
    dead = free_port()
    (repo / "environments" / "production.yaml").write_text(
        f'target: {{type: local, url: "http://127.0.0.1:{dead}"}}\nmodels:\n  churn:\n    version: "1.2.0"\n')
    model = repo / "models" / "churn" / "model.yaml"
    model.write_text(model.read_text().replace("monitoring:\n", (
        "monitoring:\n  alerts:\n    - {type: slack}\n    - {type: pagerduty}\n"
        "    - {type: webhook, url_env: HOOK_URL, secret_env: HOOK_SECRET}\n    - {type: github_issue}\n")))
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "demo"]):
        subprocess.run(["git", "-C", str(repo), *command], check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid",
                            "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.invalid"})
    where, _ = pg_database
    store_url = f"postgresql://postgres:{tokens['PGPASS']}@{where}"
    _log_traffic(store_url, repo)
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    receivers = Receivers()
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    with FakeGitHub() as gh, receivers.serve() as rx:
        gh.state.comments[1] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITHUB_", "MLOPS_"))}
        env.update({
            "PYTHONPATH": str(ROOT), "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "octo/repo",
            "GITHUB_API_URL": gh.url, "GITHUB_TOKEN": tokens["GITHUB"], "GH_TOKEN": tokens["GHCLI"],
            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs),
            "MLOPS_GATEWAY_TOKEN": tokens["GATEWAY"], "MLOPS_PREDICTION_STORE": store_url,
            "SLACK_WEBHOOK_URL": f"{rx.url}/services/T0/B0/{tokens['SLACK']}",
            "PAGERDUTY_ROUTING_KEY": tokens["PAGERDUTY"], "MLOPS_PAGERDUTY_EVENTS_URL": f"{rx.url}/pd",
            "HOOK_URL": f"http://hook:{tokens['HOOKPASS']}@{rx.url.removeprefix('http://')}/hook",
            "HOOK_SECRET": tokens["HOOKSECRET"], "MLFLOW_TRACKING_TOKEN": tokens["MLFLOWTOKEN"],
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
            "MLOPS_ACTIONS_HTTP_BACKOFF": "0.01", "MLOPS_ALERT_STATE": str(repo / ".mlops" / "alerts.json"),
        })
        mlflow_down = {"MLFLOW_TRACKING_URI": f"http://mlflow:{tokens['MLFLOWPASS']}@127.0.0.1:{free_port()}"}
        pg_down = {"MLOPS_PREDICTION_STORE": f"postgresql://postgres:{tokens['PGPASS']}@127.0.0.1:{free_port()}/x"}

        def step(name: str, *args: str, extra: dict[str, str] | None = None) -> None:
            results[name] = subprocess.run([sys.executable, "-m", "mlops_actions", "-C", str(repo), *args],
                                           cwd=repo, env={**env, **(extra or {})}, capture_output=True,
                                           text=True, timeout=180, check=False)

        step("check", "check", "--offline")
        step("plan", "plan", "--no-live", "--markdown", str(tmp_path / "plan.md"))
        step("monitor", "monitor", "--env", "production", "--out", str(repo / "reports"))
        step("comment", "comment", "--kind", "monitor", "--env", "production", "--pr", "1",
             "--body-file", str(repo / "reports" / "monitor-production.md"))
        step("alerts test", "alerts", "test", "--model", "churn")
        # everything outside failing on purpose: the error messages are printed
        rx.status = 401  # refused (a 5xx would be retried with back-off for seconds, same messages)
        gh.fault("POST", r"/issues", 502, times=100)
        gh.fault("GET", r"/issues", 502, times=100)
        step("alerts test, sinks down", "alerts", "test", "--model", "churn")
        (repo / ".mlops" / "alerts.json").unlink(missing_ok=True)
        step("monitor, sinks down", "monitor", "--env", "production")
        step("comment, GitHub down", "comment", "--kind", "monitor", "--env", "production", "--pr", "1",
             "--body-file", str(repo / "reports" / "monitor-production.md"), "--strict")
        step("monitor, PostgreSQL down", "monitor", "--env", "production", extra=pg_down)
        independent = [  # read-only against systems that are down: run three at a time
            ("versions, MLflow down", ("versions", "churn"), mlflow_down),
            ("plan, MLflow down", ("plan", "--live"), mlflow_down),
            ("validate, MLflow down", ("validate", "churn", "--version", "1.2.0"), mlflow_down),
            ("serve, MLflow down", ("serve", "--env", "production", "--port", str(dead)), mlflow_down),
            ("status, gateway down", ("status", "--env", "production"), {}),
            ("apply, gateway down", ("apply", "--env", "production"), mlflow_down)]
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda job: step(job[0], *job[1], extra=job[2]), independent))
        github_bodies = [json.dumps(r.body) for r in gh.requests]
        github_auth = [v for r in gh.requests for k, v in r.headers.items() if k.lower() == "authorization"]

    leaks: list[str] = []

    def scan(where: str, text: str | bytes, allowed: tuple[str, ...] = ()) -> None:
        data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        for name, token in tokens.items():
            if token in data and name not in allowed:
                at = data.index(token)
                leaks.append(f"{name} in {where}: ...{data[max(0, at - 120):at + 40]}...")

    def runner_view(stdout: str) -> str:
        """What the Actions runner shows of a step's stdout: it consumes ``::add-mask::``
        commands (that is how a value gets masked) and never prints them."""
        return "\n".join(line for line in stdout.splitlines() if not line.startswith("::add-mask::"))

    for name, proc in results.items():
        scan(f"{name} stdout", runner_view(proc.stdout))
        scan(f"{name} stderr", proc.stderr)
        assert "Traceback" not in proc.stderr and proc.returncode != 4, (name, proc.stderr[-2000:])
    files = [p for p in [*repo.rglob("*"), summary, outputs, tmp_path / "plan.md"]
             if p.is_file() and ".git" not in p.parts]
    for path in files:
        scan(str(path.relative_to(tmp_path)), path.read_bytes())
    for body in github_bodies:
        scan("a GitHub request body (comment or issue)", body)

    def sink(seen: Seen) -> str:
        if seen.path.startswith("/services/"):
            return "slack"
        return "pagerduty" if seen.path == "/pd" else "webhook"

    for seen in rx.seen:
        sent_to = sink(seen)
        allowed = {"slack": ("SLACK",), "pagerduty": ("PAGERDUTY",), "webhook": ("HOOKPASS",)}[sent_to]
        scan(f"the {sent_to} request body", seen.body, ("PAGERDUTY",) if sent_to == "pagerduty" else ())
        scan(f"the {sent_to} request path and headers", seen.path + json.dumps(seen.headers), allowed)
    kinds = {sink(s) for s in rx.seen}
    failing = sum("down" in name for name in results)
    record("secret-canary", "secrets",
           f"{len(tokens)} secrets set to canary tokens, {len(results)} commands run as workflow steps "
           f"({failing} with outside systems failing on purpose), {len(files)} files, "
           f"{len(github_bodies)} GitHub bodies and {len(rx.seen)} alert deliveries scanned -> "
           f"{len(leaks)} leaks",
           secrets=len(tokens), commands=len(results), files=len(files), github_bodies=len(github_bodies),
           alert_deliveries=len(rx.seen), leaks=len(leaks))
    assert not leaks, "\n".join(leaks[:15])
    assert results["monitor"].returncode == 1, results["monitor"].stdout + results["monitor"].stderr
    assert kinds == {"slack", "pagerduty", "webhook"}, kinds  # every sink really delivered
    # the comment was posted; the issue sink delivered (an issue opened), then failed with
    # GitHub down, so its error path was scanned too
    assert len(gh.state.comments[1]) == 1, results["comment"].stderr[-3000:]
    assert gh.state.issues, results["monitor"].stderr
    assert "github_issue could not deliver" in results["monitor, sinks down"].stderr
    assert github_auth and all(a == f"Bearer {tokens['GITHUB']}" or tokens["GITHUB"] in a
                               for a in github_auth)  # sent where it must be: the header
    for name in ("versions, MLflow down", "serve, MLflow down"):
        assert results[name].returncode in (2, 3), (name, results[name].stderr)


def test_the_scrubbers() -> None:
    """Found by the canary test: MLflow echoes its URI with the password, webhook errors named the
    host with its user:password."""
    from mlops_actions.errors import scrub_credentials
    from mlops_actions.monitoring.alerts._http import redact_url

    text = "API request to http://u:s3cret@127.0.0.1:5000/api failed; postgresql://postgres:pw@db/x too"
    assert scrub_credentials(text) == ("API request to http://u:***@127.0.0.1:5000/api failed; "
                                       "postgresql://postgres:***@db/x too")
    assert scrub_credentials("no url here: a:b@c") == "no url here: a:b@c"
    assert redact_url("https://hook:s3cret@example.invalid/path/token") == "https://example.invalid/..."
