"""monitor-schedule.yml -> monitor.yml on its cron, run by act: the prediction store the
gateway logged to, alerts to each route the model declares, and the rollback PR."""

from __future__ import annotations

import json

from tests.workflows.conftest import MODEL, World, pin_text
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
