"""The REST client against a strict loopback GitHub (bodies checked against the OpenAPI subset)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.errors import GitHubError
from mlops_actions.github.rest import COMMENT_LIMIT, GitHubClient, GitHubNotFound, marker
from tests.github.fakegithub import FakeGitHub

TOKEN = "ghs_SECRETtoken1234567890"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def client(gh: FakeGitHub, **kw: object) -> GitHubClient:
    sleeps: list[float] = []
    c = GitHubClient("octo/repo", TOKEN, api_url=gh.url, timeout=5, sleep=sleeps.append,
                     **kw)  # type: ignore[arg-type]
    c.sleeps = sleeps  # type: ignore[attr-defined]
    return c


def test_sticky_comment_updated_not_duplicated(gh: FakeGitHub) -> None:
    gh.state.comments[7] = [{"id": i, "body": f"chatter {i}"} for i in range(5)]  # 3 pages of 2
    c = client(gh)
    first = c.upsert_comment(7, "plan", "production", "v1")
    second = c.upsert_comment(7, "plan", "production", "v2")
    other = c.upsert_comment(7, "plan", "staging", "s1")
    assert first.created and not second.created and other.created
    assert first.id == second.id != other.id
    bodies = [x["body"] for x in gh.state.comments[7]]
    assert sum(marker("plan", "production") in b for b in bodies) == 1
    assert any(b.endswith("v2") for b in bodies)
    assert len(gh.calls("PATCH")) == 1 and len(gh.calls("POST")) == 2
    assert gh.rejected == []
    # pagination followed the Link header over 3+ pages
    assert len([r for r in gh.calls("GET", "/comments")]) >= 3
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in gh.requests)


def test_long_body_truncated_under_limit(gh: FakeGitHub) -> None:
    gh.state.comments[1] = []
    c = client(gh)
    c.upsert_comment(1, "validate", "staging", "row\n" * 40000)
    body = gh.state.comments[1][0]["body"]
    assert len(body) < COMMENT_LIMIT and "truncated" in body


def test_retries_502_then_succeeds(gh: FakeGitHub) -> None:
    gh.state.comments[3] = []
    gh.fault("GET", r"/issues/3/comments", 502, times=2)
    c = client(gh, backoff=0.5)
    c.upsert_comment(3, "plan", "staging", "ok")
    assert c.sleeps == [0.5, 1.0]  # type: ignore[attr-defined]
    assert len(gh.state.comments[3]) == 1


def test_secondary_rate_limit_honours_retry_after(gh: FakeGitHub) -> None:
    gh.fault("POST", r"/statuses/", 403, headers={"Retry-After": "7"},
             message="You have exceeded a secondary rate limit")
    gh.fault("POST", r"/check-runs", 429, headers={"x-ratelimit-remaining": "0",
                                                    "x-ratelimit-reset": "0"})
    c = client(gh)
    c.create_status("a" * 40, "success", "mlops-actions/policy", "3 rules passed")
    c.create_check_run("plan", "a" * 40, conclusion="success", title="no change", summary="ok")
    assert c.sleeps[0] == 7.0  # type: ignore[attr-defined]
    assert gh.state.statuses[0]["state"] == "success" and gh.rejected == []


def test_retries_are_bounded_and_token_never_leaks(gh: FakeGitHub) -> None:
    gh.fault("GET", r"/pulls/9$", 502, times=100, message=f"upstream said {TOKEN}")
    c = client(gh, max_retries=3)
    with pytest.raises(GitHubError) as err:
        c.pull(9)
    assert "after 4 tries" in str(err.value) and TOKEN not in str(err.value)
    assert len(gh.calls("GET", "/pulls/9")) == 4
    gh.fault("GET", r"/pulls/10$", 403, headers={"Retry-After": "3600"})
    with pytest.raises(GitHubError, match="rate limited"):
        c.pull(10)


def test_404_for_a_deleted_pr(gh: FakeGitHub) -> None:
    c = client(gh)
    with pytest.raises(GitHubNotFound) as err:
        c.upsert_comment(404, "plan", "staging", "x")
    assert exit_code_for(err.value) == 3 and err.value.hint


def test_server_rejects_bodies_outside_the_spec(gh: FakeGitHub) -> None:
    c = client(gh)
    with pytest.raises(GitHubError, match="422"):
        c.json("POST", "statuses/" + "a" * 40, json={"state": "bogus"})
    with pytest.raises(GitHubError, match="422"):
        c.json("POST", "issues", json={"title": "t", "unknown_key": 1})
    assert len(gh.rejected) == 2


def test_deployment_and_status(gh: FakeGitHub) -> None:
    c = client(gh)
    dep = c.create_deployment("b" * 40, "production", description="fraud 1.3.0",
                              payload={"models": {"fraud": "1.3.0"}}, production=True)
    c.create_deployment_status(int(dep["id"]), "success", description="rolled out",
                               log_url="https://example.invalid/run/1")
    assert gh.state.deployment_statuses[0]["state"] == "success" and gh.rejected == []


def test_pr_of_merge_commit(gh: FakeGitHub) -> None:
    sha = "c" * 40
    gh.state.commit_pulls[sha] = [{"number": 5, "merge_commit_sha": "d" * 40},
                                  {"number": 6, "merge_commit_sha": sha}]
    c = client(gh)
    pr = c.merged_pull_for_commit(sha)
    assert pr is not None and pr["number"] == 6
    assert c.merged_pull_for_commit("e" * 40) is None


def test_propose_change_branch_commit_pr(gh: FakeGitHub) -> None:
    gh.state.refs["main"] = "f" * 40
    gh.state.files[("main", "environments/production.yaml")] = "models:\n  fraud:\n    version: \"1.0.0\"\n"
    c = client(gh)
    branch = "mlops/promote-fraud-1.1.0"
    pr, created = c.propose_change(path="environments/production.yaml", text="new\n", base="main",
                                   branch=branch, title="Promote", body="body", message="promote")
    assert created and pr["number"] == 100
    assert gh.state.files[(branch, "environments/production.yaml")] == "new\n"
    # the commit moved the branch, as on GitHub: a new commit whose parent is main's head
    head = gh.state.refs[branch]
    assert head != "f" * 40 and gh.state.parents[head] == "f" * 40
    put = gh.calls("PUT")[0]
    assert base64.b64decode(put.body["content"]) == b"new\n" and gh.rejected == []
    # clicked again: same branch, same PR, no second commit
    again, created = c.propose_change(path="environments/production.yaml", text="new\n", base="main",
                                      branch=branch, title="Promote", body="body", message="promote")
    assert not created and again["number"] == 100 and gh.state.refs[branch] == head
    assert len(gh.state.pulls) == 1 and len(gh.calls("PUT")) == 1
    # the change to make differs (main moved on): the bot's branch is rebuilt, the PR updated
    gh.state.refs["main"] = "e" * 40
    gh.state.files[("main", "environments/production.yaml")] = "other\n"
    third, created = c.propose_change(path="environments/production.yaml", text="newer\n", base="main",
                                      branch=branch, title="Promote v2", body="body 2", message="promote")
    assert not created and third["number"] == 100 and third["title"] == "Promote v2"
    assert gh.state.files[(branch, "environments/production.yaml")] == "newer\n"
    assert gh.state.parents[gh.state.refs[branch]] == "e" * 40 and len(gh.state.pulls) == 1
    assert gh.rejected == []
    c.create_branch("mlops/other", "f" * 40)
    c.create_branch("mlops/other", "f" * 40)  # already there at that commit: a rerun
    with pytest.raises(GitHubError, match="already exists at ffffffffffff, not eeeeeeeeeeee"):
        c.create_branch("mlops/other", "e" * 40)


def test_github_422_errors_list_reaches_the_message(gh: FakeGitHub) -> None:
    """GitHub puts the reason of a 422 in ``errors[].message``, not in ``message``."""
    gh.state.refs.update(main="f" * 40, feature="e" * 40)
    c = client(gh)
    c.create_pull(title="t", head="feature", base="main", body="b")
    # the fake answers a second PR for one branch as GitHub does
    status, data, _ = gh.handle("POST", "/repos/octo/repo/pulls",
                                {"title": "t", "head": "feature", "base": "main"}, {})
    assert status == 422 and data["message"] == "Validation Failed"
    assert data["errors"][0]["message"] == "A pull request already exists for octo:feature."
    with pytest.raises(GitHubError, match="Validation Failed: A pull request already exists"):
        c.json("POST", "pulls", json={"title": "t", "head": "feature", "base": "main"}, max_retries=0)
    with pytest.raises(GitHubError, match="PullRequest head invalid"):
        c.json("POST", "pulls", json={"title": "t", "head": "nope", "base": "main"}, max_retries=0)


def test_labels_are_created_when_missing(gh: FakeGitHub) -> None:
    gh.state.refs.update(main="f" * 40, fix="e" * 40)
    c = client(gh)
    pr, _ = c.create_pull(title="t", head="fix", base="main", body="b")
    assert "rollback" not in gh.state.labels
    assert c.add_labels(pr["number"], ["rollback"]) == ["rollback"]
    assert gh.state.labels["rollback"]["name"] == "rollback"
    assert c.add_labels(pr["number"], ["rollback"]) == ["rollback"]  # twice: still one
    assert gh.rejected == []


def test_read_only_token_gets_githubs_403() -> None:
    with FakeGitHub(tokens={TOKEN: "read"}) as gh:
        c = client(gh)
        gh.state.comments[4] = []
        with pytest.raises(GitHubError, match="403: Resource not accessible by integration"):
            c.upsert_comment(4, "plan", "staging", "x")
        bad = GitHubClient("octo/repo", "wrong", api_url=gh.url, timeout=5, sleep=lambda s: None)
        with pytest.raises(GitHubError, match="401: Bad credentials"):
            bad.json("GET", "pulls")

def test_issue_and_from_env(gh: FakeGitHub) -> None:
    c = GitHubClient.from_env({"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "octo/repo",
                               "GITHUB_API_URL": gh.url})
    c.create_issue("drift on fraud", "details", labels=["mlops-alert"])
    assert [label["name"] for label in gh.state.issues[0]["labels"]] == ["mlops-alert"]
    with pytest.raises(GitHubError, match="no GitHub token"):
        GitHubClient.from_env({"GITHUB_REPOSITORY": "octo/repo"})
    with pytest.raises(GitHubError, match="owner/name"):
        GitHubClient("not a repo", TOKEN)
