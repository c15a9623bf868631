"""pr.yml and review.yml, run by act as GitHub runs them on a pull request."""

from __future__ import annotations

from tests.workflows.conftest import MODEL, World, pin_text
from tests.workflows.harness import pull_request_event


def test_same_repo_pr_gets_plan_validate_policy_and_staging_check(world: World) -> None:
    text = world.repo.read("environments/staging.yaml")
    pr = world.repo.open_pr("promote-1.1.0", {"environments/staging.yaml": pin_text(text, "1.1.0")},
                            title=f"Promote {MODEL} 1.1.0 to staging")
    world.gh.state.comments[pr.number] = []
    world.repo.at(pr.merge_sha)
    result = world.runner.run("pull_request", "pr.yml", pull_request_event(pr))
    assert result.returncode == 0, result
    print(result.seconds, result.jobs)
    for r in world.gh.requests:
        print(r.method, r.path, r.status, r.body if r.method != "GET" else "")
