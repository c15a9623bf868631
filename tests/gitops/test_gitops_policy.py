"""policy: promotion order, semver, approvals from the API, freeze windows; four-valued."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_actions.cli import main
from mlops_actions.gitops.live import LiveRegistry
from mlops_actions.gitops.policy import Outcome, PolicyInput, evaluate
from mlops_actions.gitops.sources import read_git
from tests.github.fakegithub import FakeGitHub, review
from tests.gitops.conftest import (
    FakeRegistry,
    actions_env,
    adapt_pr_event,
    commit_all,
    git,
    promote_in_production,
    write,
)


def outcomes(results: list) -> dict[tuple[str, str | None], Outcome]:  # type: ignore[type-arg]
    return {(r.rule, r.model): r.outcome for r in results}


def test_promotion_order_live_in_from_env(repo: Path, registry: FakeRegistry) -> None:
    head = promote_in_production(repo, "1.2.0")
    results = evaluate(read_git(repo, "main"), read_git(repo, "pr"), LiveRegistry(registry),
                       PolicyInput(reviews=[review("bob", "APPROVED", 1, commit_id=head)],
                                   author="alice", head_sha=head))
    got = outcomes(results)
    assert got[("promotion-order", "fraud")] is Outcome.PASSED
    assert got[("semver", "fraud")] is Outcome.PASSED
    assert got[("approvals", None)] is Outcome.PASSED
    assert got[("freeze", None)] is Outcome.PASSED
    assert [r.env for r in results] == ["production"] * 4  # staging unchanged: not checked


def test_not_live_in_staging_fails_unless_tagged(repo: Path, registry: FakeRegistry) -> None:
    registry.versions["fraud"].append("1.3.0")
    promote_in_production(repo, "1.3.0")
    ctx = PolicyInput(reviews=[], author="alice")
    res = evaluate(read_git(repo, "main"), read_git(repo, "pr"), LiveRegistry(registry), ctx)
    order = next(r for r in res if r.rule == "promotion-order")
    assert order.outcome is Outcome.FAILED and "promote it to staging first" in order.reason
    assert str(order.location) == "pr:environments/production.yaml:6:14"
    registry.tags[("fraud", "1.3.0")] = {"mlops.passed.staging": "true"}
    res = evaluate(read_git(repo, "main"), read_git(repo, "pr"), LiveRegistry(registry), ctx)
    assert next(r for r in res if r.rule == "promotion-order").outcome is Outcome.PASSED
    # without the registry: inconclusive, never a fake pass
    res = evaluate(read_git(repo, "main"), read_git(repo, "pr"), None, ctx)
    assert next(r for r in res if r.rule == "promotion-order").outcome is Outcome.INCONCLUSIVE


def test_downgrade_needs_rollback_label(repo: Path, registry: FakeRegistry) -> None:
    promote_in_production(repo, "1.0.0")
    registry.models["fraud"]["staging"] = "1.0.0"
    base, head = read_git(repo, "main"), read_git(repo, "pr")
    res = evaluate(base, head, LiveRegistry(registry), PolicyInput())
    semver = next(r for r in res if r.rule == "semver")
    assert semver.outcome is Outcome.FAILED and "1.1.0 -> 1.0.0 goes down" in semver.reason
    res = evaluate(base, head, LiveRegistry(registry), PolicyInput(labels=("rollback",)))
    assert next(r for r in res if r.rule == "semver").outcome is Outcome.PASSED


def test_prerelease_ordering(repo: Path, registry: FakeRegistry) -> None:
    promote_in_production(repo, "1.1.0-rc.1")
    res = evaluate(read_git(repo, "main"), read_git(repo, "pr"), None, PolicyInput())
    assert next(r for r in res if r.rule == "semver").outcome is Outcome.FAILED  # rc < release


def test_approvals_missing_or_unreadable(repo: Path) -> None:
    sha = promote_in_production(repo, "1.2.0")
    base, head = read_git(repo, "main"), read_git(repo, "pr")
    own = [review("alice", "APPROVED", 1, commit_id=sha)]
    res = evaluate(base, head, None, PolicyInput(reviews=own, author="alice", head_sha=sha))
    approvals = next(r for r in res if r.rule == "approvals")
    assert approvals.outcome is Outcome.FAILED and "0 approval(s), 1 required" in approvals.reason
    assert approvals.details == ("@alice: not counted: the PR's author",)
    # reviews without the head commit: stale ones cannot be told apart, so nothing passes
    res = evaluate(base, head, None, PolicyInput(reviews=own, author="alice"))
    assert next(r for r in res if r.rule == "approvals").outcome is Outcome.INCONCLUSIVE
    res = evaluate(base, head, None, PolicyInput())
    assert next(r for r in res if r.rule == "approvals").outcome is Outcome.INCONCLUSIVE
    res = evaluate(base, head, None, PolicyInput(reviews_error=True, reviews_unavailable="GitHub: 502"))
    assert next(r for r in res if r.rule == "approvals").outcome is Outcome.ERROR


def test_freeze_window(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "pr")
    text = (repo / "environments/production.yaml").read_text()
    text = text.replace("  required_approvals: 1\n", "  required_approvals: 0\n  freeze:\n"
                        "    - {start: \"2026-12-20T00:00:00Z\", end: \"2027-01-02T00:00:00Z\", "
                        "reason: holidays}\n    - {start: \"soon\", end: \"later\"}\n")
    write(repo, "environments/production.yaml", text.replace('"1.1.0"', '"1.2.0"', 1))
    commit_all(repo, "promote during freeze")
    base, head = read_git(repo, "main"), read_git(repo, "pr")
    xmas = datetime(2026, 12, 24, tzinfo=UTC)
    res = evaluate(base, head, None, PolicyInput(now=xmas))
    freeze = next(r for r in res if r.rule == "freeze")
    assert freeze.outcome is Outcome.FAILED and "holidays" in freeze.reason
    res = evaluate(base, head, None, PolicyInput(now=xmas, labels=("rollback",)))
    assert next(r for r in res if r.rule == "freeze").outcome is Outcome.PASSED
    res = evaluate(base, head, None, PolicyInput(now=datetime(2026, 6, 1, tzinfo=UTC)))
    assert next(r for r in res if r.rule == "freeze").outcome is Outcome.ERROR  # "soon" is no date


def test_policy_step_on_pr_then_review(repo: Path, tmp_path: Path, gh: FakeGitHub,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    base = git(repo, "rev-parse", "main")
    head = promote_in_production(repo, "1.2.0")
    event = adapt_pr_event(tmp_path, base_sha=base, head_sha=head)
    actions_env(monkeypatch, gh, event, tmp_path)
    gh.state.reviews[7] = [review("alice", "APPROVED", 1, commit_id=head)]  # the author's own: does not count
    status = ["--status-context", "mlops-actions/policy"]
    assert main(["-C", str(repo), "policy", "--no-live", *status]) == 1
    out = capsys.readouterr().out
    assert "FAILED       approvals" in out
    assert "::error file=environments/production.yaml,line=2,col=3,title=policy%3A approvals::" in out, out
    assert "result=failed" in (tmp_path / "output").read_text()
    # a review arrives: the pull_request_review workflow re-runs the policy
    gh.state.reviews[7].append(review("bob", "APPROVED", 2, commit_id=head))
    review_event = adapt_pr_event(tmp_path, base_sha=base, head_sha=head,
                                  file="pull_request_review.submitted.0.json")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request_review")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(review_event))
    assert main(["-C", str(repo), "policy", "--no-live", *status]) == 0
    out = capsys.readouterr().out
    assert "PASSED       approvals" in out and "INCONCLUSIVE promotion-order" in out
    # the review run turned the commit status green on the PR's head commit
    assert [(x["sha"], x["state"], x["context"]) for x in gh.state.statuses] == [
        (head, "failure", "mlops-actions/policy"), (head, "success", "mlops-actions/policy")]
    assert main(["-C", str(repo), "policy", "--no-live", "--strict"]) == 1
    assert gh.rejected == []


def test_policy_github_down_is_error_not_pass(repo: Path, tmp_path: Path, gh: FakeGitHub,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    base = git(repo, "rev-parse", "main")
    head = promote_in_production(repo, "1.2.0")
    actions_env(monkeypatch, gh, adapt_pr_event(tmp_path, base_sha=base, head_sha=head), tmp_path)
    gh.fault("GET", r"/reviews", 502, times=100)
    monkeypatch.setenv("MLOPS_ACTIONS_HTTP_BACKOFF", "0.01")
    assert main(["-C", str(repo), "policy", "--no-live"]) == 3
    assert "ERROR        approvals" in capsys.readouterr().out
    monkeypatch.delenv("GITHUB_TOKEN")  # a fork PR: no token
    assert main(["-C", str(repo), "policy", "--no-live"]) == 0
    assert "skipped: no credentials" in capsys.readouterr().out
    assert main(["-C", str(repo), "policy", "--no-live", "--now", "yesterday"]) == 2
