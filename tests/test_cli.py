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


def test_exit_code_is_decided_by_the_error_class_alone() -> None:
    # issue 17: one function maps error classes to exit codes; no error carries or mutates its own
    import inspect
    import pathlib

    from mlops_actions import errors
    from mlops_actions.cli import EXIT_INTERNAL, EXIT_INTERRUPTED, exit_code_for

    expected = {
        errors.CheckFailed("x"): errors.EXIT_CHECK_FAILED,
        errors.ConfigError("x"): errors.EXIT_BAD_INPUT,
        errors.ValidationError("x"): errors.EXIT_BAD_INPUT,
        errors.RegistryError("x"): errors.EXIT_EXTERNAL,
        errors.TargetError("x"): errors.EXIT_EXTERNAL,
        errors.GitHubError("x"): errors.EXIT_EXTERNAL,
        errors.MonitoringError("x"): errors.EXIT_EXTERNAL,
        errors.RegistryInputError("x"): errors.EXIT_BAD_INPUT,  # an outside system's class, the user's fault
        errors.RegistryNotFound("x"): errors.EXIT_BAD_INPUT,
        KeyboardInterrupt(): EXIT_INTERRUPTED,
        BrokenPipeError(): errors.EXIT_OK,
        ZeroDivisionError(): EXIT_INTERNAL,
    }
    assert {type(e).__name__: exit_code_for(e) for e in expected} == \
        {type(e).__name__: code for e, code in expected.items()}
    package = pathlib.Path(inspect.getfile(errors)).parent
    setters = [f"{p}:{n}" for p in package.rglob("*.py")
               for n, line in enumerate(p.read_text().splitlines(), 1)
               if ".exit_code =" in line or line.strip().startswith("exit_code =")]
    assert setters == []


def test_registry_input_errors_exit_2_not_3() -> None:
    # the registry's own mistakes-of-the-caller are typed, so they exit 2 without any mutation
    import pytest

    from mlops_actions.cli import exit_code_for
    from mlops_actions.errors import RegistryNotFound
    from mlops_actions.registry.memory import MemoryRegistry

    registry = MemoryRegistry()
    with pytest.raises(RegistryNotFound) as missing:
        registry.get("nope", "1.0.0")
    registry.register("churn", "models:/x", version="1.0.0")
    with pytest.raises(Exception) as reused:
        registry.register("churn", "models:/y", version="1.0.0")
    assert (exit_code_for(missing.value), exit_code_for(reused.value)) == (2, 2)
