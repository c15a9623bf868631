"""``mlops-actions comment``: one sticky PR comment per kind and environment (updated, not duplicated)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from mlops_actions.commands._github import client_or_none, warn
from mlops_actions.errors import EXIT_OK, ConfigError, GitHubError
from mlops_actions.github import actions
from mlops_actions.github.rest import GitHubClient
from mlops_actions.gitops import context, pins

ORDER = 60
OUTPUTS = frozenset({"comment-url"})  # step outputs written to $GITHUB_OUTPUT


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "comment", help="post or update the sticky PR comment of a kind and environment",
        description="Find the comment marked <!-- mlops-actions:KIND:ENV --> on the PR and update it, "
        "or create it. On a push, the PR is the one merged as --sha; with --pin MODEL, the one that merged "
        "MODEL's current pin in environments/ENV.yaml (the scheduled monitor's A/B report). A GitHub "
        "failure is a warning (exit 0) unless --strict: a report must never fail a deploy.")
    p.add_argument("--kind", required=True, help="plan, validate, policy, staging, deploy, ab-test:MODEL...")
    p.add_argument("--env", required=True, help="environment name, or 'all'")
    p.add_argument("--body-file", required=True, metavar="FILE", help="Markdown body")
    p.add_argument("--pr", type=int, metavar="N", help="PR number (default: from the event)")
    p.add_argument("--sha", help="merge commit whose PR to comment on (default: GITHUB_SHA)")
    p.add_argument("--pin", metavar="MODEL",
                   help="comment on the PR that merged MODEL's current pin (version and strategy) in "
                   "environments/ENV.yaml, found in the checkout's git history (fetch-depth: 0); no such "
                   "PR is a note in the log, exit 0")
    p.add_argument("--strict", action="store_true", help="exit 3 when the comment cannot be posted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.pin and (args.pr or args.sha):
        raise ConfigError("comment: --pin finds the PR itself: drop --pr and --sha")
    try:
        body = Path(args.body_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read --body-file {args.body_file}: {exc.strerror}") from None
    client = client_or_none("comment")
    if client is None:
        return EXIT_OK
    return _post(client, args, body, _pr_of_pin if args.pin else _pr_of_run)


def _post(client: GitHubClient, args: argparse.Namespace, body: str,
          find: Callable[[GitHubClient, argparse.Namespace], tuple[int, str] | None]) -> int:
    """Create or update the ``--kind`` comment on the PR ``find`` names (it says why when none)."""
    try:
        found = find(client, args)
        if found is None:
            return EXIT_OK
        number, why = found
        result = client.upsert_comment(number, args.kind, args.env, body)
    except GitHubError as exc:
        if args.strict:
            raise
        warn(f"comment: could not post the {args.kind} comment: {exc.message}")
        return EXIT_OK
    print(f"{'created' if result.created else 'updated'} comment {result.url or result.id} on #{number}{why}")
    actions.set_output("comment-url", result.url)
    return EXIT_OK


def _pr_of_run(client: GitHubClient, args: argparse.Namespace) -> tuple[int, str] | None:
    """``--pr``, the event's PR, or the PR merged as ``--sha`` / ``$GITHUB_SHA``."""
    number = args.pr or context.pr_number(context.event())
    sha = args.sha or os.environ.get("GITHUB_SHA")
    if number is None and sha:
        pr = client.merged_pull_for_commit(sha)
        number = int(pr["number"]) if pr else None
    if number is None:
        warn("comment: no pull request for this run (pass --pr N)")
        return None
    return number, ""


def _pr_of_pin(client: GitHubClient, args: argparse.Namespace) -> tuple[int, str] | None:
    """The PR that merged ``--pin``'s current pin: its commit from git
    (:func:`~mlops_actions.gitops.pins.pin_commit`), its PR from GitHub (as ``report-deploy``)."""
    path = pins.env_path(args.env)
    sha = pins.pin_commit(Path(args.repo), args.env, args.pin)
    if sha is None:
        print(f"comment: {args.pin} is not pinned in {path} of any commit in this checkout's history: "
              f"no {args.kind} comment")
        return None
    pr = client.merged_pull_for_commit(sha)
    if pr is None:
        print(f"comment: no pull request merged {sha[:7]}, the commit that pinned {args.pin} in {path} "
              f"(pushed to the branch directly?): no {args.kind} comment")
        return None
    return int(pr["number"]), f", the PR that pinned {args.pin} in {path} ({sha[:7]})"
