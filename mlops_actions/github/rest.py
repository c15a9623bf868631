"""A small GitHub REST client on ``requests``: bounded retries, pagination, masking.

Retries: 5xx and connection errors back off exponentially (a 5xx's
``Retry-After`` is honoured); secondary rate limits (403/429 with
``Retry-After``, or ``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``)
wait as told, but never longer than ``max_wait`` per try and never more than
``max_retries`` tries. The token is sent only in the ``Authorization`` header
and is scrubbed from every message this module raises.

Writes that must happen once (the sticky comment, a PR, a branch) are not
resent blindly: a failure after sending (the connection dropped, a 5xx) may hide
a success, so the client looks the thing up before sending again.

Operations are the few the workflows need: sticky PR comments, commit statuses,
check runs, Deployments and their statuses, the PR of a merge commit, a
reviewer's repository permission and team membership, a branch +
commit + PR for the promote and rollback buttons, and issues.
"""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from mlops_actions.errors import GitHubError
from mlops_actions.retry import RetryPolicy, TryAgain

__all__ = [
    "COMMENT_LIMIT",
    "GitHubAlreadyExists",
    "GitHubClient",
    "GitHubConflict",
    "GitHubNotFound",
    "StickyComment",
    "deploy_comment",
    "marker",
    "sticky_body",
    "truncate_body",
]

COMMENT_LIMIT = 65536  # GitHub rejects an issue comment body longer than this
_RETRY_STATUSES = {500, 502, 503, 504}
_LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubNotFound(GitHubError):
    """The resource does not exist (or the token cannot see it): HTTP 404."""


class GitHubConflict(GitHubError):
    """HTTP 409: the resource changed under the request (a file's sha no longer matches)."""


class GitHubAlreadyExists(GitHubError):
    """HTTP 422 whose message says the thing already exists (a branch, a PR): GitHub says so
    only in words, so this client reads them once, here, and callers test the class."""


class GitHubTransient(GitHubError):
    """The last try failed in a way a later one may not (connection lost, 5xx, rate limit).

    ``wait``: the seconds to wait before trying again (``Retry-After``, or the backoff).
    """

    def __init__(self, message: str, *, wait: float, hint: str | None = None,
                 status: int | None = None, answer: str | None = None) -> None:
        super().__init__(message, hint=hint, status=status, answer=answer)
        self.wait = wait


class _Retry(TryAgain):
    """One try of :meth:`GitHubClient.request` that a later one may fix; ``status`` None for a
    lost connection. ``wait``: what this try would wait (for the final GitHubTransient)."""

    def __init__(self, detail: str, *, tries: int, wait: float, status: int | None = None) -> None:
        super().__init__(detail, retry_after=wait if status is not None else None)
        self.tries = tries
        self.wait = wait
        self.status = status


def _permission_hint(status: int) -> str | None:
    if status in (401, 403):
        return "the token lacks a permission: give this job e.g. `pull-requests: write`"
    return None


def _final_error(what: str, status: int, last: str, tries: int, message: str) -> GitHubError:
    """The error of an answer no retry will change, typed by what it means."""
    if status == 404:
        return GitHubNotFound(f"GitHub API {what}: not found ({last})",
                              hint="the PR/issue may be deleted, or the token lacks access",
                              status=status, answer=last)
    suffix = f" after {tries} tries" if tries > 1 else ""
    text = f"GitHub API {what} failed{suffix}: {last}"
    if status == 409:
        return GitHubConflict(text, status=status, answer=last)
    if status == 422 and "already exists" in message.lower():
        return GitHubAlreadyExists(text, status=status, answer=last)
    return GitHubError(text, hint=_permission_hint(status), status=status, answer=last)


def marker(kind: str, env: str) -> str:
    """The hidden marker that finds the one sticky comment per kind and environment."""
    return f"<!-- mlops-actions:{kind}:{env} -->"


def sticky_body(kind: str, env: str, body: str) -> str:
    """A sticky comment's whole text as posted: its marker, then the body, under the limit."""
    return truncate_body(f"{marker(kind, env)}\n{body}")


