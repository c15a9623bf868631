"""The promote and rollback buttons (workflow_dispatch), run by act as GitHub runs them."""

from __future__ import annotations

import base64

from tests.workflows.conftest import MODEL, World, pin_text
from tests.workflows.harness import dispatch_event


def _branch_file(world: World, branch: str, path: str) -> str:
    return world.gh.state.files[(branch, path)]


def test_promote_clicked_twice_opens_one_pr_and_a_changed_target_updates_it(world: World) -> None:
    world.repo.commit_main("staging runs 1.1.0", {
        "environments/staging.yaml": pin_text(world.repo.read("environments/staging.yaml"), "1.1.0")})
    world.sync_github()
    inputs = {"model": MODEL, "version": "", "from": "staging", "to": "production"}
    event = dispatch_event(inputs, workflow="promote.yml")

    first = world.runner.run("workflow_dispatch", "promote.yml", event)
    assert first.returncode == 0, first
    assert len(world.gh.state.pulls) == 1
    pr = world.gh.state.pulls[0]
    branch = pr["head"]["ref"]
    assert pr["title"] == f"Promote {MODEL} 1.1.0 from staging to production"
    assert '"1.1.0"' in _branch_file(world, branch, "environments/production.yaml")
    assert f"opened #{pr['number']}" in first.log

    second = world.runner.run("workflow_dispatch", "promote.yml", event)
    assert second.returncode == 0, second
    assert len(world.gh.state.pulls) == 1
    assert f"#{pr['number']} is already open for this change" in second.log
    assert len(world.gh.calls("PUT", "/contents/")) == 1  # no second commit

    # main's production.yaml changed meanwhile: a third click rebuilds the branch on it
    world.repo.fetch_main()
    path = "environments/production.yaml"
    world.repo.commit_main("note the on-call", {path: "# on-call: @ml-team\n" + world.repo.read(path)})
    world.sync_github()
    world.repo.at(world.repo.sha("main"))
    third = world.runner.run("workflow_dispatch", "promote.yml", event)
    assert third.returncode == 0, third
    assert len(world.gh.state.pulls) == 1
    text = _branch_file(world, branch, "environments/production.yaml")
    assert text.startswith("# on-call: @ml-team\n") and '"1.1.0"' in text
    assert world.gh.state.parents[world.gh.state.refs[branch]] == world.repo.sha("main")
    assert world.gh.rejected == []


def test_rollback_button_works_in_a_repository_without_the_label(world: World) -> None:
    path = "environments/production.yaml"
    world.repo.commit_main(f"Promote {MODEL} 1.1.0 to production (#7)", {
        path: pin_text(world.repo.read(path), "1.1.0")})
    world.sync_github()
    world.repo.at(world.repo.sha("main"))
    assert world.gh.state.labels == {}
    event = dispatch_event({"model": MODEL, "env": "production", "to": "", "reason": "accuracy fell"},
                           workflow="rollback.yml")
    result = world.runner.run("workflow_dispatch", "rollback.yml", event)
    assert result.returncode == 0, result
    [pr] = world.gh.state.pulls
    assert pr["title"] == f"Roll back {MODEL} in production to 1.0.0"
    assert "1.1.0 -> 1.0.0" in pr["body"] and "accuracy fell" in pr["body"]
    assert [label["name"] for label in pr["labels"]] == ["rollback"]
    assert "rollback" in world.gh.state.labels  # created by GitHub on first use
    put = world.gh.calls("PUT", "/contents/")[0]
    assert '"1.0.0"' in base64.b64decode(put.body["content"]).decode()

    again = world.runner.run("workflow_dispatch", "rollback.yml", event)
    assert again.returncode == 0, again
    assert len(world.gh.state.pulls) == 1 and world.gh.rejected == []
