"""approvals as branch protection counts them: write access, the latest review per reviewer,
on the head commit, never the author, optional approvers; each reviewer reported with why."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.github.rest import GitHubClient
from mlops_actions.gitops.approvals import GitHubAccess, judge_reviews
from mlops_actions.gitops.policy import Outcome, PolicyInput, RuleResult, evaluate
from mlops_actions.gitops.sources import read_git
from tests.github.fakegithub import FakeGitHub, example, review
from tests.gitops.conftest import (
    actions_env,
    adapt_pr_event,
    commit_all,
    git,
    promote_in_production,
    write,
)

OLD = "3f2a1c0" + "0" * 33  # a commit the PR had before its last push
TEAM = "octo-org/ml-leads"
TEAM_403 = "could not check team membership: the token needs members:read (a GitHub App or PAT)"


def set_rules(repo: Path, rules: str) -> None:
    """Production's approval rules on main (the base branch), before the PR branches off."""
    text = (repo / "environments/production.yaml").read_text()
    write(repo, "environments/production.yaml", text.replace("  required_approvals: 1\n", rules))
    commit_all(repo, "approval rules")


def open_pr(repo: Path, tmp: Path, gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> str:
    """PR 7 by alice promoting fraud 1.2.0 to production, as a pull_request run sees it."""
    base = git(repo, "rev-parse", "main")
    head = promote_in_production(repo, "1.2.0")
    actions_env(monkeypatch, gh, adapt_pr_event(tmp, base_sha=base, head_sha=head), tmp)
    return head


def approvals(results: list[RuleResult]) -> RuleResult:
    return next(r for r in results if r.rule == "approvals")


def policy(repo: Path, tmp: Path) -> tuple[int, str]:
    """The policy step with --markdown (the PR comment): exit code and the Markdown."""
    code = main(["-C", str(repo), "policy", "--no-live", "--markdown", str(tmp / "policy.md")])
    return code, (tmp / "policy.md").read_text()


def test_drive_by_stale_and_self_approvals_do_not_count_and_the_comment_says_why(
        repo: Path, tmp_path: Path, gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    head = open_pr(repo, tmp_path, gh, monkeypatch)
    gh.state.reviews[7] = [
        review("alice", "APPROVED", 1, association="OWNER", commit_id=head),  # the author
        review("drive-by", "APPROVED", 2, association="NONE", commit_id=head),
        review("lead", "APPROVED", 3, association="COLLABORATOR", commit_id=OLD),  # then a push
        review("lead", "COMMENTED", 4, association="COLLABORATOR", commit_id=head),  # no approval
    ]
    code, md = policy(repo, tmp_path)
    assert code == 1
    out = capsys.readouterr().out
    assert "FAILED       approvals        production                   0 approval(s), 1 required" in out
    for line in ["@drive-by: not counted: no write access (author_association NONE, permission none)",
                 f"@lead: not counted: approved 3f2a1c0, not the head commit {head[:7]}",
                 "@alice: not counted: the PR's author"]:
        assert line in out
        assert f"- {line.replace('@', '&#64;')}" in md  # listed in the comment, no one pinged
    assert "@" not in md
    # only the drive-by's write access needed asking: the author and the stale one never do
    assert [c.path for c in gh.calls("GET", "/permission")] == [
        "/repos/octo/repo/collaborators/drive-by/permission"]

    gh.state.reviews[7].append(review("carol", "APPROVED", 5, association="COLLABORATOR", commit_id=head))
    code, md = policy(repo, tmp_path)
    assert code == 0
    assert "✅ passed | approvals | `production` | 1 approval(s) (carol), 1 required |" in md
    assert "- &#64;carol: counted (COLLABORATOR)" in md
    assert gh.rejected == []


def test_contributor_with_write_permission_counts(repo: Path, tmp_path: Path, gh: FakeGitHub,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """author_association CONTRIBUTOR says nothing about access (a collaborator through a team
    shows as CONTRIBUTOR): the collaborator-permission endpoint decides."""
    set_rules(repo, "  required_approvals: 2\n")
    head = open_pr(repo, tmp_path, gh, monkeypatch)
    gh.state.permissions.update({"dana": "write", "mo": "maintain", "erin": "read"})
    gh.state.reviews[7] = [review(user, "APPROVED", i, association=assoc, commit_id=head)
                           for i, (user, assoc) in enumerate([
                               ("dana", "CONTRIBUTOR"), ("erin", "FIRST_TIME_CONTRIBUTOR"),
                               ("mo", "CONTRIBUTOR")])]
    assert main(["-C", str(repo), "policy", "--no-live"]) == 0
    out = capsys.readouterr().out
    assert "PASSED       approvals        production                   2 approval(s) (dana, mo)" in out
    assert "@dana: counted (CONTRIBUTOR, write permission)" in out
    assert "@mo: counted (CONTRIBUTOR, maintain permission)" in out
    assert "@erin: not counted: no write access (author_association FIRST_TIME_CONTRIBUTOR, " \
           "permission read)" in out


def test_a_permission_that_cannot_be_checked_is_reported_and_not_counted(
        repo: Path, tmp_path: Path, gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    head = open_pr(repo, tmp_path, gh, monkeypatch)
    gh.state.permissions["dana"] = "write"
    gh.fault("GET", r"/collaborators/dana/permission", 403, times=2,  # one per run
             message="Resource not accessible by integration")
    gh.state.reviews[7] = [review("dana", "APPROVED", 1, association="CONTRIBUTOR", commit_id=head)]
    assert main(["-C", str(repo), "policy", "--no-live"]) == 3  # it might have counted: an error
    out = capsys.readouterr().out
    assert "ERROR        approvals" in out and "could not check dana" in out
    assert "@dana: not counted: could not check write access (author_association CONTRIBUTOR): " \
           "GitHub answered HTTP 403: Resource not accessible by integration to the " \
           "collaborator-permission request" in out
    # enough approvals without it: passed, and still listed
    gh.state.reviews[7].append(review("carol", "APPROVED", 2, association="MEMBER", commit_id=head))
    assert main(["-C", str(repo), "policy", "--no-live"]) == 0
    out = capsys.readouterr().out
    assert "PASSED       approvals" in out and "@dana: not counted: could not check" in out


def test_the_latest_review_per_reviewer_on_the_head_commit_counts() -> None:
    head = "9b8e7d6" + "1" * 33
    reviews = [review("bob", "APPROVED", 1, commit_id=head), review("carol", "APPROVED", 2, commit_id=head),
               review("bob", "COMMENTED", 3, commit_id=head),  # does not cancel bob's approval
               review("carol", "CHANGES_REQUESTED", 4, commit_id=head),
               review("dave", "APPROVED", 5, commit_id=head), review("dave", "DISMISSED", 6, commit_id=head),
               review("alice", "APPROVED", 7, commit_id=head),
               review("frank", "CHANGES_REQUESTED", 8, commit_id=OLD),
               review("frank", "APPROVED", 9, commit_id=head),  # re-approved after the push
               review("gina", "APPROVED", 10, commit_id=head),
               review("gina", "APPROVED", 11, commit_id=OLD),  # from a stale tab: the latest decides
               review("hal", "COMMENTED", 12, commit_id=head)]
    assert [v.line() for v in judge_reviews(reviews, author="alice", head_sha=head)] == [
        "@bob: counted (COLLABORATOR)",
        "@frank: counted (COLLABORATOR)",
        "@alice: not counted: the PR's author",
        "@carol: not counted: latest review is CHANGES_REQUESTED",
        "@dave: not counted: latest review is DISMISSED",
        "@gina: not counted: approved 3f2a1c0, not the head commit 9b8e7d6",
        "@hal: not counted: no approval (latest review COMMENTED)",
    ]
    # without a way to ask GitHub, a reviewer without a write association is not counted, and says so
    [drive_by] = judge_reviews([review("x", "APPROVED", 1, association="NONE", commit_id=head)],
                               author="alice", head_sha=head)
    assert not drive_by.counted and drive_by.unchecked
    assert drive_by.why == "could not check write access (author_association NONE): no GitHub " \
                           "credentials to ask"


def test_approvers_restrict_to_listed_users_and_teams(repo: Path, gh: FakeGitHub) -> None:
    set_rules(repo, f"  required_approvals: 2\n  approvers: [lead, drive-by, {TEAM}]\n")
    head = promote_in_production(repo, "1.2.0")
    gh.state.teams[TEAM] = {"carol": "active", "ivan": "pending"}
    reviews = [review(user, "APPROVED", i, association=assoc, commit_id=head)
               for i, (user, assoc) in enumerate([
                   ("bob", "COLLABORATOR"), ("lead", "COLLABORATOR"), ("carol", "MEMBER"),
                   ("ivan", "COLLABORATOR"), ("drive-by", "NONE")])]
    base, pr = read_git(repo, "main"), read_git(repo, "pr")

    def run(reviews: list[dict[str, object]]) -> RuleResult:
        access = GitHubAccess(GitHubClient("octo/repo", "ghs_app", api_url=gh.url))
        return approvals(evaluate(base, pr, None, PolicyInput(
            reviews=reviews, author="alice", head_sha=head, access=access)))

    result = run(reviews)
    assert result.outcome is Outcome.PASSED
    assert result.reason == "2 approval(s) (carol, lead), 2 required"
    assert result.details == (
        f"@carol: counted (MEMBER, member of {TEAM})",
        "@lead: counted (COLLABORATOR, listed in approvers)",
        f"@bob: not counted: could not check team membership: the token needs members:read (a GitHub "
        f"App or PAT) ({TEAM}: HTTP 404, GitHub's answer for a non-member and for a team the token "
        f"cannot see); approvers: lead, drive-by, {TEAM}",
        "@drive-by: not counted: no write access (author_association NONE, permission none)",
        f"@ivan: not counted: not in approvers (lead, drive-by, {TEAM}) (invitation to {TEAM} not "
        "accepted yet)",
    )
    # a listed login is not asked about teams; the team is asked once per reviewer
    assert sorted(c.path.rsplit("/", 1)[1] for c in gh.calls("GET", "/memberships/")) == [
        "bob", "carol", "ivan"]
    # short of two without bob, whose membership GitHub would not tell: an error, not a pass
    result = run([r for r in reviews if r["user"]["login"] in ("bob", "lead")])  # type: ignore[index]
    assert result.outcome is Outcome.ERROR and "could not check bob" in result.reason
    result = run([r for r in reviews if r["user"]["login"] in ("ivan", "lead")])  # type: ignore[index]
    assert result.outcome is Outcome.FAILED
    assert f"ask someone in approvers (lead, drive-by, {TEAM}) to approve the head commit " \
           f"{head[:7]}" in result.reason
    assert gh.rejected == []


def test_team_lookup_with_the_repository_token_is_reported(repo: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A repository's GITHUB_TOKEN cannot read org teams: the comment says what token is needed."""
    set_rules(repo, f"  required_approvals: 1\n  approvers: [{TEAM}]\n")
    with FakeGitHub(tokens={"ghs_repoTOKEN": "write"}) as gh:
        head = open_pr(repo, tmp_path, gh, monkeypatch)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_repoTOKEN")
        gh.state.teams[TEAM] = {"carol": "active"}
        gh.state.reviews[7] = [review("carol", "APPROVED", 1, association="MEMBER", commit_id=head)]
        code, md = policy(repo, tmp_path)
        assert code == 3
        out = capsys.readouterr().out
        assert "ERROR        approvals" in out
        assert f"@carol: not counted: {TEAM_403} ({TEAM}: HTTP 403: Resource not accessible by " \
               "integration)" in out
        assert f"- &#64;carol: not counted: {TEAM_403}" in md
        assert [c.status for c in gh.calls("GET", "/memberships/")] == [403]
        # a token that can read the team (a GitHub App's): counted
        gh.tokens["ghs_appTOKEN"] = "app"
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_appTOKEN")
        code, md = policy(repo, tmp_path)
        assert code == 0 and f"- &#64;carol: counted (MEMBER, member of {TEAM})" in md


def test_a_pr_is_judged_by_the_base_branchs_approval_rules(repo: Path) -> None:
    """A PR that lowers required_approvals (or edits approvers) cannot approve itself with it."""
    git(repo, "checkout", "-q", "-b", "pr")
    text = (repo / "environments/production.yaml").read_text()
    text = text.replace("  required_approvals: 1\n", "  required_approvals: 0\n")
    write(repo, "environments/production.yaml", text.replace('"1.1.0"', '"1.2.0"', 1))
    head = commit_all(repo, "promote, and no approvals needed please")
    result = approvals(evaluate(read_git(repo, "main"), read_git(repo, "pr"), None,
                                PolicyInput(reviews=[], author="alice", head_sha=head)))
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("0 approval(s), 1 required;")
    assert "(the base branch's rules; this PR changes required_approvals, which apply once it is " \
           "merged)" in result.reason


def test_pr_flag_outside_a_pull_request_run_reads_author_and_head_from_the_api(
        repo: Path, tmp_path: Path, gh: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    head = open_pr(repo, tmp_path, gh, monkeypatch)
    monkeypatch.delenv("GITHUB_EVENT_PATH")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "workflow_dispatch")
    pull = example("/repos/{owner}/{repo}/pulls/{pull_number}", "get")[1]
    pull.update(number=7, user=dict(pull["user"], login="alice"), head=dict(pull["head"], sha=head))
    gh.state.pulls.append(pull)
    gh.state.reviews[7] = [review("alice", "APPROVED", 1, commit_id=head),
                           review("bob", "APPROVED", 2, commit_id=head)]
    assert main(["-C", str(repo), "policy", "--no-live", "--base", "main", "--pr", "7"]) == 0
    out = capsys.readouterr().out
    assert "@bob: counted (COLLABORATOR)" in out and "@alice: not counted: the PR's author" in out
