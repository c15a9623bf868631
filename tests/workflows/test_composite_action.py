"""action.yml, the composite action, used as README shows it (``uses: OWNER/mlops-actions@SHA``)
from a workflow of another repository, run by act."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.workflows.conftest import World
from tests.workflows.harness import ROOT, pull_request_event

ACTION_SHA = "0123456789abcdef0123456789abcdef01234567"
WORKFLOW = f"""name: use-action
on: pull_request
permissions: {{}}
jobs:
  plan:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          fetch-depth: 0
          persist-credentials: false
      - id: plan
        uses: mlops-actions/mlops-actions@{ACTION_SHA}
        with:
          args: |
            plan
            --no-live
            --json
          allow-exit-codes: "1"
      - id: check
        uses: mlops-actions/mlops-actions@{ACTION_SHA}
        with:
          args: |
            check
            --offline
      - name: The outputs say what the commands returned
        env:
          PLAN: ${{{{ steps.plan.outputs.exit-code }}}}
          CHECK: ${{{{ steps.check.outputs.exit-code }}}}
        run: test "$PLAN" = 1 && test "$CHECK" = 0
  refused:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - uses: mlops-actions/mlops-actions@{ACTION_SHA}
        with:
          args: |
            plan
            --no-live
"""


def test_composite_action_runs_the_cli_with_one_argument_per_line(world: World, tmp_path: Path) -> None:
    action = tmp_path / "action-checkout"  # the action's repository at ACTION_SHA
    shutil.copytree(ROOT / "mlops_actions", action / "mlops_actions",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, action / name)
    world.runner.actions[f"mlops-actions/mlops-actions@{ACTION_SHA}"] = str(action)
    world.repo.commit_main("use the composite action", {".github/workflows/use-action.yml": WORKFLOW})
    text = world.repo.read("environments/staging.yaml").replace('version: "1.0.0"', 'version: "1.1.0"', 1)
    pr = world.repo.open_pr("bump", {"environments/staging.yaml": text}, title="bump")
    world.repo.at(pr.merge_sha)
    result = world.runner.run("pull_request", "use-action.yml", pull_request_event(pr))
    # plan exits 1 ("there are changes"): allowed in one job, a failure where it is not allowed
    assert result.jobs == {"use-action/plan": "succeeded", "use-action/refused": "failed"}, result
    plan_lines = [line.split("| ", 1)[-1].strip() for line in result.step_lines("[use-action/plan")]
    assert '"changed": true,' in plan_lines and '"changed_environments": [' in plan_lines
