"""Open a PR that changes one pin: what the promote and rollback buttons do."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from mlops_actions.github.rest import GitHubClient
from mlops_actions.gitops.pins import drop_strategy, env_path, set_pin

__all__ = ["PinChange", "edit", "open_pin_pr", "preview"]


@dataclass(frozen=True)
class PinChange:
    env: str
    model: str
    version: str
    branch: str
    title: str
    body: str
    only: bool = False  # also drop the pin's strategy: the version alone (how an A/B test ends)


def edit(text: str, change: PinChange) -> str:
    """The env file's text with the change made."""
    path = env_path(change.env)
    new = set_pin(text, path, change.model, change.version)
    return drop_strategy(new, path, change.model) if change.only else new


def preview(text: str, change: PinChange) -> str:
    """The unified diff the PR would make, for --dry-run."""
    path = env_path(change.env)
    new = edit(text, change)
    return "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}"))


def open_pin_pr(client: GitHubClient, change: PinChange, base: str) -> tuple[dict[str, object], bool]:
    """The PR that sets the pin: the env file read from GitHub at ``base``, edited, committed on
    the change's branch. Clicking the button again reuses the branch and the open PR (updated
    when the pin to write changed): ``(PR, created)``."""
    path = env_path(change.env)
    text, _ = client.get_file(path, base)
    new = edit(text, change)
    return client.propose_change(path=path, text=new, base=base, branch=change.branch,
                                 title=change.title, body=change.body, message=change.title)
