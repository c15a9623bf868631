"""The promote and rollback buttons (workflow_dispatch), run by act as GitHub runs them."""

from __future__ import annotations

import base64

import yaml

from tests.workflows.conftest import MODEL, World, _dump, pin_text
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


def _log_ab(store_url: str, version: str, n: int, accuracy: float, prefix: str) -> None:
    """Predictions of one variant as the gateway logs them, with their late labels."""
    import time

    import numpy as np

    from mlops_actions.monitoring.store import PredictionRecord, open_store

    rng = np.random.default_rng(7)
    now = time.time()
    store = open_store(store_url)
    try:
        records, labels = [], {}
        for i in range(n):
            label = int(rng.integers(0, 2))
            pred = label if rng.random() < accuracy else 1 - label
            records.append(PredictionRecord(f"{prefix}-{i}", MODEL, version, now - 3000 + i, {}, pred,
                                            latency_ms=5.0 + i % 7, environment="production",
                                            variant="b" if version == "1.1.0" else "stable"))
            labels[f"{prefix}-{i}"] = label
        store.write(records)
        store.attach_actuals(labels)
    finally:
        store.close()


def test_conclude_opens_one_pr_for_the_winner_and_nothing_without_one(world: World) -> None:
    path = "environments/production.yaml"
    doc = yaml.safe_load(world.repo.read(path))
    doc["models"][MODEL] = {"version": "1.0.0", "strategy": {"type": "ab_test", "version_b": "1.1.0",
                                                             "traffic_split": 0.5}}
    world.repo.commit_main(f"A/B test {MODEL} 1.0.0 vs 1.1.0", {path: _dump(doc)})
    world.sync_github()
    world.repo.at(world.repo.sha("main"))
    event = dispatch_event({"environment": "production", "model": MODEL}, workflow="conclude.yml")

    # the first minutes of the test: too few rows, no winner, no PR, a failed run that says why
    _log_ab(world.store, "1.0.0", 10, 0.85, "a0")
    _log_ab(world.store, "1.1.0", 10, 0.97, "b0")
    early = world.runner.run("workflow_dispatch", "conclude.yml", event)
    assert early.returncode != 0 and "no winner (too few rows): no PR opened" in early.log, early
    assert world.gh.state.pulls == []

    _log_ab(world.store, "1.0.0", 600, 0.85, "a1")
    _log_ab(world.store, "1.1.0", 600, 0.97, "b1")
    first = world.runner.run("workflow_dispatch", "conclude.yml", event)
    assert first.returncode == 0, first
    [pr] = world.gh.state.pulls
    assert pr["title"] == f"Conclude the A/B test of {MODEL} in production: keep 1.1.0"
    assert "B (1.1.0) beats A (1.0.0) on accuracy" in pr["body"]
    pinned = yaml.safe_load(_branch_file(world, pr["head"]["ref"], path))["models"][MODEL]
    assert pinned == {"version": "1.1.0"}

    second = world.runner.run("workflow_dispatch", "conclude.yml", event)
    assert second.returncode == 0, second
    assert len(world.gh.state.pulls) == 1 and f"#{pr['number']} is already open" in second.log
    assert world.gh.rejected == []
