from __future__ import annotations

import subprocess
import sys

from mlops_actions.cli import main
from mlops_actions.errors import ConfigError, Location


def test_help_lists_commands_and_exit_codes(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "version" in out
    assert "Exit codes" in out


def test_usage_error_exits_2(capsys) -> None:
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "mlops_actions", "version"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("mlops-actions ")


def test_config_error_lists_every_problem() -> None:
    a = ConfigError("first", location=Location("a.yaml", 1, 2))
    b = ConfigError("second", location=Location("b.yaml", 3, 4), hint="fix it")
    text = str(ConfigError("2 problems", errors=[a, b]))
    assert text.splitlines() == ["a.yaml:1:2: first", "b.yaml:3:4: second", "  hint: fix it"]
