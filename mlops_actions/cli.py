"""The one entry point, ``mlops-actions``: argument parsing and the error handler.

Each command lives in ``mlops_actions/commands/<name>.py`` and exposes
``add_parser(subparsers)``, which registers its parser with ``func`` set to a
callable ``(args) -> int``. This module only dispatches and maps errors to the
exit codes documented in :mod:`mlops_actions.errors`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from mlops_actions import __version__, masking
from mlops_actions.errors import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_EXTERNAL,
    EXIT_OK,
    BadInputError,
    CheckFailed,
    ConfigError,
    ExternalError,
    MlopsActionsError,
    scrub_credentials,
)
from mlops_actions.github import actions

EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    """The exit code of a command that raised ``exc``: the one place that decides it, from
    the error's class alone (the table in :mod:`mlops_actions.errors` and the README).

    Order matters where a class is two things: ``RegistryNotFound`` is an outside system's
    error class (``ExternalError``) and the user's mistake (``BadInputError``): exit 2.
    """
    if isinstance(exc, CheckFailed):
        return EXIT_CHECK_FAILED
    if isinstance(exc, BadInputError):
        return EXIT_BAD_INPUT
    if isinstance(exc, ExternalError):
        return EXIT_EXTERNAL
    if isinstance(exc, MlopsActionsError):  # ConfigError, ValidationError, any other on purpose
        return EXIT_BAD_INPUT
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):  # the reader went away (`| head`): not a failure
        return EXIT_OK
    return EXIT_INTERNAL


def _command_modules() -> list[ModuleType]:
    """Every module of ``mlops_actions.commands``, in the order ``--help`` lists them.

    Each module sets ``ORDER`` (an int; lower first) and defines ``add_parser``.
    """
    package = importlib.import_module("mlops_actions.commands")
    modules = [
        importlib.import_module(f"mlops_actions.commands.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-actions",
        description="GitOps for ML models: declare in git, validate on the PR, "
        "roll out on merge, monitor, roll back.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 bad input or usage, "
        "3 an outside system failed, 4 internal error (a bug: please report it).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-C", "--repo", default=".", metavar="DIR",
        help="repository root holding models/ and environments/ (default: .)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.add_parser(sub)
    return parser


def report_error(err: MlopsActionsError) -> None:
    """Print an error for people (stderr) and, inside Actions, as annotations."""
    errors: list[MlopsActionsError] = list(err.errors) if isinstance(err, ConfigError) else [err]
    for e in errors:  # the last line of defence: no URL password reaches the log
        print(f"error: {scrub_credentials(MlopsActionsError.__str__(e))}", file=sys.stderr)
        if actions.in_actions():
            actions.annotate("error", scrub_credentials(e.message), location=e.location,
                             title=type(e).__name__)
    if len(errors) > 1:
        print(f"{len(errors)} errors", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    # in Actions: printed text never starts a workflow command, and a secret an adapter reads
    # from a file (the gateway's token in .mlops/) is masked before any later line shows it
    with actions.command_guard(), masking.sink(actions.add_mask):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except MlopsActionsError as err:
        report_error(err)
        return exit_code_for(err)
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return exit_code_for(exc)
    except BrokenPipeError as exc:
        return exit_code_for(exc)
    except Exception as exc:  # a bug: say so plainly, traceback only on request
        if os.environ.get("MLOPS_ACTIONS_DEBUG"):
            traceback.print_exc()
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  hint: this is a bug in mlops-actions; rerun with MLOPS_ACTIONS_DEBUG=1 "
            "for the traceback and report it",
            file=sys.stderr,
        )
        return exit_code_for(exc)


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "build_parser", "exit_code_for", "main"]

if __name__ == "__main__":
    sys.exit(main())
