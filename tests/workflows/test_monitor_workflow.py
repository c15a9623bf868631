"""monitor-schedule.yml -> monitor.yml on its cron, run by act: the prediction store the
gateway logged to, alerts to each route the model declares, the rollback PR, and an A/B
test's analysis as a sticky comment on the PR that started it."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.workflows.conftest import MODEL, World, _dump, pin_text
from tests.workflows.harness import load_yaml, schedule_event


def test_schedule_alerts_slack_pagerduty_and_webhook_and_opens_the_rollback_pr(world: World) -> None:
    path = "environments/production.yaml"
    world.repo.commit_main(f"Promote {MODEL} 1.1.0 to production",
                           {path: pin_text(world.repo.read(path), "1.1.0")})
    world.sync_github()
    world.start_gateway("production")
    world.apply("production")
    # an hour of production traffic gone bad: drifted features, and labels the model gets wrong
    with world.traffic("production", rps=200, shift=0.8, wrong_labels=True) as sent:
        while sent["sent"] < 150:
            pass
    world.repo.at(world.repo.sha("main"))
    cron = load_yaml(world.repo.work / ".github/workflows/monitor-schedule.yml")["on"]["schedule"][0]["cron"]
    result = world.runner.run("schedule", "monitor-schedule.yml", schedule_event(cron),
                              matrix={"environment": "production"})
    # the monitor job fails (the model is unhealthy), the rollback job succeeds
    assert any("monitor" in j for j in result.failed_jobs()), result
    assert "rows" not in result.log or "0 rows" not in result.log
    paths = world.receiver.paths()
    assert "/slack" in paths and "/pagerduty" in paths and "/webhook" in paths, (paths, result)
    pagerduty = next(body for p, body in world.receiver.received if p == "/pagerduty")
    assert pagerduty["event_action"] == "trigger" and pagerduty["routing_key"].startswith("R0UTING")
    slack = json.dumps(next(body for p, body in world.receiver.received if p == "/slack"))
    assert MODEL in slack and "production" in slack
    [pr] = world.gh.state.pulls
    assert pr["title"] == f"Roll back {MODEL} in production to 1.0.0"
    assert [label["name"] for label in pr["labels"]] == ["rollback"]
    assert world.gh.rejected == []


def test_schedule_comments_the_ab_analysis_on_the_pr_that_started_the_test(world: World) -> None:
    path = "environments/production.yaml"
    doc = yaml.safe_load(world.repo.read(path))
    doc["models"][MODEL]["strategy"] = {"type": "ab_test", "version_b": "1.1.0", "traffic_split": 0.5}
    ab = world.open_pr("ab-test", {path: _dump(doc)}, title=f"A/B test {MODEL} 1.0.0 vs 1.1.0 in production")
    world.merge(ab)
    # a later PR touches the same file without changing the A/B pin: the comment stays on the first
    note = world.open_pr("note", {path: world.repo.read(path) + "# on call: ml-platform\n"},
                         title="Note who is on call")
    _, note_sha = world.merge(note)
    world.start_gateway("production")
    world.apply("production")
    with world.traffic("production", rps=200) as sent:
        while sent["sent"] < 200:
            pass
    world.repo.at(note_sha)
    cron = load_yaml(world.repo.work / ".github/workflows/monitor-schedule.yml")["on"]["schedule"][0]["cron"]
    kind = f"ab-test:{MODEL}"
    # the verdict sentence, as monitor words it over the same rows
    done = subprocess.run([sys.executable, "-m", "mlops_actions", "monitor", "--env", "production", "--json",
                           "--store", world.store], cwd=world.repo.work, capture_output=True, text=True,
                          check=False, timeout=300)
    sentence = json.loads(done.stdout)["models"][0]["ab_test"]["sentence"]
    bodies = []
    for _ in range(2):  # the next hour's run updates the comment instead of adding one
        result = world.runner.run("schedule", "monitor-schedule.yml", schedule_event(cron),
                                  matrix={"environment": "production"})
        assert f"on #{ab.number}, the PR that pinned {MODEL}" in result.log, result
        [body] = world.comments(ab.number, kind, "production")
        bodies.append(body)
    assert f"> {sentence}" in bodies[0], (sentence, bodies[0])
    assert f"**{MODEL}** A/B test" in bodies[0] and "Per-variant" in bodies[0]
    assert world.comments(note.number, kind, "production") == []
    assert len(world.gh.calls("POST", f"/issues/{ab.number}/comments")) == 1
    assert len(world.gh.calls("PATCH", "/issues/comments/")) == 1
    assert world.gh.rejected == []
