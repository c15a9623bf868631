"""``mlops-actions rollback-pr``: open the PR that puts a model back on its last good version."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_actions.commands.promote import branch_name, submit
from mlops_actions.errors import EXIT_OK, ConfigError
from mlops_actions.github import actions
from mlops_actions.gitops.pins import env_path, last_good_version, pinned_version
from mlops_actions.gitops.policy import ROLLBACK_LABEL
from mlops_actions.gitops.propose import PinChange
from mlops_actions.report.markdown import inert

ORDER = 66
OUTPUTS = frozenset({"pr-number", "pr-url", "version"})  # step outputs written to $GITHUB_OUTPUT


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rollback-pr", help="open a PR restoring MODEL's previous version in ENV (from git history)",
        description="Walk the git log of environments/ENV.yaml for the newest earlier pin of MODEL "
        "that differs from the current one, and open a PR restoring it. Needs the full history "
        "(actions/checkout with fetch-depth: 0), and label it `rollback`.")
    p.add_argument("--model", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--to", dest="to_version", metavar="VERSION", help="this version instead of the last good")
    p.add_argument("--reason", default="", help="why (goes into the PR body)")
    p.add_argument("--base", help="branch to open the PR against (default: GITHUB_REF_NAME or main)")
    p.add_argument("--label", action="append", default=None, metavar="NAME",
                   help="label the PR (repeatable; default: rollback, which lets the semver and freeze "
                   "rules allow going down); created in the repository when missing")
    p.add_argument("--dry-run", action="store_true", help="print the change, open nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    path = repo / env_path(args.env)
    if not path.is_file():
        raise ConfigError(f"environment {args.env!r} not found: no {env_path(args.env)}")
    text = path.read_text(encoding="utf-8")
    current = pinned_version(text, args.model)
    if current is None:
        raise ConfigError(f"{args.model} is not pinned in {env_path(args.env)}")
    if args.to_version:
        target, origin = args.to_version, "requested"
    else:
        entry = last_good_version(repo, args.env, args.model)
        target, origin = str(entry.version), f"pinned by {entry.commit[:7]} ({inert(entry.subject)})"
    change = PinChange(
        env=args.env, model=args.model, version=target,
        branch=branch_name("rollback", args.model, target, args.env),
        title=f"Roll back {args.model} in {args.env} to {target}",
        body=(f"Rolls `{args.model}` back in `{args.env}`: **{current} -> {target}** ({origin})."
              + (f"\n\nReason: {inert(args.reason)}" if args.reason else "")
              + "\n\nOpened by `mlops-actions rollback-pr`. The `rollback` label lets the semver and "
              "freeze rules allow going down."))
    print(f"last good version of {args.model} in {args.env}: {target} ({origin})")
    args.label = args.label or [ROLLBACK_LABEL]
    submit(change, text, args)
    if not args.dry_run:
        actions.set_output("version", target)
    return EXIT_OK
