"""The kind end-to-end workflow: least privilege, pinned actions, no expressions in scripts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "k8s-e2e.yml"


def test_workflow_is_least_privilege_and_pinned() -> None:
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert flow["permissions"] == {}
    for job in flow["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
        assert job["timeout-minutes"] <= 60
        for step in job["steps"]:
            if "uses" in step:
                assert re.match(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$", step["uses"]), step["uses"]
            if "run" in step:
                assert "${{" not in step["run"], "untrusted values reach scripts only through env:"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
    assert "pull_request_target" not in flow[True]  # PyYAML reads the key `on` as True


def test_e2e_test_is_skipped_here_and_runs_on_github() -> None:
    text = WORKFLOW.read_text()
    assert "MLOPS_K8S_E2E" in text and "tests/kubernetes/e2e" in text
    assert "docs/operations/Dockerfile" in text and "argo-rollouts" in text


@pytest.mark.parametrize("tool,args", [
    ("zizmor", ["--offline"]),
    ("check-jsonschema", ["--builtin-schema", "vendor.github-workflows"]),
])
def test_offline_workflow_linters(tool: str, args: list[str]) -> None:
    exe = shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip(f"{tool} not installed (pip install {tool})")
    result = subprocess.run([exe, *args, str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
