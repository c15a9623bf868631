"""``mlops-actions demo``: the whole loop on the embedded default, in a throwaway repository.

Every step runs the real CLI as a workflow step would (a subprocess in the
throwaway repository), against real parts: MLflow on SQLite, two gateways on
127.0.0.1 (staging and production), the SQLite prediction store, a webhook
receiver on 127.0.0.1 for alerts. Nothing is faked; what a step printed is kept
under ``<out>/logs/``. The demo stops every process it started, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_actions.errors import ConfigError, ExternalError
from mlops_actions.registry.interface import LOCAL_STATE

__all__ = ["DemoResult", "DemoSettings", "run_demo"]

MODEL = "breast_cancer"  # the model whose promotions the demo walks through


@dataclass(frozen=True)
class DemoSettings:
    """Timings: the CI test uses ``fast()``; people get the default, which reads better."""

    interval: str = "2s"  # analysis interval
    count: int = 2  # measurements per analysis step
    min_samples: int = 10
    traffic_rps: float = 60.0  # replayed requests per second per gateway
    apply_timeout: float = 180.0

    @classmethod
    def fast(cls) -> DemoSettings:
        # 2s: at 25% the canary gets enough of the replayed traffic for the canary-vs-stable
        # judge to have rows on both sides (1s windows held about 5 canary rows under load)
        return cls(interval="2s", count=1, min_samples=5, traffic_rps=80.0, apply_timeout=120.0)


@dataclass
class Step:
    title: str
    command: str
    exit_code: int
    expected: tuple[int, ...]
    seconds: float
    log: Path
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code in self.expected


@dataclass
class DemoResult:
    out: Path
    steps: list[Step] = field(default_factory=list)
    alerts_received: list[dict[str, Any]] = field(default_factory=list)
    live: dict[str, dict[str, str]] = field(default_factory=dict)  # env -> model -> version
    reports: list[Path] = field(default_factory=list)
    ab_sentence: str = ""  # the A/B test's verdict, as monitor words it
    comments: dict[str, Path] = field(default_factory=dict)  # title -> PR comment rendered as posted

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1: keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with contextlib.suppress(ValueError):
                    outer.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"


class Demo:
    def __init__(self, source: Path, out: Path, settings: DemoSettings) -> None:
        self.source = source
        self.out = out
        self.settings = settings
        self.work = Path(tempfile.mkdtemp(prefix="mlops-demo-"))
        self.repo = self.work / "repo"
        self.result = DemoResult(out=out)
        self.token = secrets.token_hex(16)
        self.ports = {"staging": _free_port(), "production": _free_port()}
        self.gateways: dict[str, subprocess.Popen[bytes]] = {}
        self.receiver = _Receiver()
        self.started = time.monotonic()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("MLFLOW_", "GITHUB_", "MLOPS_"))}
        self.env.update({
            "MLOPS_GATEWAY_TOKEN": self.token,
            "MLOPS_DEMO_WEBHOOK_URL": self.receiver.url,
            "PYTHONUNBUFFERED": "1",
            # the subprocesses run this very copy of the toolkit, installed or not
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parent.parent)]
                + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
            "GIT_AUTHOR_NAME": "mlops-actions demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
            "GIT_COMMITTER_NAME": "mlops-actions demo",
            "GIT_COMMITTER_EMAIL": "demo@example.invalid",
        })

    # ----------------------------------------------------------------- output

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def run(self, title: str, *args: str, expect: Sequence[int] = (0,), note: str = "") -> Step:
        """Run ``mlops-actions ARGS`` in the throwaway repository, as a workflow step would."""
        name = f"{len(self.result.steps) + 1:02d}-{args[0]}"
        log = self.out / "logs" / f"{name}.log"
        command = "mlops-actions " + " ".join(args)
        t0 = time.monotonic()
        with log.open("wb") as sink:
            done = subprocess.run([sys.executable, "-m", "mlops_actions", *args], cwd=self.repo,
                                  env=self.env, stdout=sink, stderr=subprocess.STDOUT, check=False)
        step = Step(title, command, done.returncode, tuple(expect), time.monotonic() - t0, log, note)
        self.result.steps.append(step)
        mark = "ok " if step.ok else "!! "
        self.say(f"{mark}{title}: `{command}` -> exit {done.returncode} ({step.seconds:.1f}s)")
        if not step.ok:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            for line in tail:
                print(f"          | {line}")
        return step

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.repo, env=self.env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise ExternalError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    # ----------------------------------------------------------------- repository

    def prepare_repo(self) -> None:
        for part in ("models", "environments"):
            if not (self.source / part).is_dir():
                raise ConfigError(f"{self.source / part} not found: run the demo from a checkout of "
                                  "mlops-actions, or pass -C DIR pointing at one")
        self.repo.mkdir(parents=True)
        shutil.copytree(self.source / "models", self.repo / "models",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(self.source / "environments", self.repo / "environments")
        (self.repo / ".gitignore").write_text("\n".join([*LOCAL_STATE, "reports/", "__pycache__/", ""]))
        # The demo's own timings and ports; alerts to the local receiver.
        for env, port in self.ports.items():
            path = self.repo / "environments" / f"{env}.yaml"
            doc = yaml.safe_load(path.read_text())
            doc["target"] = {"type": "local", "url": f"http://127.0.0.1:{port}",
                             "token_env": "MLOPS_GATEWAY_TOKEN"}
            doc.setdefault("promotion", {})["require_staging_check"] = env == "staging"
            doc["models"][MODEL]["strategy"] = self.canary()
            path.write_text(_dump(doc))
        spec_path = self.repo / "models" / MODEL / "model.yaml"
        spec = yaml.safe_load(spec_path.read_text())
        spec["monitoring"]["min_samples"] = 20
        spec["monitoring"]["alerts"] = [{"type": "webhook", "url_env": "MLOPS_DEMO_WEBHOOK_URL"}]
        spec_path.write_text(_dump(spec))
        self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-qm", "Declare models and environments")

    def canary(self) -> dict[str, Any]:
        s = self.settings
        analysis = {"interval": s.interval, "count": s.count, "failure_limit": 0,
                    "min_samples": s.min_samples, "compare_to_stable": True,
                    "metrics": [{"name": "error_rate", "max": 0.01},
                                {"name": "latency_p95_ms", "max": 250},
                                # the candidate misclassifies 2 of the 171 test rows: both in a
                                # canary's first dozen rows is 0.83, which 0.85 failed on noise
                                # (seen in a loaded CI run); shuffled labels score about 0.6
                                {"name": "accuracy", "min": 0.8}]}
        return {"type": "canary", "steps": [{"set_weight": 25}, {"analysis": analysis},
                                            {"set_weight": 50}, {"analysis": analysis}]}

    def set_pin(self, env: str, version: str) -> None:
        """Edit the pin as a person would: one line changes, comments stay."""
        path = self.repo / "environments" / f"{env}.yaml"
        lines = path.read_text().splitlines(keepends=True)
        inside = False
        for i, line in enumerate(lines):
            if line.rstrip() == f"  {MODEL}:":
                inside = True
            elif inside and line.startswith("    version:"):
                lines[i] = f'    version: "{version}"\n'
                break
        else:
            raise ConfigError(f"no pin of {MODEL} found in {path}")
        path.write_text("".join(lines))

    # ----------------------------------------------------------------- gateways and traffic

    def start_gateway(self, env: str) -> None:
        log = (self.out / "logs" / f"gateway-{env}.log").open("ab")
        self.gateways[env] = subprocess.Popen(
            [sys.executable, "-m", "mlops_actions", "serve", "--env", env,
             "--port", str(self.ports[env]), "--state-dir", f".mlops/gateway-{env}"],
            cwd=self.repo, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready(env)
        self.say(f"gateway {env} ready on 127.0.0.1:{self.ports[env]}")

    def wait_ready(self, env: str, timeout: float = 90.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.ports[env]}/readyz"
        while time.monotonic() < deadline:
            if self.gateways[env].poll() is not None:
                raise ExternalError(f"the {env} gateway exited with {self.gateways[env].returncode}; "
                                    f"see {self.out / 'logs' / f'gateway-{env}.log'}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise ExternalError(f"the {env} gateway was not ready after {timeout:.0f}s")

    def _send(self, session: Any, env: str, row: list[float], label: Any,
              columns: list[str], counts: dict[str, int]) -> None:
        """One scoring request, then its label as late feedback (as a labelling job would)."""
        import requests

        base = f"http://127.0.0.1:{self.ports[env]}"
        body = {"dataframe_split": {"columns": columns, "data": [row]}}
        try:
            answer = session.post(f"{base}/models/{MODEL}/invocations", json=body, timeout=5)
            counts["sent"] += 1
            if answer.status_code != 200:
                counts["errors"] += 1
                return
            session.post(f"{base}/feedback", timeout=5,
                         json={"request_id": answer.headers["X-Request-Id"], "actual": label})
            counts["labelled"] += 1
        except requests.RequestException:
            counts["errors"] += 1

    def _test_rows(self, shift: float = 0.0) -> tuple[list[str], list[list[float]], list[Any]]:
        import pandas as pd

        test = pd.read_csv(self.repo / "models" / MODEL / "data" / "test.csv")
        labels = [int(v) for v in test.pop("target")]
        if shift:
            test = test * (1.0 + shift)
        return list(test.columns), test.to_numpy().tolist(), labels

    @contextlib.contextmanager
    def traffic(self, env: str) -> Iterator[dict[str, int]]:
        """Replay the test rows in a loop while the body runs (live traffic during a rollout)."""
        import requests

        columns, rows, labels = self._test_rows()
        stop = threading.Event()
        counts = {"sent": 0, "errors": 0, "labelled": 0}

        def loop() -> None:
            session = requests.Session()
            i = 0
            while not stop.is_set():
                self._send(session, env, rows[i % len(rows)], labels[i % len(rows)], columns, counts)
                i += 1
                stop.wait(1.0 / self.settings.traffic_rps)

        thread = threading.Thread(target=loop, name=f"traffic-{env}", daemon=True)
        thread.start()
        try:
            yield counts
        finally:
            stop.set()
            thread.join(timeout=10)

    def replay_once(self, env: str, *, shift: float = 0.0) -> dict[str, int]:
        """Send every test row exactly once (a monitoring window without repeated rows)."""
        import requests

        columns, rows, labels = self._test_rows(shift)
        counts = {"sent": 0, "errors": 0, "labelled": 0}
        with requests.Session() as session:
            for row, label in zip(rows, labels, strict=True):
                self._send(session, env, row, label, columns, counts)
        return counts

    def wait_logged(self, env: str, since: float, expected: int, timeout: float = 60.0) -> None:
        """Wait until the gateway's batched prediction log holds ``expected`` rows of ``env`` since
        ``since``, each with its label (a monitor run before that sees part of the window: under
        load a fixed 3 s wait once left 29 of 171 rows)."""
        from mlops_actions.monitoring.store.sqlite import SQLiteStore

        store = SQLiteStore(self.repo / ".mlops" / "predictions.db")
        deadline = time.monotonic() + timeout
        rows = labelled = 0
        try:
            while time.monotonic() < deadline:
                frame = store.query(MODEL, environment=env, since=since)
                rows, labelled = len(frame), int(frame["actual"].notna().sum()) if len(frame) else 0
                if rows >= expected and labelled >= expected:
                    return
                time.sleep(0.2)
        finally:
            store.close()
        self.say(f"warning: after {timeout:.0f}s the prediction log of {env} has {rows} rows "
                 f"({labelled} labelled) of the {expected} sent")

    def live_versions(self, env: str) -> dict[str, str]:
        import requests

        answer = requests.get(f"http://127.0.0.1:{self.ports[env]}/admin/status", timeout=5,
                              headers={"Authorization": f"Bearer {self.token}"})
        answer.raise_for_status()
        routes = answer.json().get("routes", {})
        items = routes.items() if isinstance(routes, dict) else ((r["model"], r) for r in routes)
        return {model: str(route.get("stable")) for model, route in items}

    def stop(self) -> None:
        for gateway in self.gateways.values():
            if gateway.poll() is None:
                gateway.send_signal(signal.SIGTERM)
        for gateway in self.gateways.values():
            try:
                gateway.wait(timeout=20)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait()
        self.receiver.shutdown()
        self.receiver.server_close()

    # ----------------------------------------------------------------- the story

    def pr_stage(self, env: str, version: str, branch: str, *, expect_validate: int = 0) -> None:
        reports = self.out / "pr" / branch
        reports.mkdir(parents=True, exist_ok=True)
        self.git("checkout", "-q", "-b", branch, "main")
        self.set_pin(env, version)
        self.git("commit", "-qam", f"Promote {MODEL} {version} to {env}")
        self.run(f"PR {branch}: static checks", "check")
        self.run(f"PR {branch}: plan", "plan", "--base", "main", "--head", "HEAD", "--env", env,
                 "--markdown", str(reports / "plan.md"), expect=(1,))
        self.run(f"PR {branch}: validate", "validate", MODEL, "--env", env, "--baseline-env", env,
                 "--out", str(reports / "validate"), "--markdown", str(reports / "validate.md"),
                 expect=(expect_validate,))
        self.run(f"PR {branch}: policy", "policy", "--base", "main", "--head", "HEAD", "--env", env,
                 "--markdown", str(reports / "policy.md"), expect=(0, 1))
        if env == "staging":
            self.run(f"PR {branch}: staging check", "staging-check", "--env", env, "--rows", "50",
                     "--markdown", str(reports / "staging-check.md"), expect=(0,))
        comment = render_pr_comment(env, branch, reports)
        (reports / "comment.md").write_text(comment)
        self.result.reports.append(reports / "comment.md")
        self.say(f"PR comment rendered as it would be posted: {reports / 'comment.md'}")

    def merge_and_apply(self, env: str, branch: str, *, expect: int = 0) -> None:
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
        with self.traffic(env) as counts:
            applied = self.run(f"merge {branch}: apply {env}", "apply", "--env", env, "--wait", "--timeout",
                               str(int(self.settings.apply_timeout)), expect=(expect,))
        self.say(f"traffic to {env} during the rollout: {counts['sent']} requests, "
                 f"{counts['errors']} errors, {counts['labelled']} labelled")
        reports = self.out / "pr" / branch
        status = reports / "status.md"
        self.run(f"{env}: status", "status", "--env", env, "--markdown", str(status))
        self.deploy_comment(env, branch, applied.exit_code, status)

    def deploy_comment(self, env: str, branch: str, exit_code: int, status: Path) -> None:
        """The deploy comment on the merged PR, as deploy.yml's report-deploy posts it: the outcome,
        then `status --markdown` (routes, the rollout, the canary-vs-stable judgements)."""
        from mlops_actions.github.rest import deploy_comment, sticky_body

        body = status.read_text() if status.is_file() else "status not available"
        state = "success" if exit_code == 0 else "failure"
        text = sticky_body("deploy", env, deploy_comment(env, state, self.git("rev-parse", "HEAD").strip(),
                                                         None, body))
        path = status.parent / "deploy-comment.md"
        path.write_text(text)
        self.result.comments[f"deploy {env} ({branch})"] = path
        self.say(f"deploy comment on {branch}, as report-deploy posts it: {path}")
        self.show(text, lambda line: line.startswith(("### ", "- ", "  - ")))

    def show(self, text: str, keep: Any) -> None:
        """The lines of a rendered comment worth seeing on the terminal."""
        for line in text.splitlines():
            if keep(line):
                print(f"          > {line}", flush=True)

    def execute(self) -> DemoResult:
        s = self.say
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        self.receiver_thread = threading.Thread(target=self.receiver.serve_forever, daemon=True)
        self.receiver_thread.start()
        s(f"throwaway repository: {self.repo}; reports: {self.out}")
        self.prepare_repo()

        s("1/8 train and register the examples: 1.0.0 (baseline), 1.1.0 (candidate), "
          "1.2.0 (broken: shuffled labels)")
        self.train()
        self.run("static checks of the declared state", "check")
        for env in ("staging", "production"):
            self.start_gateway(env)
            self.run(f"apply {env} (the initial 1.0.0 pins)", "apply", "--env", env, "--wait")

        s("2/8 pull request: promote 1.1.0 to staging")
        self.pr_stage("staging", "1.1.0", "promote-1.1.0-staging")
        s("3/8 merge: canary rollout of 1.1.0 on staging, gated by analysis on live traffic")
        self.merge_and_apply("staging", "promote-1.1.0-staging")

        s("4/8 pull request and merge: promote 1.1.0 to production")
        self.pr_stage("production", "1.1.0", "promote-1.1.0-production")
        self.merge_and_apply("production", "promote-1.1.0-production")

        s("5/8 monitor production: healthy traffic, then traffic with injected drift")
        self.monitor()

        s("6/8 A/B test in production: 1.1.0 (A) against the broken 1.2.0 (B), half the traffic "
          "each; monitor judges it, conclude keeps the winner alone")
        self.ab_test()

        s("7/8 the broken candidate: validation fails on the PR; merged anyway, its canary "
          "is rolled back automatically")
        self.pr_stage("staging", "1.2.0", "promote-1.2.0-staging", expect_validate=1)
        self.merge_and_apply("staging", "promote-1.2.0-staging", expect=1)
        self.run("rollback PR that restores the last good pin", "rollback-pr", "--model", MODEL,
                 "--env", "staging", "--dry-run", "--reason", "canary rolled back by analysis")

        s("8/8 summary")
        for env in ("staging", "production"):
            self.result.live[env] = self.live_versions(env)
        self.result.alerts_received = list(self.receiver.received)
        self.result.reports.extend(sorted(self.out.rglob("*.html")))
        (self.out / "summary.md").write_text(render_summary(self.result))
        (self.out / "summary.json").write_text(json.dumps(summary_json(self.result), indent=2))
        return self.result

    def train(self) -> None:
        log = self.out / "logs" / "train.log"
        code = ("import sys; from mlops_actions.examples import train_all\n"
                "for variant in ('baseline', 'candidate'):\n"
                "    for key, v in train_all('.', variant=variant).items():\n"
                "        print(key, variant, v.version, flush=True)\n"
                f"v = train_all('.', variant='broken', keys=['{MODEL}'])\n"
                "print(v)\n")
        t0 = time.monotonic()
        with log.open("wb") as sink:
            done = subprocess.run([sys.executable, "-c", code], cwd=self.repo, env=self.env,
                                  stdout=sink, stderr=subprocess.STDOUT, check=False)
        step = Step("train and register", "python -c 'train_all(...)'", done.returncode, (0,),
                    time.monotonic() - t0, log)
        self.result.steps.append(step)
        self.say(f"{'ok ' if step.ok else '!! '}trained and registered 7 versions "
                 f"({step.seconds:.1f}s)")
        if not step.ok:
            raise ExternalError(f"training failed; see {log}")
        if self.git("status", "--porcelain").strip():
            self.git("add", "-A")
            self.git("commit", "-qm", "Training data splits")

    def monitor(self) -> None:
        out = self.out / "monitor"
        for label, shift, expect in (("healthy", 0.0, 0), ("drift injected", 0.6, 1)):
            time.sleep(1.0)  # the window below starts after the previous phase's traffic
            started = time.time()
            since = datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat()
            counts = self.replay_once("production", shift=shift)
            self.wait_logged("production", started, counts["sent"] - counts["errors"])
            self.say(f"{label}: replayed the {counts['sent']} test rows once"
                     + (f", features scaled by {1 + shift:g}" if shift else "")
                     + f" ({counts['errors']} errors)")
            self.run(f"monitor production ({label})", "monitor", "--env", "production",
                     "--model", MODEL, "--since", since,
                     "--out", str(out / label.split()[0]), expect=(expect,))
        self.say(f"alerts received by the webhook receiver: {len(self.receiver.received)}")


    def monitor_comment(self, body: Path) -> None:
        """The A/B test's analysis as the sticky comment the scheduled monitor posts on the PR that
        started the test: `monitor --ab-comments DIR` wrote ``body`` (DIR/MODEL.md), and `comment
        --kind ab-test:MODEL --env production --pin MODEL --body-file DIR/MODEL.md` posts it."""
        from mlops_actions.github.rest import sticky_body

        if not body.is_file():
            self.say(f"no A/B comment at {body}: no monitor comment")
            return
        path = self.out / "pr" / "ab-test-production" / "monitor-comment.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sticky_body(f"ab-test:{MODEL}", "production", body.read_text()))
        self.result.comments["monitor production (A/B test)"] = path
        self.say(f"monitor comment on the A/B test's PR, as the scheduled monitor posts it: {path}")
        self.show(path.read_text(),
                  lambda line: line.startswith(("> ", "| accuracy ", f"**{MODEL}** A/B")))

    def ab_test(self) -> None:
        """Pin production as an A/B test, replay the test rows through it, let monitor word the
        verdict, print the PR conclude would open, then merge that change and apply it."""
        from mlops_actions.gitops.propose import PinChange, edit

        path = self.repo / "environments" / "production.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["models"][MODEL]["strategy"] = {"type": "ab_test", "version_b": "1.2.0", "traffic_split": 0.5}
        path.write_text(_dump(doc))
        self.git("commit", "-qam", f"A/B test {MODEL}: 1.1.0 against 1.2.0 in production")
        self.run("apply production (A/B test 1.1.0 vs 1.2.0)", "apply", "--env", "production", "--wait",
                 "--timeout", str(int(self.settings.apply_timeout)))
        time.sleep(1.0)  # the window below starts after the earlier phases' traffic
        started = time.time()
        since = datetime.datetime.now(datetime.UTC).isoformat()
        sent = errors = 0
        for _ in range(2):  # each test row twice: about 170 labelled rows per variant
            counts = self.replay_once("production")
            sent, errors = sent + counts["sent"], errors + counts["errors"]
        self.wait_logged("production", started, sent - errors)
        self.say(f"A/B test: replayed the test rows twice, {sent} requests ({errors} errors)")
        out = self.out / "monitor" / "ab"
        # exit 1 is possible: with ~170 rows a guardrail (latency) can differ by chance
        self.run("monitor production (A/B test)", "monitor", "--env", "production", "--model", MODEL,
                 "--since", since, "--out", str(out), "--ab-comments", str(out / "ab-comments"),
                 expect=(0, 1))
        report_path = out / "monitor-production.json"
        report = (json.loads(report_path.read_text())["models"][0].get("ab_test")
                  if report_path.is_file() else None)
        self.result.ab_sentence = report["sentence"] if report else "(no A/B analysis was written)"
        self.say(f"A/B verdict: {self.result.ab_sentence}")
        self.monitor_comment(out / "ab-comments" / f"{MODEL}.md")
        # conclude measures the window back from its own start, seconds later under load (no
        # --since there): 8 s of slack; A's rows from before the test are left out by the analysis
        window = f"{time.time() - started + 8:.0f}s"
        self.run("conclude the A/B test (the PR it opens, printed)", "conclude", "--env", "production",
                 "--model", MODEL, "--window", window, "--dry-run")
        winner = (report or {}).get("winner_version")
        if winner:  # merge what the conclude PR changes: the winner alone, then apply it
            change = PinChange(env="production", model=MODEL, version=str(winner), branch="", title="",
                               body="", only=True)
            path.write_text(edit(path.read_text(), change))
            self.git("commit", "-qam", f"Conclude the A/B test of {MODEL} in production: keep {winner}")
            self.run(f"apply production ({winner} alone)", "apply", "--env", "production", "--wait",
                     "--timeout", str(int(self.settings.apply_timeout)))


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value shared twice out in full: the toolkit's loader refuses aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    quoted = value[:1].isdigit()  # versions and the like stay strings: "1.0.0"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if quoted else None)


_NoAliasDumper.add_representer(str, _represent_str)


def _dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False)


def render_pr_comment(env: str, branch: str, reports: Path) -> str:
    """The sticky PR comment, as the workflow would post it (one per environment)."""
    parts = [f"<!-- mlops-actions:pr:{env} -->", f"## mlops-actions: `{branch}` -> {env}", ""]
    for name, title in (("plan.md", "Plan"), ("validate.md", "Validation"), ("policy.md", "Policy"),
                        ("staging-check.md", "Staging check")):
        path = reports / name
        if path.is_file():
            parts += [f"<details open><summary><b>{title}</b></summary>", "",
                      path.read_text().strip(), "", "</details>", ""]
    return "\n".join(parts)[:65_000]


def render_summary(result: DemoResult) -> str:
    lines = ["# mlops-actions demo", "", "| step | command | exit | expected | time |",
             "|---|---|---|---|---|"]
    for s in result.steps:
        mark = "ok" if s.ok else "**unexpected**"
        lines.append(f"| {s.title} | `{s.command}` | {s.exit_code} ({mark}) | "
                     f"{'/'.join(map(str, s.expected))} | {s.seconds:.1f}s |")
    lines += ["", "## Live versions", ""]
    for env, models in result.live.items():
        lines.append(f"- **{env}**: " + ", ".join(f"{m} {v}" for m, v in sorted(models.items())))
    if result.ab_sentence:
        lines += ["", "## A/B test", "", f"> {result.ab_sentence}"]
    if result.comments:
        lines += ["", "## PR comments (rendered as the workflows post them)", ""]
        lines += [f"- {title}: {path}" for title, path in result.comments.items()]
    lines += ["", f"## Alerts received: {len(result.alerts_received)}", ""]
    lines += ["## Reports", ""] + [f"- {p}" for p in result.reports]
    return "\n".join(lines) + "\n"


def summary_json(result: DemoResult) -> dict[str, Any]:
    """What the end-to-end test asserts on: every step's outcome, live versions, alerts."""
    return {
        "ok": result.ok,
        "steps": [{"title": s.title, "command": s.command, "exit_code": s.exit_code,
                   "expected": list(s.expected), "ok": s.ok, "seconds": round(s.seconds, 2),
                   "log": str(s.log)} for s in result.steps],
        "live": result.live,
        "ab_test": result.ab_sentence,
        "comments": {title: str(path) for title, path in result.comments.items()},
        "alerts_received": result.alerts_received,
        "reports": [str(p) for p in result.reports],
    }


def run_demo(source: Path, out: Path, settings: DemoSettings | None = None,
             keep: bool = False) -> DemoResult:
    demo = Demo(source.resolve(), out.resolve(), settings or DemoSettings())
    try:
        return demo.execute()
    finally:
        demo.stop()
        if not keep:
            shutil.rmtree(demo.work, ignore_errors=True)
