"""``mlops-actions report-deploy``: a GitHub Deployment + status, and the sticky deploy comment
on the merged PR. Never fails the deploy: GitHub errors are warnings."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mlops_actions.commands._github import client_or_none, run_url, warn
from mlops_actions.errors import EXIT_OK, ConfigError, GitHubError
from mlops_actions.github import actions
from mlops_actions.github.rest import deploy_comment

ORDER = 62
OUTPUTS = frozenset({"deployment-id"})  # step outputs written to $GITHUB_OUTPUT
STATES = ("success", "failure", "error", "in_progress", "queued", "pending", "inactive")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report-deploy", help="record a deploy: GitHub Deployment status + comment on the merged PR",
        description="Create a Deployment of --sha to --env with --state, and update the sticky "
        "'deploy' comment on the PR merged as --sha. Always exits 0 (warnings on GitHub errors).")
    p.add_argument("--env", required=True)
    p.add_argument("--state", required=True, choices=STATES)
    p.add_argument("--sha", help="the deployed commit (default: GITHUB_SHA)")
    p.add_argument("--body-file", metavar="FILE", help="Markdown for the PR comment (e.g. apply's report)")
    p.add_argument("--description", default="", help="short text (140 chars) for the Deployment status")
    p.add_argument("--environment-url", help="where the environment serves")
    p.add_argument("--log-url", help="default: this workflow run")
    p.add_argument("--deployment-id", default="", metavar="ID",
                   help="add the status to this Deployment (the deployment-id output of the run that "
                   "created it) instead of creating one: one Deployment per deploy, in_progress -> "
                   "success or failure")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sha = args.sha or os.environ.get("GITHUB_SHA")
    if not sha:
        raise ConfigError("report-deploy needs --sha (or GITHUB_SHA)")
    body = None
    if args.body_file:
        try:
            body = Path(args.body_file).read_text(encoding="utf-8")
        except OSError as exc:
            warn(f"report-deploy: cannot read {args.body_file}: {exc.strerror}")
    client = client_or_none("report-deploy")
    if client is None:
        return EXIT_OK
    log_url = args.log_url or run_url()
    description = args.description or f"{args.env}: {args.state}"
    try:
        if args.deployment_id:
            deployment_id = int(args.deployment_id)
        else:
            deployment_id = int(client.create_deployment(sha, args.env, description=description,
                                                         production=args.env == "production")["id"])
        client.create_deployment_status(deployment_id, args.state, description=description,
                                        environment_url=args.environment_url, log_url=log_url)
        actions.set_output("deployment-id", str(deployment_id))
        print(f"deployment {deployment_id} of {sha[:7]} to {args.env}: {args.state}")
    except ValueError:
        warn(f"report-deploy: --deployment-id {args.deployment_id!r} is not a number")
    except GitHubError as exc:
        warn(f"report-deploy: could not record the Deployment: {exc.message}")
    try:
        pr = client.merged_pull_for_commit(sha)
        if pr is None:
            print(f"no pull request merged as {sha[:7]}: no comment")
            return EXIT_OK
        text = deploy_comment(args.env, args.state, sha, log_url, body)
        result = client.upsert_comment(int(pr["number"]), "deploy", args.env, text)
        print(f"{'created' if result.created else 'updated'} the deploy comment on #{pr['number']}")
    except GitHubError as exc:
        warn(f"report-deploy: could not comment on the merged PR: {exc.message}")
    return EXIT_OK
