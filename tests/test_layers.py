"""The import contracts of pyproject.toml ([tool.importlinter]) hold (issue 17)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:  # pragma: no cover - the dev extra has it
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root)}
    return subprocess.run([exe, "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def test_layers_and_acyclic_contracts_are_kept() -> None:
    result = _lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "4 kept, 0 broken" in result.stdout


def test_a_reach_up_breaks_the_layers(tmp_path: Path) -> None:
    # the contracts are not vacuous: the alert hook importing the monitor command again fails them
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "mlops_actions", root / "mlops_actions",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    hook = root / "mlops_actions" / "monitoring" / "alerts" / "hook.py"
    hook.write_text(hook.read_text() + "\nfrom mlops_actions.commands import monitor  # noqa\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "mlops_actions.monitoring.alerts.hook -> mlops_actions.commands.monitor" in result.stdout
