"""A fork run's pr-info artifact is data: shape-checked, then believed only when GitHub agrees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.errors import ConfigError
from mlops_actions.github.forks import MAX_INFO_BYTES, read_pr_info, verify_pr
from mlops_actions.github.rest import GitHubClient
from tests.github.fakegithub import FakeGitHub, example

HEAD, BASE, OTHER = "a" * 40, "b" * 40, "c" * 40


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        _, pr = example("/repos/{owner}/{repo}/pulls", "post")
        pr.update(number=7, state="open")
        pr["head"] = dict(pr["head"], sha=HEAD, repo=dict(pr["head"]["repo"], full_name="outsider/repo"))
        pr["base"] = dict(pr["base"], sha=BASE)
        server.state.pulls.append(pr)
        yield server


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "pr-info.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def client(gh: FakeGitHub) -> GitHubClient:
    return GitHubClient("octo/repo", "t0ken", api_url=gh.url, sleep=lambda s: None)


@pytest.mark.parametrize("data, message", [
    ("not json", "not JSON"),
    ([], "exactly the keys"),
    ({"pr": 7, "head_sha": HEAD}, "exactly the keys"),
    ({"pr": 7, "head_sha": HEAD, "base_sha": BASE, "extra": 1}, "exactly the keys"),
    ({"pr": "7", "head_sha": HEAD, "base_sha": BASE}, "not a PR number"),
    ({"pr": True, "head_sha": HEAD, "base_sha": BASE}, "not a PR number"),
    ({"pr": 7, "head_sha": "main", "base_sha": BASE}, "head_sha is not a commit SHA"),
    ("{" + " " * MAX_INFO_BYTES + "}", "more than 4096"),
])
def test_malformed_artifacts_are_refused(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_pr_info(write(tmp_path, data))


def test_a_claim_github_confirms(gh: FakeGitHub, tmp_path: Path) -> None:
    claim = read_pr_info(write(tmp_path, {"pr": 7, "head_sha": HEAD, "base_sha": OTHER}))
    pr = verify_pr(client(gh), claim, run_head_sha=HEAD, run_head_repository="outsider/repo")
    assert (pr.number, pr.head_sha, pr.base_sha) == (7, HEAD, BASE)  # the base from GitHub, not the file


@pytest.mark.parametrize("claim_head, run_head, run_repo, message", [
    (HEAD, OTHER, "outsider/repo", "the run ran on cccccccccccc"),  # names a PR the run was not for
    (OTHER, HEAD, "outsider/repo", "the run ran on"),  # the file lies about the head
    (HEAD, HEAD, "someone/else", "comes from outsider/repo, the run from someone/else"),
])
def test_a_claim_github_contradicts_is_refused(gh: FakeGitHub, tmp_path: Path, claim_head: str,
                                               run_head: str, run_repo: str, message: str) -> None:
    claim = read_pr_info(write(tmp_path, {"pr": 7, "head_sha": claim_head, "base_sha": BASE}))
    with pytest.raises(ConfigError, match=message):
        verify_pr(client(gh), claim, run_head_sha=run_head, run_head_repository=run_repo)


def test_a_closed_pr_is_refused(gh: FakeGitHub, tmp_path: Path) -> None:
    gh.state.pulls[0]["state"] = "closed"
    claim = read_pr_info(write(tmp_path, {"pr": 7, "head_sha": HEAD, "base_sha": BASE}))
    with pytest.raises(ConfigError, match="#7 is closed, not open"):
        verify_pr(client(gh), claim, run_head_sha=HEAD, run_head_repository="outsider/repo")


def test_pr_info_command_writes_the_confirmed_outputs(gh: FakeGitHub, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "github_output"
    for key, value in {"GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "octo/repo", "GITHUB_API_URL": gh.url,
                       "GITHUB_OUTPUT": str(out), "GITHUB_ACTIONS": "true"}.items():
        monkeypatch.setenv(key, value)
    path = write(tmp_path, {"pr": 7, "head_sha": HEAD, "base_sha": OTHER})
    assert main(["pr-info", str(path), "--head-sha", HEAD, "--head-repository", "outsider/repo"]) == 0
    assert f"pr-number=7\nhead-sha={HEAD}\nbase-sha={BASE}\n" in out.read_text()
    assert main(["pr-info", str(path), "--head-sha", OTHER, "--head-repository", "outsider/repo"]) == 2
