"""The composite action's script, run by bash as the runner runs it, with the real CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gitops.conftest import promote_in_production

ROOT = Path(__file__).parent.parent.parent
pytestmark = pytest.mark.slow  # three CLI processes; the CLI imports pandas/scipy at startup


def _script() -> str:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    assert "${{" not in step["run"]
    return str(step["run"])


def _shim(tmp: Path) -> Path:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "mlops-actions"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlops_actions "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _run(tmp: Path, repo: Path, args: str, allow: str = "") -> tuple[int, str, str]:
    out = tmp / "github_output"
    out.write_text("")
    bin_dir = tmp / "bin" if (tmp / "bin").exists() else _shim(tmp)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT),
               MLOPS_ARGS=args, MLOPS_DIR=str(repo), MLOPS_ALLOW=allow, GITHUB_OUTPUT=str(out))
    env.pop("GITHUB_EVENT_PATH", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(["bash", "-e", "-c", _script()], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr, out.read_text()


def test_action_passes_one_argument_per_line(repo: Path, tmp_path: Path) -> None:
    promote_in_production(repo, "1.2.0")
    # plan exits 1 on changes: allowed here, and the exit code is an output
    code, log, outputs = _run(tmp_path, repo, "plan\n--no-live\n--base\nmain\n\n", allow="1")
    assert code == 0, log
    assert "1.1.0 -> 1.2.0" in log and "exit-code=1" in outputs
    # not allowed: the step fails with the command's code
    code, log, outputs = _run(tmp_path, repo, "plan\n--no-live\n--base\nmain")
    assert code == 1 and "exit-code=1" in outputs
    # an argument with spaces and shell characters stays one argument, never evaluated
    code, log, outputs = _run(tmp_path, repo, "plan\n--no-live\n--base\nmain; touch pwned $(id)")
    assert code == 2 and "exit-code=2" in outputs
    assert not (repo / "pwned").exists() and not Path("pwned").exists()
