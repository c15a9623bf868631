"""``mlops-actions pr-info``: confirm which PR a fork's finished run was for (pr-fork.yml)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_actions.errors import EXIT_OK
from mlops_actions.github import actions
from mlops_actions.github.forks import read_pr_info, verify_pr
from mlops_actions.github.rest import GitHubClient

ORDER = 67
OUTPUTS = frozenset({"pr-number", "head-sha", "base-sha"})  # step outputs written to $GITHUB_OUTPUT


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "pr-info", help="read a fork run's pr-info artifact as data and confirm it with GitHub",
        description="Read FILE (the pr-info.json a pull_request run uploaded), check its shape, and "
        "confirm with the API that the PR it names is open with --head-sha from "
        "--head-repository (the workflow_run's). Writes the step outputs pr-number, head-sha and "
        "base-sha (the base from GitHub, not from the file). Exit 2 when they disagree.")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--head-sha", required=True, help="github.event.workflow_run.head_sha")
    p.add_argument("--head-repository", required=True,
                   help="github.event.workflow_run.head_repository.full_name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    claim = read_pr_info(args.file)
    pr = verify_pr(GitHubClient.from_env(), claim, run_head_sha=args.head_sha,
                   run_head_repository=args.head_repository)
    actions.set_output("pr-number", str(pr.number))
    actions.set_output("head-sha", pr.head_sha)
    actions.set_output("base-sha", pr.base_sha)
    print(f"#{pr.number} from {pr.head_repository} at {pr.head_sha[:12]} "
          f"(base {pr.base_sha[:12]}): confirmed")
    return EXIT_OK
