"""Open a PR that changes one pin: what the promote and rollback buttons do."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from mlops_actions.github.rest import GitHubClient
from mlops_actions.gitops.pins import env_path, set_pin

__all__ = ["PinChange", "open_pin_pr", "preview"]


@dataclass(frozen=True)
class PinChange:
    env: str
    model: str
    version: str
    branch: str
    title: str
    body: str


def preview(text: str, change: PinChange) -> str:
    """The unified diff the PR would make, for --dry-run."""
    path = env_path(change.env)
    new = set_pin(text, path, change.model, change.version)
    return "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}"))


def open_pin_pr(client: GitHubClient, change: PinChange, base: str) -> dict[str, object]:
    """Branch off ``base``, commit the edited env file (read from GitHub at ``base``), open the PR."""
    path = env_path(change.env)
    sha = client.branch_sha(base)
    text, blob = client.get_file(path, base)
    new = set_pin(text, path, change.model, change.version)
    client.create_branch(change.branch, sha)
    client.put_file(path, new, message=change.title, branch=change.branch, sha=blob)
    return client.create_pull(title=change.title, head=change.branch, base=base, body=change.body)
