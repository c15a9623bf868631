"""Commands that do not talk to MLflow start without importing the heavy libraries.

Not a timing test (a shared machine's load moves wall time 5x): each command runs in a fresh
interpreter with ``-X importtime`` and the test reads which modules it imported. MLflow, pandas,
scipy, scikit-learn and matplotlib cost 0.5-4 s each to import; they load only inside the
functions that use them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VALID = ROOT / "tests" / "assets" / "config" / "valid"
K8S = ROOT / "tests" / "assets" / "kubernetes" / "repo"
HEAVY = ("mlflow", "pandas", "scipy", "sklearn", "matplotlib")


def imported(args: list[str], cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlops_actions", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONPATH": str(ROOT)})
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.MULTILINE))
    return modules, proc


@pytest.mark.parametrize("args", [
    ["--help"],
    ["version"],
    ["-C", str(VALID), "check", "--offline"],
    ["-C", str(VALID), "check"],  # no registry configured: pins not resolved, MLflow not imported
    ["schema", "--out", "{tmp}"],
    ["-C", str(K8S), "render", "--env", "preprod", "--out", "{tmp}/k8s", "--no-registry"],
    ["drift", "--help"],
])
def test_commands_without_mlflow_import_no_heavy_library(tmp_path: Path, args: list[str]) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    modules, proc = imported(argv, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mlops_actions.cli" in modules  # the parse worked: importtime saw the CLI load
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], f"{' '.join(args)} imported {heavy[:10]}"
