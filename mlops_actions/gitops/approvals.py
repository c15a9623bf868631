"""Approvals as branch protection counts them, each reviewer judged with the reason.

A reviewer's approval counts when all of these hold, checked in this order (the
cheap ones first, so GitHub is asked only about approvals that could count):

1. the reviewer is not the PR's author;
2. their latest deciding review is APPROVED (CHANGES_REQUESTED and DISMISSED
   cancel an earlier approval, COMMENTED changes nothing);
3. it was given on the PR's head commit (``commit_id``): an approval of an
   earlier commit is stale, as with "dismiss stale pull request approvals";
4. they have write access: ``author_association`` OWNER, MEMBER or COLLABORATOR,
   or else the collaborator-permission endpoint says admin, maintain or write;
5. when the environment lists ``promotion.approvers``, they are listed by login
   or are an active member of a listed ``org/team``.

GitHub is asked through :class:`ReviewerAccess` (a narrow port; ``GitHubAccess``
is the REST one). A question it cannot answer (403, 404, no token) leaves the
approval uncounted and *unchecked*, which the rule reports as an error when the
count falls short: the approval might have counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlops_actions.errors import GitHubError
from mlops_actions.github.rest import GitHubClient, GitHubNotFound

__all__ = [
    "TEAM_READ_HINT",
    "WRITE_ASSOCIATIONS",
    "WRITE_PERMISSIONS",
    "GitHubAccess",
    "LookupFailed",
    "ReviewerAccess",
    "Verdict",
    "judge_reviews",
    "latest_reviews",
]

WRITE_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
TEAM_READ_HINT = "the token needs members:read (a GitHub App or PAT)"
_DECIDING = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")


class LookupFailed(GitHubError):
    """GitHub could not answer who a reviewer is (403, 404, no credentials)."""


class ReviewerAccess(Protocol):
    """The two questions the approvals rule asks GitHub; each raises LookupFailed when
    the answer cannot be had."""

    def permission(self, login: str) -> str:
        """admin, maintain, write, triage, read or none."""
        ...

    def team_state(self, org: str, team: str, login: str) -> str:
        """``active``, ``pending`` or ``none`` (not a member)."""
        ...


def _status(exc: GitHubError) -> str:
    """GitHub's answer (``HTTP 403: Resource not accessible``), or the error when none came."""
    return exc.answer or exc.message


class GitHubAccess:
    """ReviewerAccess through the REST API; each question is asked once (a failure too)."""

    def __init__(self, client: GitHubClient) -> None:
        self.client = client
        self._answers: dict[tuple[str, ...], str | LookupFailed] = {}

    def _ask(self, key: tuple[str, ...], ask: Callable[[], str]) -> str:
        if key not in self._answers:
            try:
                self._answers[key] = ask()
            except LookupFailed as exc:
                self._answers[key] = exc
        answer = self._answers[key]
        if isinstance(answer, LookupFailed):
            raise answer
        return answer

    def permission(self, login: str) -> str:
        def ask() -> str:
            try:
                return self.client.collaborator_permission(login)
            except GitHubError as exc:
                raise LookupFailed(f"GitHub answered {_status(exc)} to the collaborator-permission "
                                   "request") from None

        return self._ask(("permission", login.lower()), ask)

    def team_state(self, org: str, team: str, login: str) -> str:
        def ask() -> str:
            try:
                return self.client.team_membership(org, team, login) or "none"
            except GitHubNotFound:
                # GitHub's answer both for "not a member" and for a team the token cannot see
                # (a repository's GITHUB_TOKEN sees no org team): not a "no"
                raise LookupFailed(f"{org}/{team}: HTTP 404, GitHub's answer for a non-member "
                                   "and for a team the token cannot see") from None
            except GitHubError as exc:
                raise LookupFailed(f"{org}/{team}: {_status(exc)}") from None

        return self._ask(("team", org.lower(), team.lower(), login.lower()), ask)


@dataclass(frozen=True)
class Verdict:
    """One reviewer: counted or not, and why; ``unchecked``: GitHub could not tell."""

    login: str
    counted: bool
    why: str
    unchecked: bool = False

    def line(self) -> str:
        return f"@{self.login}: counted ({self.why})" if self.counted \
            else f"@{self.login}: not counted: {self.why}"


