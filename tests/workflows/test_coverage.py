"""Every trigger of every workflow file (and action.yml) has a scenario that runs it with act;
the ones that cannot run here say why. A new trigger without a scenario fails this test."""

from __future__ import annotations

import importlib

from tests.workflows.harness import ROOT, load_yaml

# (workflow, trigger) -> "module::test" that runs it through act
SCENARIOS = {
    ("pr.yml", "pull_request"):
        "test_pr_workflow::test_same_repo_pr_gets_plan_validate_policy_and_staging_check",
    ("validate.yml", "workflow_call"):
        "test_pr_workflow::test_same_repo_pr_gets_plan_validate_policy_and_staging_check",
    ("pr-fork.yml", "workflow_run"):
        "test_pr_workflow::test_fork_pr_runs_without_secrets_then_pr_fork_posts_its_policy",
    ("review.yml", "pull_request_review"):
        "test_pr_workflow::test_production_pr_that_rewrites_the_policy_is_judged_by_the_base_then_an_approval_passes_it",
    ("apply.yml", "push"):
        "test_deploy_workflow::test_push_to_staging_rolls_out_then_a_bad_version_fails_and_rolls_back",
    ("deploy.yml", "workflow_call"):
        "test_deploy_workflow::test_push_to_production_uses_the_production_environments_gateway_token",
    ("apply.yml", "workflow_dispatch"):
        "test_deploy_workflow::test_push_to_production_uses_the_production_environments_gateway_token",
    ("promote.yml", "workflow_dispatch"):
        "test_button_workflows::test_promote_clicked_twice_opens_one_pr_and_a_changed_target_updates_it",
    ("conclude.yml", "workflow_dispatch"):
        "test_button_workflows::test_conclude_opens_one_pr_for_the_winner_and_nothing_without_one",
    ("rollback.yml", "workflow_dispatch"):
        "test_button_workflows::test_rollback_button_works_in_a_repository_without_the_label",
    ("monitor-schedule.yml", "schedule"):
        "test_monitor_workflow::test_schedule_alerts_slack_pagerduty_and_webhook_and_opens_the_rollback_pr",
    ("monitor.yml", "workflow_call"):
        "test_monitor_workflow::test_schedule_alerts_slack_pagerduty_and_webhook_and_opens_the_rollback_pr",
    ("action.yml", "uses"):
        "test_composite_action::test_composite_action_runs_the_cli_with_one_argument_per_line",
}
NOT_RUN = {
    ("ci.yml", "push"): "this repository's own CI: its one job is ./scripts/test, which .ci/run runs",
    ("ci.yml", "pull_request"): "this repository's own CI: its one job is ./scripts/test, which .ci/run runs",
    ("k8s-e2e.yml", "pull_request"): "needs Docker and a kind cluster (no Docker engine here)",
    ("k8s-e2e.yml", "workflow_dispatch"): "needs Docker and a kind cluster (no Docker engine here)",
    ("monitor-schedule.yml", "workflow_dispatch"):
        "the same jobs as its schedule trigger (no step reads the event): covered by the schedule scenario",
}


def test_every_trigger_has_a_scenario_or_a_reason() -> None:
    declared = set()
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        on = load_yaml(path)["on"]
        triggers = [on] if isinstance(on, str) else list(on)
        declared |= {(path.name, t) for t in triggers}
    declared.add(("action.yml", "uses"))
    assert declared == set(SCENARIOS) | set(NOT_RUN), sorted(declared ^ (set(SCENARIOS) | set(NOT_RUN)))
    for target in set(SCENARIOS.values()):
        module, name = target.split("::")
        assert callable(getattr(importlib.import_module(f"tests.workflows.{module}"), name)), target
