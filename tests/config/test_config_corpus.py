"""The corpus of broken files: each gives exactly the expected file:line:col and message.

Each case copies the valid repository, puts one broken file in place (the
expectations table says where) and runs every check, the fake registry included.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from config_helpers import BROKEN, FakeRegistry

from mlops_actions.cli import main
from mlops_actions.commands.check import check
from mlops_actions.config.loader import load_repo
from mlops_actions.config.yamlsafe import MAX_BYTES
from mlops_actions.errors import ConfigError

EXPECTATIONS: dict[str, dict[str, object]] = json.loads((BROKEN / "expectations.json").read_text())


def test_corpus_is_complete() -> None:
    on_disk = {p.name for p in BROKEN.iterdir() if p.name != "expectations.json"}
    assert on_disk == set(EXPECTATIONS)
    assert len(on_disk) >= 30
    assert all(case["errors"] for case in EXPECTATIONS.values())


def _place(repo_dir: Path, case: str) -> Path:
    target = repo_dir / str(EXPECTATIONS[case]["as"])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BROKEN / case, target)
    return target


@pytest.mark.parametrize("case", sorted(EXPECTATIONS))
def test_broken_file_gives_exact_errors(case: str, repo_dir: Path, registry: FakeRegistry) -> None:
    _place(repo_dir, case)
    _, errors = check(repo_dir, registry)
    assert [f"{e.location}: {e.message}" for e in errors] == EXPECTATIONS[case]["errors"]
    for error in errors:  # every error names a file, a line and a column
        assert error.location is not None
        assert error.location.line is not None and error.location.column is not None


def test_corpus_through_the_cli_lists_every_error(repo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # two broken files at once: the errors of both come out, in one run
    expected: list[str] = []
    for case in ("model_metric_for_task.yaml", "env_weights_decrease.yaml"):
        _place(repo_dir, case)
        expected += [str(e) for e in EXPECTATIONS[case]["errors"]]  # type: ignore[attr-defined]
    code = main(["-C", str(repo_dir), "check", "--offline"])
    err = capsys.readouterr().err
    assert code == 2
    for line in expected:
        assert f"error: {line}" in err
    assert f"{len(expected)} errors" in err


def test_ten_megabyte_file_is_refused_before_parsing(repo_dir: Path) -> None:
    target = repo_dir / "models" / "diabetes" / "model.yaml"
    with target.open("w") as handle:
        handle.write("name: big\ndescription: |\n")
        line = "  " + "x" * 1022 + "\n"
        for _ in range(10 * 1024):
            handle.write(line)
    assert target.stat().st_size > 10 * 1024 * 1024
    with pytest.raises(ConfigError) as info:
        load_repo(repo_dir)
    assert [str(e) for e in info.value.errors] == [
        "models/diabetes/model.yaml:1:1: file is 10.01 MiB; the limit is 1 MiB\n"
        "  hint: model.yaml and environment files are small; is this the right file?"]


def test_size_cap_boundary(repo_dir: Path) -> None:
    target = repo_dir / "models" / "diabetes" / "model.yaml"
    head = (BROKEN.parent / "valid" / "models" / "diabetes" / "model.yaml").read_text()
    padding = MAX_BYTES - len(head.encode())
    target.write_text(head + "#" * (padding - 1) + "\n")  # exactly at the cap: accepted
    assert target.stat().st_size == MAX_BYTES
    assert "diabetes" in load_repo(repo_dir).models
    target.write_text(head + "#" * padding + "\n")  # one byte over: refused
    with pytest.raises(ConfigError, match="the limit is 1 MiB"):
        load_repo(repo_dir)


def test_a_step_with_two_actions_says_how_to_split_it(repo_dir: Path, registry: FakeRegistry) -> None:
    """The hint comes from the error's type (``one_action_per_step``), not its message text."""
    _place(repo_dir, "env_step_two_keys.yaml")
    _, errors = check(repo_dir, registry)
    assert [e.hint for e in errors] == [
        "split it into one list item per action: `- set_weight: 10` then `- pause: {}`"]