def deploy_comment(env: str, state: str, sha: str, log_url: str | None, body: str | None) -> str:
    """The deploy comment's body on the merged PR (``report-deploy``): outcome, commit, run
    link, then ``body`` (``status --markdown``: routes, rollouts, canary-vs-stable judgements)."""
    icon = "✅" if state == "success" else "❌" if state in ("failure", "error") else "⏳"
    text = f"### {icon} Deploy to `{env}`: {state}\n\nCommit `{sha[:7]}`"
    text += f" · [run]({log_url})\n\n" if log_url else "\n\n"
    return text + (body or "")


def truncate_body(body: str, limit: int = COMMENT_LIMIT) -> str:
    """Keep a comment under GitHub's limit, cutting at a line and saying so."""
    if len(body) < limit:
        return body
    note = "\n\n_(truncated: the full report is in the job summary and the run's artifacts)_"
    keep = body[: limit - len(note) - 1]
    if "\n" in keep:
        keep = keep[: keep.rfind("\n")]
    return keep + note


@dataclass(frozen=True)
class StickyComment:
    id: int
    url: str
    created: bool  # False: an existing comment was updated


class GitHubClient:
    """REST calls for one repository (``owner/name``)."""

    def __init__(self, repository: str, token: str | None, *,
                 api_url: str = "https://api.github.com", timeout: float = 10.0,
                 max_retries: int = 4, backoff: float = 1.0, max_wait: float = 60.0,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository or ""):
            raise GitHubError(f"repository {repository!r} is not owner/name",
                              hint="set GITHUB_REPOSITORY (Actions sets it) or pass --repository")
        self.repository = repository
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep or _sleep
        # Not echoed with ::add-mask:: (that line itself would carry it): the runner masks
        # secrets and github.token already; this client only keeps it out of its messages.
        self._token = token or ""
        self._session = session or requests.Session()
        self._session.headers.update({
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "mlops-actions",
        })
        if self._token:
            self._session.headers["Authorization"] = f"Bearer {self._token}"
        self.calls = 0  # HTTP requests sent, retries included

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> GitHubClient:
        """From ``GITHUB_REPOSITORY``, ``GITHUB_TOKEN`` and ``GITHUB_API_URL`` (as Actions sets them)."""
        env = os.environ if environ is None else environ
        token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
        if not token:
            raise GitHubError("no GitHub token: GITHUB_TOKEN is not set",
                              hint="pass `GITHUB_TOKEN: ${{ github.token }}` in the step's env "
                              "(fork PRs get no token: this step is skipped there)")
        if "MLOPS_ACTIONS_HTTP_BACKOFF" in env and "backoff" not in kwargs:
            try:
                kwargs["backoff"] = float(env["MLOPS_ACTIONS_HTTP_BACKOFF"])
            except ValueError:
                raise GitHubError("MLOPS_ACTIONS_HTTP_BACKOFF must be a number of seconds") from None
        return cls(env.get("GITHUB_REPOSITORY", ""), token,
                   api_url=env.get("GITHUB_API_URL", "https://api.github.com"), **kwargs)

    # ----------------------------------------------------------------- plumbing
    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.api_url}/repos/{self.repository}/{path.lstrip('/')}" if not path.startswith("/") \
            else f"{self.api_url}{path}"

    def _wait_for(self, response: requests.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the answer is final."""
        status = response.status_code
        if status in _RETRY_STATUSES:
            return _retry_after(response) if "Retry-After" in response.headers \
                else float(self.backoff * (2 ** attempt))
        if status in (403, 429):
            retry_after = response.headers.get("Retry-After")
            if retry_after is not None:
                try:
                    return max(0.0, float(retry_after))
                except ValueError:
                    return float(self.backoff * (2 ** attempt))
            if response.headers.get("x-ratelimit-remaining") == "0":
                reset = response.headers.get("x-ratelimit-reset")
                try:
                    return max(0.0, float(reset) - time.time()) if reset else float(self.backoff)
                except ValueError:
                    return float(self.backoff * (2 ** attempt))
            text = response.text[:500].lower()
            if "secondary rate limit" in text:
                return max(60.0, float(self.backoff * (2 ** attempt)))
        return None

    def _policy(self, retries: int) -> RetryPolicy:
        """The shared retry policy (:mod:`mlops_actions.retry`) with this client's numbers: the
        backoff of a lost connection capped at ``max_wait``; a server's wait used as computed
        by :meth:`_wait_for` (longer than ``max_wait`` is refused before it gets here)."""
        return RetryPolicy(retries=retries, backoff=self.backoff, max_backoff=self.max_wait,
                           sleep=self._sleep)

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None, max_retries: int | None = None
                ) -> requests.Response:
        """One API call with bounded retries; raises GitHubError on a final failure
        (:class:`GitHubTransient` when a later try might succeed)."""
        url = self._url(path)
        what = f"{method} {self._scrub(url)}"
        policy = self._policy(self.max_retries if max_retries is None else max_retries)

        def attempt(n: int) -> requests.Response:
            try:
                self.calls += 1
                response = self._session.request(method, url, json=json, params=params,
                                                 timeout=self.timeout)
                if _cut_short(response):
                    raise requests.ConnectionError("the answer was cut short (its headers end early)")
            except requests.RequestException as exc:
                raise _Retry(f"{type(exc).__name__}: {self._scrub(str(exc))}", tries=n + 1,
                             wait=policy.backoff_for(n + 1)) from None
            if response.status_code < 400:
                return response
            wait = self._wait_for(response, n)
            last = f"HTTP {response.status_code}: {self._scrub(_message(response))}"
            if wait is not None and wait > self.max_wait:
                raise GitHubError(
                    f"GitHub API {what}: asked to wait {wait:.0f}s (rate limited or unavailable), "
                    f"more than the {self.max_wait:.0f}s this client waits ({last})",
                    hint="retry the job later, or reduce the number of calls",
                    status=response.status_code, answer=last) from None
            if wait is not None:
                raise _Retry(last, tries=n + 1, wait=wait, status=response.status_code)
            raise _final_error(what, response.status_code, last, n + 1, _message(response)) from None

        try:
            return policy.call(attempt)
        except _Retry as gave_up:
            if gave_up.status is None:
                raise GitHubTransient(f"GitHub API {what} failed after {gave_up.tries} tries: "
                                      f"{gave_up.detail}", wait=gave_up.wait,
                                      hint="check GITHUB_API_URL and the runner's network") from None
            tries = f" after {gave_up.tries} tries" if gave_up.tries > 1 else ""
            raise GitHubTransient(f"GitHub API {what} failed{tries}: {gave_up.detail}", wait=gave_up.wait,
                                  hint=_permission_hint(gave_up.status), status=gave_up.status,
                                  answer=gave_up.detail) from None

    def create_once(self, path: str, body: Any, find: Callable[[], Any | None]) -> tuple[Any, bool]:
        """POST something that must exist once (a comment, a PR, a branch): (data, created).

        Each try is sent once; when it fails in a way that may hide a success (the
        connection dropped after sending, a 5xx, a 422 "already exists"), ``find()`` looks
        the thing up after the wait, and only when it is absent is the POST sent again:
        ``max_retries`` resends at most. ``created`` is False when ``find()`` found it.
        """
        what = f"POST {self._scrub(self._url(path))}"
        last: list[GitHubError] = []

        def attempt(n: int) -> tuple[Any, bool]:
            try:
                return self.json("POST", path, json=body, max_retries=0), True
            except GitHubTransient as exc:
                last.append(exc)
                raise TryAgain(exc.message, retry_after=exc.wait) from None
            except GitHubAlreadyExists as exc:
                last.append(exc)  # a lost answer's twin request: look it up, at once
                raise TryAgain(exc.message, retry_after=0.0) from None

        def look_up(n: int) -> tuple[Any, bool] | None:
            found = find()
            return None if found is None else (found, False)

        try:
            return self._policy(self.max_retries).call(attempt, before_resend=look_up)
        except TryAgain:
            pass
        found = find()
        if found is not None:
            return found, False
        detail = last[-1].message.split(": ", 1)[-1] if last else ""
        raise GitHubError(f"GitHub API {what} failed after {self.max_retries + 1} tries "
                          f"(looked up before each resend): {detail}",
                          hint=last[-1].hint if last else None)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return self._parse(response, f"{method} {self._scrub(self._url(path))}")

    def _parse(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise GitHubError(f"GitHub API {what}: the answer is not JSON: "
                              f"{self._scrub(response.text[:100])!r}",
                              hint="GITHUB_API_URL must point at the REST API (e.g. "
                                   "https://api.github.com); rerun if it was a network hiccup") from None

    def paginate(self, path: str, params: Mapping[str, Any] | None = None,
                 max_pages: int = 50) -> Iterator[Any]:
        """Every item of a list endpoint, following ``Link: rel="next"`` (bounded)."""
        query: dict[str, Any] = {"per_page": 100, **(params or {})}
        url: str | None = self._url(path)
        for _ in range(max_pages):
            if url is None:
                return
            response = self.request("GET", url, params=query)
            query = {}  # the next link carries the query
            items = self._parse(response, f"GET {self._scrub(url)}")
            if not isinstance(items, list):
                raise GitHubError(f"GitHub API GET {self._scrub(url)}: expected a list")
            yield from items
            m = _LINK_NEXT.search(response.headers.get("Link", ""))
            url = m.group(1) if m else None

    # ----------------------------------------------------------------- comments
    def find_comment(self, issue_number: int, kind: str, env: str) -> dict[str, Any] | None:
        tag = marker(kind, env)
        for comment in self.paginate(f"issues/{issue_number}/comments"):
            if tag in (comment.get("body") or ""):
                return dict(comment)
        return None

    def upsert_comment(self, issue_number: int, kind: str, env: str, body: str) -> StickyComment:
        """One comment per (kind, env) on a PR or issue: update it if present, else create it."""
        text = sticky_body(kind, env, body)
        existing = self.find_comment(issue_number, kind, env)
        if existing is not None:
            data = self.json("PATCH", f"issues/comments/{existing['id']}", json={"body": text})
            return StickyComment(id=int(data["id"]), url=str(data.get("html_url", "")), created=False)

        def find() -> dict[str, Any] | None:  # a lost answer may hide the comment we created
            found = self.find_comment(issue_number, kind, env)
            if found is None or found.get("body") == text:
                return found
            return dict(self.json("PATCH", f"issues/comments/{found['id']}", json={"body": text}))

        data, _ = self.create_once(f"issues/{issue_number}/comments", {"body": text}, find)
        return StickyComment(id=int(data["id"]), url=str(data.get("html_url", "")), created=True)

    # ----------------------------------------------------------------- checks
    def create_status(self, sha: str, state: str, context: str, description: str = "",
                      target_url: str | None = None) -> dict[str, Any]:
        """A commit status; state is error, failure, pending or success."""
        body: dict[str, Any] = {"state": state, "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        return dict(self.json("POST", f"statuses/{sha}", json=body))

    def create_check_run(self, name: str, head_sha: str, *, conclusion: str | None = None,
                         title: str = "", summary: str = "", details_url: str | None = None
                         ) -> dict[str, Any]:
        """A check run; with ``conclusion`` it is created completed, else in progress."""
        body: dict[str, Any] = {"name": name, "head_sha": head_sha,
                                "status": "completed" if conclusion else "in_progress"}
        if conclusion:
            body["conclusion"] = conclusion
        if details_url:
            body["details_url"] = details_url
        if title or summary:
            body["output"] = {"title": title or name, "summary": truncate_body(summary or title)}
        return dict(self.json("POST", "check-runs", json=body))

    def complete_check_run(self, check_run_id: int, conclusion: str, *, title: str = "",
                           summary: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"status": "completed", "conclusion": conclusion}
        if title or summary:
            body["output"] = {"title": title or conclusion, "summary": truncate_body(summary or title)}
        return dict(self.json("PATCH", f"check-runs/{check_run_id}", json=body))

    # ----------------------------------------------------------------- deployments
    def create_deployment(self, ref: str, environment: str, *, description: str = "",
                          payload: Mapping[str, Any] | None = None,
                          production: bool | None = None) -> dict[str, Any]:
        """A Deployment of ``ref``; its payload carries a random ``mlops_actions_request`` id, by
        which a resend after a lost answer finds the one it created instead of adding another."""
        request_id = uuid.uuid4().hex
        body: dict[str, Any] = {"ref": ref, "environment": environment, "auto_merge": False,
                                "required_contexts": [], "description": description[:140],
                                "payload": {**(payload or {}), "mlops_actions_request": request_id}}
        if production is not None:
            body["production_environment"] = production

        def find() -> dict[str, Any] | None:
            for d in self.json("GET", "deployments", params={"ref": ref, "environment": environment}):
                if isinstance(d.get("payload"), Mapping) and \
                        d["payload"].get("mlops_actions_request") == request_id:
                    return dict(d)
            return None

        data, _ = self.create_once("deployments", body, find)
        return dict(data)

    def create_deployment_status(self, deployment_id: int, state: str, *, description: str = "",
                                 environment_url: str | None = None, log_url: str | None = None
                                 ) -> dict[str, Any]:
        """state: error, failure, inactive, in_progress, queued, pending or success."""
        body: dict[str, Any] = {"state": state, "description": description[:140]}
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url
        return dict(self.json("POST", f"deployments/{deployment_id}/statuses", json=body))

    # ----------------------------------------------------------------- pulls
    def pull(self, number: int) -> dict[str, Any]:
        return dict(self.json("GET", f"pulls/{number}"))

    def reviews(self, number: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.paginate(f"pulls/{number}/reviews")]

    def pulls_for_commit(self, sha: str) -> list[dict[str, Any]]:
        """The PRs a commit belongs to (a merge commit: the PR that was merged)."""
        return [dict(p) for p in self.paginate(f"commits/{sha}/pulls")]

    def merged_pull_for_commit(self, sha: str) -> dict[str, Any] | None:
        pulls = self.pulls_for_commit(sha)
        for p in pulls:
            if p.get("merge_commit_sha") == sha:
                return p
        return pulls[0] if pulls else None

    def branch_sha(self, branch: str) -> str:
        data = self.json("GET", f"git/ref/heads/{quote(branch, safe='/')}")
        return str(data["object"]["sha"])

    def find_branch(self, branch: str) -> str | None:
        """The commit ``branch`` points at, or None when there is no such branch."""
        try:
            return self.branch_sha(branch)
        except GitHubNotFound:
            return None

    def create_branch(self, branch: str, sha: str) -> None:
        """Create ``branch`` at ``sha``; a branch already there at ``sha`` (a rerun, or a lost
        answer) is fine, at another commit it is an error."""

        def find() -> dict[str, Any] | None:
            current = self.find_branch(branch)
            if current is None:
                return None
            if current != sha:
                raise GitHubError(f"branch {branch!r} already exists at {current[:12]}, not {sha[:12]}",
                                  hint="delete that branch, or let the next run pick another name")
            return {"ref": f"refs/heads/{branch}", "object": {"sha": sha}}

        self.create_once("git/refs", {"ref": f"refs/heads/{branch}", "sha": sha}, find)

    def reset_branch(self, branch: str, sha: str) -> None:
        """Point ``branch`` at ``sha``, forced (the bot's own branch, rebuilt from the base)."""
        self.json("PATCH", f"git/refs/heads/{quote(branch, safe='/')}", json={"sha": sha, "force": True})

    def get_file(self, path: str, ref: str) -> tuple[str, str]:
        """(text, blob sha) of a file at ``ref``."""
        data = self.json("GET", f"contents/{quote(path)}", params={"ref": ref})
        if not isinstance(data, Mapping) or data.get("type") != "file":
            raise GitHubError(f"{path} at {ref} is not a file")
        text = base64.b64decode(str(data.get("content", ""))).decode("utf-8")
        return text, str(data["sha"])

    def put_file(self, path: str, text: str, *, message: str, branch: str,
                 sha: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"message": message, "branch": branch,
                                "content": base64.b64encode(text.encode("utf-8")).decode("ascii")}
        if sha:
            body["sha"] = sha
        try:
            return dict(self.json("PUT", f"contents/{quote(path)}", json=body))
        except GitHubError as exc:
            # A retry after a lost answer finds the file already changed (409: sha does not match):
            # done if what is there is what we wrote.
            if not isinstance(exc, GitHubConflict) or self.get_file(path, branch)[0] != text:
                raise
            return {}

    def open_pull(self, head: str, base: str) -> dict[str, Any] | None:
        """The open PR from ``head`` into ``base``, if there is one."""
        owner = self.repository.split("/")[0]
        pulls = self.json("GET", "pulls", params={"head": f"{owner}:{head}", "base": base,
                                                  "state": "open"})
        return dict(pulls[0]) if pulls else None

    def create_pull(self, *, title: str, head: str, base: str, body: str,
                    draft: bool = False) -> tuple[dict[str, Any], bool]:
        """Open a PR from ``head``: (the PR, created). An open PR from ``head`` into ``base``
        already there (a second click, or a lost answer) is updated to ``title`` and ``body``
        and returned instead of a second one."""
        body = truncate_body(body)
        existing = self.open_pull(head, base)
        if existing is None:
            data, created = self.create_once("pulls", {
                "title": title, "head": head, "base": base, "body": body,
                "draft": draft, "maintainer_can_modify": True}, lambda: self.open_pull(head, base))
            if created:
                return dict(data), True
            existing = dict(data)
        if existing.get("title") != title or existing.get("body") != body:
            existing = dict(self.json("PATCH", f"pulls/{existing['number']}",
                                      json={"title": title, "body": body}))
        return existing, False

    def propose_change(self, *, path: str, text: str, base: str, branch: str, title: str,
                       body: str, message: str) -> tuple[dict[str, Any], bool]:
        """``path`` set to ``text`` on ``branch`` off ``base``, and the PR from it: (PR, created).

        Idempotent, like a button clicked twice: the branch is created at ``base``, or, when
        it exists from an earlier run, kept if it already holds ``text`` and otherwise reset
        to ``base`` before the commit (it is the bot's own branch); the open PR is reused."""
        sha = self.branch_sha(base)
        current = self.find_branch(branch)
        if current is None:
            self.create_branch(branch, sha)
        elif self._file_or_none(path, branch) != text:
            self.reset_branch(branch, sha)
        else:
            return self.create_pull(title=title, head=branch, base=base, body=body)
        _, blob = self.get_file(path, base)
        self.put_file(path, text, message=message, branch=branch, sha=blob)
        return self.create_pull(title=title, head=branch, base=base, body=body)

    def _file_or_none(self, path: str, ref: str) -> str | None:
        try:
            return self.get_file(path, ref)[0]
        except GitHubNotFound:
            return None

    # ----------------------------------------------------------------- access
    def collaborator_permission(self, username: str) -> str:
        """``username``'s base role on this repository: admin, write, read or none (GitHub
        reports maintain as write and triage as read; ``role_name`` has the exact role)."""
        data = self.json("GET", f"collaborators/{quote(username)}/permission")
        return str((data or {}).get("permission") or "none")

    def team_membership(self, org: str, team_slug: str, username: str) -> str:
        """``active`` or ``pending`` (invited); GitHubNotFound when ``username`` is not a member
        or the token cannot see the team (a repository's GITHUB_TOKEN cannot read org teams)."""
        data = self.json("GET", f"/orgs/{quote(org)}/teams/{quote(team_slug)}/memberships/"
                                f"{quote(username)}")
        return str((data or {}).get("state") or "")

    # ----------------------------------------------------------------- labels
    def add_labels(self, issue_number: int, labels: list[str]) -> list[str]:
        """Add ``labels`` to an issue or PR (GitHub creates a label the repository lacks);
        returns the labels it carries now."""
        data = self.json("POST", f"issues/{issue_number}/labels", json={"labels": labels})
        return [str(label["name"]) for label in data or ()]

    # ----------------------------------------------------------------- issues
    def create_issue(self, title: str, body: str, labels: list[str] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"title": title, "body": truncate_body(body)}
        if labels:
            payload["labels"] = labels
        return dict(self.json("POST", "issues", json=payload))


def _cut_short(response: requests.Response) -> bool:
    """An answer whose header block was cut: http.client takes it for a complete answer with an
    empty, close-delimited body; the API always says how long its body is (or has none)."""
    return response.status_code not in (204, 304) and "Content-Length" not in response.headers \
        and "Transfer-Encoding" not in response.headers


def _retry_after(response: requests.Response) -> float:
    """A 5xx's ``Retry-After`` in seconds (a number; an HTTP date is read as 1 s)."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except ValueError:
        return 1.0


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _message(response: requests.Response) -> str:
    """GitHub's error text: the top-level ``message`` and, for a 422, what each item of
    ``errors`` says (a ``custom`` error carries the reason, e.g. "A pull request already
    exists for octo:branch.", only there; the others name the resource, field and code)."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(data, Mapping):
        return ""
    text = str(data.get("message", ""))
    details = []
    for item in data.get("errors") or ():
        if isinstance(item, Mapping):
            details.append(str(item.get("message") or " ".join(
                str(item[k]) for k in ("resource", "field", "code") if item.get(k))))
        elif isinstance(item, str):
            details.append(item)
    if details:
        text = f"{text}: {'; '.join(details)}"
    return text[:300]
