"""Fixtures for gitops: a real local git repository with a base and a PR branch, and an
in-memory registry (the ModelRegistry port's read side) that counts its calls."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlops_actions.errors import RegistryError
from mlops_actions.registry.interface import ModelVersion
from tests.github.fakegithub import FakeGitHub

STAGING = """\
promotion:
  required_approvals: 0
models:
  fraud:
    version: "1.2.0"
  churn:
    version: "0.3.0"
"""

PRODUCTION = """\
promotion:
  from: staging
  required_approvals: 1
models:
  fraud:
    version: "1.1.0"
    strategy:
      type: canary
      steps:
        - set_weight: 10
        - pause: {duration: 30s}
        - set_weight: 100
  churn:
    version: "0.3.0"
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def write(repo: Path, rel: str, text: str) -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: staging + production; the working tree is clean on main."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.invalid")
    git(root, "config", "user.name", "ci")
    git(root, "config", "commit.gpgsign", "false")
    write(root, "environments/staging.yaml", STAGING)
    write(root, "environments/production.yaml", PRODUCTION)
    commit_all(root, "initial pins")
    return root


def promote_in_production(repo: Path, version: str, branch: str = "pr") -> str:
    """Check out a PR branch that moves fraud in production to ``version``; returns its sha."""
    git(repo, "checkout", "-q", "-b", branch)
    text = (repo / "environments/production.yaml").read_text()
    write(repo, "environments/production.yaml", text.replace('"1.1.0"', f'"{version}"', 1))
    return commit_all(repo, f"promote fraud {version} to production")


@dataclass
class FakeRegistry:
    """alias -> semver per model, versions per model; counts calls like HTTP requests."""

    models: dict[str, dict[str, str]] = field(default_factory=dict)
    versions: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    calls: int = 0

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Like the MLflow adapter: every version with its aliases and tags; [] when unknown."""
        self.calls += 1
        if name == "broken":
            raise RegistryError("MLflow at http://127.0.0.1:1 is unreachable")
        aliases = self.models.get(name, {})
        return [ModelVersion(name, v, str(i + 1), f"runs:/x/{v}", tags=self.tags.get((name, v), {}),
                             aliases=tuple(a for a, av in aliases.items() if av == v))
                for i, v in enumerate(self.versions.get(name, []))]


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry(
        models={"fraud": {"staging": "1.2.0", "production": "1.1.0"},
                "churn": {"staging": "0.3.0", "production": "0.3.0"}},
        versions={"fraud": ["1.0.0", "1.1.0", "1.2.0"], "churn": ["0.3.0"]},
    )


WEBHOOKS = Path(__file__).parent.parent / "assets" / "github" / "webhooks"


def adapt_pr_event(tmp: Path, *, base_sha: str, head_sha: str, number: int = 7,
                   labels: tuple[str, ...] = (), author: str = "alice",
                   file: str = "pull_request.opened.0.json", repository: str = "octo/repo") -> Path:
    """A real webhook payload, adapted to the test repository; returns its path."""
    import json

    payload = json.loads((WEBHOOKS / file).read_text())
    pr = payload["pull_request"]
    pr["number"] = payload["number"] = number
    pr["base"]["sha"], pr["head"]["sha"] = base_sha, head_sha
    pr["base"]["ref"], pr["head"]["ref"] = "main", "pr"
    pr["base"]["repo"]["full_name"] = pr["head"]["repo"]["full_name"] = repository
    payload["repository"]["full_name"] = repository
    pr["user"]["login"] = author
    pr["labels"] = [{"name": name, "id": i} for i, name in enumerate(labels)]
    path = tmp / f"event-{file}"
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture(autouse=True)
def _fresh_annotation_counts() -> None:
    """Each CLI run in a test is one workflow step: start its annotation counts at zero."""
    from mlops_actions.github import actions

    actions.reset_annotation_counts()


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    """GitHub on loopback; any token is accepted (as an app token)."""
    with FakeGitHub() as server:
        yield server


def actions_env(monkeypatch: pytest.MonkeyPatch, gh: FakeGitHub, event: Path, tmp: Path,
                name: str = "pull_request", token: str = "ghs_policyTOKEN") -> None:
    """The variables Actions sets for a step of a ``name`` run started by ``event``."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", name)
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/repo")
    monkeypatch.setenv("GITHUB_API_URL", gh.url)
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp / "output"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp / "summary"))
