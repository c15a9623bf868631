"""Defaults a command takes from the workflow run: the event, base/head refs, labels, PR number."""

from __future__ import annotations

from mlops_actions.github.event import ZERO_SHA, Event, load_event

__all__ = ["default_base", "event", "pr_labels", "pr_number"]


def event() -> Event | None:
    return load_event()


def default_base(ev: Event | None) -> str:
    """The PR's base commit, the commit before a push, else ``HEAD`` (compare with the working tree)."""
    if ev is not None and ev.pull_request is not None and ev.pull_request.base_sha:
        return ev.pull_request.base_sha
    if ev is not None and ev.push is not None and ev.push.before and ev.push.before != ZERO_SHA:
        return ev.push.before
    return "HEAD"


def pr_number(ev: Event | None) -> int | None:
    if ev is None:
        return None
    if ev.pull_request is not None:
        return ev.pull_request.number
    if ev.comment is not None and ev.comment.is_pull_request:
        return ev.comment.issue_number
    return None


def pr_labels(ev: Event | None) -> tuple[str, ...]:
    return ev.pull_request.labels if ev is not None and ev.pull_request is not None else ()