def _login(review: Mapping[str, Any]) -> str:
    return str((review.get("user") or {}).get("login", ""))


def latest_reviews(reviews: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each reviewer's latest deciding review (APPROVED, CHANGES_REQUESTED, DISMISSED), or their
    latest review when none decided; the API lists reviews oldest first."""
    latest: dict[str, Mapping[str, Any]] = {}
    for r in reviews:
        user = _login(r)
        if not user:
            continue
        deciding = str(r.get("state", "")).upper() in _DECIDING
        if deciding or user not in latest or str(latest[user].get("state", "")).upper() not in _DECIDING:
            latest[user] = r
    return latest


def _write_access(login: str, association: str, access: ReviewerAccess | None) -> Verdict:
    if association in WRITE_ASSOCIATIONS:
        return Verdict(login, True, association)
    if access is None:
        return Verdict(login, False, f"could not check write access (author_association "
                       f"{association}): no GitHub credentials to ask", unchecked=True)
    try:
        permission = access.permission(login)
    except LookupFailed as exc:
        return Verdict(login, False, f"could not check write access (author_association "
                       f"{association}): {exc.message}", unchecked=True)
    if permission in WRITE_PERMISSIONS:
        return Verdict(login, True, f"{association}, {permission} permission")
    return Verdict(login, False, f"no write access (author_association {association}, "
                   f"permission {permission})")


def _listed(found: Verdict, approvers: Sequence[str], access: ReviewerAccess | None) -> Verdict:
    """``found`` (counted, with write access) narrowed to ``approvers``."""
    login = found.login
    if login.lower() in {a.lower() for a in approvers if "/" not in a}:
        return Verdict(login, True, f"{found.why}, listed in approvers")
    problems: list[str] = []
    pending: list[str] = []
    for entry in (a for a in approvers if "/" in a):
        org, team = entry.split("/", 1)
        if access is None:
            problems.append(f"{entry}: no GitHub credentials to ask")
            continue
        try:
            state = access.team_state(org, team, login)
        except LookupFailed as exc:
            problems.append(exc.message)
            continue
        if state == "active":
            return Verdict(login, True, f"{found.why}, member of {entry}")
        if state == "pending":
            pending.append(entry)
    listed = ", ".join(approvers)
    if problems:
        return Verdict(login, False, f"could not check team membership: {TEAM_READ_HINT} "
                       f"({'; '.join(problems)}); approvers: {listed}", unchecked=True)
    invited = f" (invitation to {', '.join(pending)} not accepted yet)" if pending else ""
    return Verdict(login, False, f"not in approvers ({listed}){invited}")


def _judge(login: str, review: Mapping[str, Any], *, author: str | None, head_sha: str,
           approvers: Sequence[str], access: ReviewerAccess | None) -> Verdict:
    state = str(review.get("state", "")).upper()
    if author is not None and login.lower() == author.lower():
        return Verdict(login, False, "the PR's author")
    if state != "APPROVED":
        return Verdict(login, False, f"latest review is {state}" if state in _DECIDING
                       else f"no approval (latest review {state or 'unknown'})")
    commit = str(review.get("commit_id") or "")
    if commit != head_sha:
        return Verdict(login, False, f"approved {commit[:7] or 'an unknown commit'}, not the head "
                       f"commit {head_sha[:7]}")
    found = _write_access(login, str(review.get("author_association") or "NONE").upper(), access)
    if not found.counted or not approvers:
        return found
    return _listed(found, approvers, access)


def judge_reviews(reviews: Iterable[Mapping[str, Any]], *, author: str | None, head_sha: str,
                  approvers: Sequence[str] = (), access: ReviewerAccess | None = None
                  ) -> list[Verdict]:
    """A verdict per reviewer: the counted ones first, then the others, each by login."""
    verdicts = [_judge(login, r, author=author, head_sha=head_sha, approvers=approvers, access=access)
                for login, r in latest_reviews(reviews).items()]
    return sorted(verdicts, key=lambda v: (not v.counted, v.login.lower()))
