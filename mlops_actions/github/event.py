"""The event that started a workflow run, read from ``$GITHUB_EVENT_PATH``.

Only what the toolkit uses is exposed, typed: the pull request (number, head and
base, labels, whether it comes from a fork), the review of a
``pull_request_review``, the ``push`` range, the ``workflow_dispatch`` inputs and
the ``issue_comment`` body. Payload shapes follow GitHub's webhook docs; tests
use real payloads from ``@octokit/webhooks-examples``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_actions.errors import ConfigError, Location

__all__ = [
    "Comment",
    "Event",
    "PullRequest",
    "Push",
    "Review",
    "load_event",
    "parse_event",
]

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class PullRequest:
    number: int
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    author: str
    labels: tuple[str, ...] = ()
    from_fork: bool = False
    merged: bool = False
    merge_commit_sha: str | None = None
    draft: bool = False


@dataclass(frozen=True)
class Review:
    user: str
    state: str  # approved, changes_requested, commented, dismissed (lower case in webhooks)
    commit_id: str | None = None


@dataclass(frozen=True)
class Push:
    ref: str
    before: str
    after: str

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def created(self) -> bool:
        return self.before == ZERO_SHA


@dataclass(frozen=True)
class Comment:
    body: str
    user: str
    issue_number: int
    is_pull_request: bool


@dataclass(frozen=True)
class Event:
    name: str  # pull_request, pull_request_review, push, workflow_dispatch, issue_comment, ...
    action: str | None
    repository: str | None  # owner/name
    pull_request: PullRequest | None = None
    review: Review | None = None
    push: Push | None = None
    comment: Comment | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    sender: str | None = None


def _pull_request(pr: Mapping[str, Any], repository: str | None) -> PullRequest:
    head = pr.get("head") or {}
    base = pr.get("base") or {}
    head_repo = (head.get("repo") or {}).get("full_name")
    base_repo = (base.get("repo") or {}).get("full_name") or repository
    return PullRequest(
        number=int(pr["number"]),
        head_sha=str(head.get("sha", "")),
        head_ref=str(head.get("ref", "")),
        base_sha=str(base.get("sha", "")),
        base_ref=str(base.get("ref", "")),
        author=str((pr.get("user") or {}).get("login", "")),
        labels=tuple(str(label.get("name", "")) for label in pr.get("labels") or []),
        from_fork=head_repo is not None and base_repo is not None and head_repo != base_repo,
        merged=bool(pr.get("merged")),
        merge_commit_sha=pr.get("merge_commit_sha"),
        draft=bool(pr.get("draft")),
    )


def parse_event(name: str, payload: Mapping[str, Any]) -> Event:
    """Typed view of a webhook payload; unknown events keep only name, action, repository."""
    repository = (payload.get("repository") or {}).get("full_name")
    pr = payload.get("pull_request")
    pull_request = _pull_request(pr, repository) if isinstance(pr, Mapping) else None
    review = None
    if name == "pull_request_review" and isinstance(payload.get("review"), Mapping):
        r = payload["review"]
        review = Review(user=str((r.get("user") or {}).get("login", "")),
                        state=str(r.get("state", "")).lower(), commit_id=r.get("commit_id"))
    push = None
    if name == "push":
        push = Push(ref=str(payload.get("ref", "")), before=str(payload.get("before", "")),
                    after=str(payload.get("after", "")))
    comment = None
    if name == "issue_comment" and isinstance(payload.get("comment"), Mapping):
        issue = payload.get("issue") or {}
        comment = Comment(body=str(payload["comment"].get("body", "")),
                          user=str((payload["comment"].get("user") or {}).get("login", "")),
                          issue_number=int(issue.get("number", 0)),
                          is_pull_request="pull_request" in issue)
    raw_inputs = payload.get("inputs") or {}
    inputs = {str(k): "" if v is None else str(v) for k, v in raw_inputs.items()} \
        if isinstance(raw_inputs, Mapping) else {}
    return Event(
        name=name, action=payload.get("action"), repository=repository,
        pull_request=pull_request, review=review, push=push, comment=comment, inputs=inputs,
        sender=(payload.get("sender") or {}).get("login"),
    )


def load_event(environ: Mapping[str, str] | None = None) -> Event | None:
    """The event of this run, or None outside Actions (no ``GITHUB_EVENT_PATH``)."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the event payload: {exc.strerror}",
                          location=Location(path),
                          hint="GITHUB_EVENT_PATH must name the runner's event JSON file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the event payload is not JSON: {exc.msg}",
                          location=Location(path, exc.lineno, exc.colno)) from None
    if not isinstance(payload, Mapping):
        raise ConfigError("the event payload is not a JSON object", location=Location(path))
    return parse_event(env.get("GITHUB_EVENT_NAME", ""), payload)
