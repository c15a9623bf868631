"""apply.yml -> deploy.yml on a push to main, run by act against real gateways: each
environment's deploy job reads its own GitHub environment's gateway token, applies, and
reports one Deployment (in_progress, then success or failure) and a comment on the merged PR."""

from __future__ import annotations

from tests.workflows.conftest import MODEL, World, pin_text
from tests.workflows.harness import dispatch_event, push_event


def _push_pin(world: World, env: str, version: str) -> tuple[int, str, str]:
    """A PR that changes one pin, merged: (PR number, before, after)."""
    path = f"environments/{env}.yaml"
    pr = world.repo.open_pr(f"{env}-{version}", {path: pin_text(world.repo.read(path), version)},
                            title=f"Promote {MODEL} {version} to {env}")
    world.github_pr(pr)
    before, after = world.merge(pr)
    world.repo.at(after)
    return pr.number, before, after


def test_push_to_staging_rolls_out_then_a_bad_version_fails_and_rolls_back(world: World) -> None:
    world.start_gateway("staging")
    world.apply("staging")  # 1.0.0 live, as an earlier deploy left it
    assert world.live("staging")[MODEL]["stable"] == "1.0.0"

    number, before, after = _push_pin(world, "staging", "1.1.0")
    with world.traffic("staging") as sent:
        result = world.runner.run("push", "apply.yml", push_event(before, after),
                                  environment="staging", matrix={"environment": "staging"})
    assert result.returncode == 0 and not result.failed_jobs(), result
    assert sent["sent"] > 0
    assert world.live("staging")[MODEL]["stable"] == "1.1.0"
    history = world.gh.deployment_history("staging")
    assert [states for _, states in history] == [["in_progress", "success"]], history
    deployment = world.gh.state.deployments[-1]
    assert deployment["ref"] == after and deployment["environment"] == "staging"
    done = [s for s in world.gh.state.deployment_statuses if s["state"] == "success"][-1]
    assert f"{MODEL} 1.1.0 healthy" in done["description"]
    comment = world.comments(number, "deploy", "staging")
    assert len(comment) == 1 and "Deploy to `staging`: success" in comment[0]
    assert "**Environment `staging`**" in comment[0] and "**Healthy**" in comment[0]  # status --markdown

    # a version trained on shuffled labels: its canary fails analysis and is rolled back
    number, before, after = _push_pin(world, "staging", "1.2.0")
    with world.traffic("staging"):
        result = world.runner.run("push", "apply.yml", push_event(before, after),
                                  environment="staging", matrix={"environment": "staging"})
    assert result.returncode != 0 and result.failed_jobs(), result
    assert world.live("staging")[MODEL]["stable"] == "1.1.0"
    history = world.gh.deployment_history("staging")
    assert [states for _, states in history] == [["in_progress", "success"], ["in_progress", "failure"]]
    failed = [s for s in world.gh.state.deployment_statuses if s["state"] == "failure"][-1]
    assert f"{MODEL} 1.2.0 rolled back" in failed["description"]
    comment = world.comments(number, "deploy", "staging")
    assert len(comment) == 1 and "Deploy to `staging`: failure" in comment[0]
    assert world.gh.rejected == []


def test_push_to_production_uses_the_production_environments_gateway_token(world: World) -> None:
    world.start_gateway("production")
    world.apply("production")
    world.set_alias("staging", "1.1.0")
    number, before, after = _push_pin(world, "production", "1.1.0")
    with world.traffic("production"):
        result = world.runner.run("push", "apply.yml", push_event(before, after),
                                  environment="production", matrix={"environment": "production"})
    assert result.returncode == 0 and not result.failed_jobs(), result
    assert world.live("production")[MODEL]["stable"] == "1.1.0"
    assert [states for _, states in world.gh.deployment_history("production")] == [["in_progress", "success"]]
    assert world.gh.deployment_history("staging") == []
    assert len(world.comments(number, "deploy", "production")) == 1


    # the apply workflow run by hand re-applies production at HEAD: nothing to change, and the
    # Deployment says so
    result = world.runner.run("workflow_dispatch", "apply.yml", dispatch_event({}, workflow="apply.yml"),
                              environment="production", matrix={"environment": "production"})
    assert result.returncode == 0 and not result.failed_jobs(), result
    history = world.gh.deployment_history("production")
    assert [states for _, states in history] == [["in_progress", "success"]] * 2
    assert world.gh.state.deployment_statuses[-1]["description"] == "production: nothing to change"
    assert world.live("production")[MODEL]["stable"] == "1.1.0"
