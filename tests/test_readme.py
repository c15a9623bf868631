"""The README is the manual: its CLI table and commands must match the real parser."""

from __future__ import annotations

import argparse
import re

from mlops_actions.cli import build_parser
from tests.conftest import REPO_ROOT


def _subcommands() -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: str(choice.help) for choice in sub._choices_actions}


def test_cli_table_lists_every_command_with_its_help() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (.+?) \|$", readme, flags=re.M))
    commands = _subcommands()
    assert {name: rows.get(name) for name in commands} == commands
    assert set(rows) >= set(commands)


def test_every_command_in_readme_code_blocks_parses() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    parser = build_parser()
    blocks = [block.replace("\\\n", " ") for block in re.findall(r"```bash\n(.*?)```", readme, re.S)]
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    calls = [line for line in lines if line.startswith("mlops-actions ")]
    for line in re.findall(r"`(mlops-actions [a-z-]+ [^`]+)`", readme):  # inline, with arguments
        if "COMMAND" not in line and "..." not in line:
            calls.append(line)
    assert calls, "the README shows no mlops-actions command"
    for call in calls:
        args = call.split("|")[0].split()[1:]  # a pipe ends the command
        try:
            parser.parse_args(args)
        except SystemExit as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"README command does not parse: {call}") from exc


def test_exit_codes_table_matches_errors_module() -> None:
    from mlops_actions import errors
    from mlops_actions.cli import EXIT_INTERNAL

    readme = (REPO_ROOT / "README.md").read_text()
    documented = {int(code) for code in re.findall(r"^\| ([0-9]) \|", readme, flags=re.M)}
    assert documented == {errors.EXIT_OK, errors.EXIT_CHECK_FAILED, errors.EXIT_BAD_INPUT,
                          errors.EXIT_EXTERNAL, EXIT_INTERNAL, errors.EXIT_NO_DATA}


def test_readme_points_at_no_file_the_repository_lacks() -> None:
    # issue 16: the README pointed at a DESIGN.md that is not in the repository
    readme = (REPO_ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#\s]+)\)", readme):
        if "://" not in target:
            assert (REPO_ROOT / target).exists(), f"README links to {target}, which does not exist"
    for name in re.findall(r"`([A-Z][A-Z_]+\.md)`", readme) + re.findall(r"\b([A-Z]{4,}\.md)\b", readme):
        assert (REPO_ROOT / name).exists(), f"README names {name}, which is not in the repository"


def test_admin_curl_examples_send_the_token_serve_generates() -> None:
    # issue 16: `curl -H "Authorization: Bearer $MLOPS_GATEWAY_TOKEN"` got 401 with the generated token
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
    docs = "".join(p.read_text() for p in pages)
    admin = [line for line in re.findall(r"`(curl [^`]+)`", docs) if "/admin/" in line]
    assert admin
    for line in admin:
        assert "${MLOPS_GATEWAY_TOKEN:-$(cat .mlops/gateway.token)}" in line, line


def test_every_shell_and_python_example_is_run_by_a_test() -> None:
    # issue 16: every shell and Python example in the README is executed by a test
    from tests import readme_examples

    assert readme_examples.unmarked_runnable_blocks() == []
    names = set(readme_examples.examples())
    assert {"two-commands", "adopt-install", "adopt-init", "adopt-train", "adopt-register", "adopt-serve",
            "python-api"} <= names
    sources = "".join(p.read_text() for p in (REPO_ROOT / "tests").rglob("test_*.py")
                      if p.name != "test_readme.py")
    unclaimed = sorted(n for n in names if f'example("{n}"' not in sources)
    assert unclaimed == [], f"README examples no test runs: {unclaimed}"


def test_the_docs_link_to_files_that_exist() -> None:
    # the README's history moved to docs/: their relative links must still resolve
    broken = [(page.relative_to(REPO_ROOT), target) for page in (REPO_ROOT / "docs").rglob("*.md")
              for target in re.findall(r"\]\(([^)#\s]+)", page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert broken == []
