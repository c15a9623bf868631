"""pr.yml (with the reusable validate.yml) and review.yml, run by act as GitHub runs them."""

from __future__ import annotations

from tests.github.fakegithub import review
from tests.workflows.conftest import MODEL, World, pin_text
from tests.workflows.harness import READ_TOKEN, pull_request_event, review_event, workflow_run_event


def test_same_repo_pr_gets_plan_validate_policy_and_staging_check(world: World) -> None:
    """A staging-only promotion before the first apply: every check runs for staging, and only
    for staging (production's aliases are unset too, which used to pull it in)."""
    text = world.repo.read("environments/staging.yaml")
    pr = world.open_pr("promote-1.1.0", {"environments/staging.yaml": pin_text(text, "1.1.0")},
                       title=f"Promote {MODEL} 1.1.0 to staging")
    result = world.runner.run("pull_request", "pr.yml", pull_request_event(pr))
    assert result.returncode == 0 and not result.failed_jobs(), result
    assert {"pr/static", "pr/all-checks"} <= set(result.jobs)

    plan = world.comments(pr.number, "plan", "all")
    assert (len(plan) == 1 and "1.0.0 -> 1.1.0" in plan[0].replace("→", "->")) or "1.1.0" in plan[0]
    validate = world.comments(pr.number, "validate", "staging")
    assert len(validate) == 1 and f"Validation of `{MODEL}` 1.1.0: **passed**" in validate[0]
    staging = world.comments(pr.number, "staging", "staging")
    assert len(staging) == 1 and "100 of 100 requests answered 200" in staging[0]
    # nothing for production: the PR does not change it
    assert world.comments(pr.number, "validate", "production") == []
    assert world.comments(pr.number, "staging", "production") == []
    policy = world.comments(pr.number, "policy", "all")
    assert len(policy) == 1 and "promotion-order" in policy[0]
    # the policy status lands on the PR's head commit, where branch protection reads it
    statuses = world.gh.statuses_for(pr.head_sha)
    assert [(s["context"], s["state"]) for s in statuses] == [("mlops-actions/policy", "success")]
    assert world.gh.rejected == []


def test_production_pr_that_rewrites_the_policy_is_judged_by_the_base_then_an_approval_passes_it(
        world: World) -> None:
    """The PR promotes to production (one approval required) and rewrites the toolkit's policy
    to pass everything: the verdict is the base branch's code (failure, for want of an
    approval). A collaborator's approval on the head commit, through review.yml, passes it."""
    world.repo.commit_main("staging runs 1.1.0", {
        "environments/staging.yaml": pin_text(world.repo.read("environments/staging.yaml"), "1.1.0")})
    world.sync_github()
    world.set_alias("staging", "1.1.0")  # 1.1.0 is live in staging: promotion order holds
    policy_py = "mlops_actions/gitops/policy.py"
    waved = world.repo.read(policy_py) + (
        "\n\n_real_evaluate = evaluate\n\n\n"
        "def evaluate(*args, **kwargs):  # a PR that grades itself\n"
        "    return [RuleResult(r.rule, r.env, r.model, Outcome.PASSED, 'waved through', r.location)\n"
        "            for r in _real_evaluate(*args, **kwargs)]\n")
    text = world.repo.read("environments/production.yaml")
    pr = world.repo.open_pr("promote-prod", {"environments/production.yaml": pin_text(text, "1.1.0"),
                                             policy_py: waved},
                            title=f"Promote {MODEL} 1.1.0 to production, and wave it through")
    world.github_pr(pr)
    world.repo.at(pr.merge_sha)
    result = world.runner.run("pull_request", "pr.yml", pull_request_event(pr), job="checks")
    assert result.returncode == 0, result
    statuses = world.gh.statuses_for(pr.head_sha)
    assert statuses[-1]["state"] == "failure" and statuses[-1]["description"].endswith("; approvals")
    [policy] = world.comments(pr.number, "policy", "all")
    assert "waved through" not in policy

    world.gh.state.reviews[pr.number] = [review("lead", "APPROVED", 1, association="COLLABORATOR",
                                                commit_id=pr.head_sha)]
    result = world.runner.run("pull_request_review", "review.yml",
                              review_event(pr, state="approved", reviewer="lead", association="COLLABORATOR"))
    assert result.returncode == 0 and not result.failed_jobs(), result
    statuses = world.gh.statuses_for(pr.head_sha)
    assert statuses[-1]["context"] == "mlops-actions/policy" and statuses[-1]["state"] == "success"
    [policy] = world.comments(pr.number, "policy", "all")
    assert "approvals" in policy and "lead" in policy and "waved through" not in policy
    assert world.gh.rejected == []

def test_fork_pr_runs_without_secrets_then_pr_fork_posts_its_policy(world: World) -> None:
    """A fork PR: read-only token, no secrets. Nothing fails obscurely; the credentialed checks
    say they were skipped, and GitHub refused every write (403), as it does. Then pr-fork.yml
    (workflow_run, this repository's token) reads the run's pr-info artifact as data, confirms
    it with the API, and posts the policy status and comment."""
    text = world.repo.read("environments/staging.yaml")
    pr = world.open_pr("fork-change", {"environments/staging.yaml": pin_text(text, "1.1.0")},
                       title="Promote from a fork", fork=True, author="outsider")
    result = world.runner.run("pull_request", "pr.yml", pull_request_event(pr, author="outsider"),
                              token=READ_TOKEN, secrets=False)
    assert result.returncode == 0 and not result.failed_jobs(), result
    assert "skipped: no credentials" in result.log
    writes = [r for r in world.gh.requests if r.method != "GET"]
    assert writes and all(r.status == 403 for r in writes)
    assert world.gh.state.comments[pr.number] == [] and world.gh.state.statuses == []

    world.repo.at(world.repo.sha("main"))  # workflow_run runs the default branch's files
    follow = world.runner.run("workflow_run", "pr-fork.yml", workflow_run_event(pr))
    assert follow.returncode == 0 and not follow.failed_jobs(), follow
    assert f"#{pr.number} from outsider/ml-platform at {pr.head_sha[:12]}" in follow.log
    statuses = world.gh.statuses_for(pr.head_sha)
    assert [(s["context"], s["state"]) for s in statuses] == [("mlops-actions/policy", "success")]
    [policy] = world.comments(pr.number, "policy", "all")
    assert "promotion-order" in policy and world.gh.rejected == []


def test_pr_pinning_a_version_that_does_not_exist_fails_with_the_line_on_the_pr(world: World) -> None:
    text = world.repo.read("environments/staging.yaml")
    pr = world.open_pr("typo", {"environments/staging.yaml": pin_text(text, "1.9.0")},
                       title="Promote a version nobody registered")
    result = world.runner.run("pull_request", "pr.yml", pull_request_event(pr), job="checks")
    assert result.returncode != 0 and "checks/validate (reusable)/plan" in result.failed_jobs(), result
    line = next(i for i, row in enumerate(pin_text(text, "1.9.0").splitlines(), 1) if "1.9.0" in row)
    # an annotation on the line of the pin, and the same problem in the plan comment
    assert f"::error file=environments/staging.yaml,line={line}" in result.log
    [plan] = world.comments(pr.number, "plan", "all")
    assert "The plan could not be made: 1 problem(s)" in plan
    assert f"`environments/staging.yaml:{line}" in plan and "1.9.0 does not exist in the registry" in plan
