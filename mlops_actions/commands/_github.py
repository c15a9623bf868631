"""Helpers shared by the commands that talk to GitHub (not a command itself)."""

from __future__ import annotations

import os
import sys

from mlops_actions.errors import GitHubError
from mlops_actions.github import actions
from mlops_actions.github.rest import GitHubClient

__all__ = ["client_or_none", "run_url", "warn"]


def run_url() -> str | None:
    """This workflow run's page, from the variables Actions sets."""
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY",
                                                      "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
    if actions.in_actions():
        actions.annotate_limited("warning", message, title="mlops-actions")


def client_or_none(what: str) -> GitHubClient | None:
    """A client from the environment, or None (with a warning) when there are no credentials."""
    if not (os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")):
        warn(f"{what}: skipped: no credentials (GITHUB_TOKEN is not set; fork PRs get none)")
        return None
    try:
        return GitHubClient.from_env()
    except GitHubError as exc:
        warn(f"{what}: skipped: {exc.message}")
        return None
