"""One GitHub issue per open alert key.

The issue body carries a hidden marker ``<!-- mlops-alert-key: KEY -->`` and the
spec's labels, so the issue is found again even when the alert state file is
lost. Fire: open an issue (or comment on the open one); update: comment;
resolve: comment and close. A deliberately small REST client (requests,
timeouts, bounded retries) behind the AlertSink port; the full client lives in
``mlops_actions.github`` and can replace it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

from mlops_actions.monitoring.alerts._http import DEFAULT_TIMEOUT, json_default, policy, request_json
from mlops_actions.monitoring.alerts.interface import Alert, AlertError, AlertStatus
from mlops_actions.retry import TryAgain

__all__ = ["API_URL", "GitHubIssueSink", "IssueApi", "issue_body", "marker"]

API_URL = "https://api.github.com"
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class IssueApi(Protocol):
    """What the sink needs of a GitHub REST client: ``json(method, path, json=, params=,
    max_retries=)`` with ``path`` relative to ``/repos/{owner}/{repo}/``
    (``mlops_actions.github.rest.GitHubClient`` has exactly this)."""

    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...


def marker(key: str) -> str:
    safe = key.replace("--", "-\u2010")  # an alert key can never close the HTML comment
    return f"<!-- mlops-alert-key: {safe} -->"


def _details_table(alert: Alert) -> str:
    rows = [("model", alert.model), ("environment", alert.environment), ("severity", alert.severity.value),
            *[(str(k), v) for k, v in alert.details.items() if k != "findings"]]
    lines = ["| | |", "|---|---|"]
    for k, v in rows:
        if v != "":
            text = json.dumps(v, default=json_default) if isinstance(v, dict | list) else str(v)
            cell = text.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {k} | {cell} |")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    return ("-" if v is None else str(v)).replace("|", "\\|").replace("\n", " ")


def _findings_table(alert: Alert) -> str:
    """A grouped alert's failing checks, worst first, as a Markdown table ("" when none)."""
    findings = alert.details.get("findings")
    if not isinstance(findings, list) or not findings:
        return ""
    lines = ["| check | severity | value | limit | detail |", "|---|---|---|---|---|"]
    lines += [f"| `{_cell(f.get('check'))}` | {_cell(f.get('severity'))} | {_cell(f.get('value'))} | "
              f"{_cell(f.get('limit'))} | {_cell(f.get('message'))} |" for f in findings]
    return "Failing checks, worst first:\n\n" + "\n".join(lines) + "\n\n"


def issue_body(alert: Alert) -> str:
    link = f"[Details]({alert.url})\n\n" if alert.url else ""
    return (f"{marker(alert.key)}\n**{alert.severity.value.upper()}**: {alert.summary}\n\n"
            f"{_findings_table(alert)}{_details_table(alert)}\n\n{link}"
            f"Opened by mlops-actions (`{alert.source}`); it comments on updates and closes "
            "this issue when the alert resolves.")


class _Lost(TryAgain):
    """A create that failed and may have been done: looked up before it is sent again."""

    def __init__(self, error: AlertError) -> None:
        super().__init__(str(error))
        self.error = error


class GitHubIssueSink:
    type = "github_issue"

    def __init__(self, repository: str, token: str, *, labels: Sequence[str] = ("mlops-alert",),
                 api_url: str = API_URL, timeout: float = DEFAULT_TIMEOUT, retries: int = 3,
                 backoff: float = 0.5, client: IssueApi | None = None) -> None:
        if not _REPO_RE.match(repository):
            raise AlertError(f"github_issue alert: repository {repository!r} is not OWNER/NAME",
                             hint="set GITHUB_REPOSITORY, e.g. octo-org/models")
        self._repo, self._token, self._labels = repository, token, list(labels)
        self._api = api_url.rstrip("/")
        self._timeout, self._retries, self._backoff = timeout, retries, backoff
        self._client = client

    def __repr__(self) -> str:
        return f"GitHubIssueSink(repository={self._repo!r}, token=***)"

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
              ok: tuple[int, ...] = (200, 201), retries: int | None = None) -> Any:
        if self._client is not None:
            try:
                extra = {} if retries is None else {"max_retries": retries}
                return self._client.json(method, path.lstrip("/"), json=body, params=params, **extra)
            except AlertError:
                raise
            except Exception as exc:  # the client's own error type
                raise AlertError(f"github_issue alert: {exc}") from exc
        query = f"?{urlencode(params)}" if params else ""
        resp = request_json(
            method, f"{self._api}/repos/{self._repo}{path}{query}", body, what="github_issue alert", ok=ok,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28"},
            data=b"" if body is None else None,
            timeout=self._timeout, retries=self._retries if retries is None else retries,
            backoff=self._backoff, secrets=(self._token,))
        return resp.json() if resp.content else None

    def find_open_issue(self, key: str) -> int | None:
        """The open issue carrying ``key``'s marker, looked up by label (first 5 pages)."""
        for page in range(1, 6):
            issues = self._call("GET", "/issues", params={"state": "open", "labels": ",".join(self._labels),
                                                          "per_page": 100, "page": page})
            if not isinstance(issues, list):
                raise AlertError("github_issue alert: listing issues did not return a list")
            for issue in issues:
                if marker(key) in (issue.get("body") or "") and "pull_request" not in issue:
                    return int(issue["number"])
            if len(issues) < 100:
                break
        return None

    def _open_issue(self, alert: Alert) -> int:
        """POST the issue once per try and look it up before each resend: a create whose answer
        was lost (cut connection, 5xx after the write) must not open a second issue."""
        title = f"[mlops alert] {alert.summary}"[:256]
        body = {"title": title, "body": issue_body(alert), "labels": self._labels}

        def attempt(n: int) -> int:
            try:
                return int(self._call("POST", "/issues", body, retries=0)["number"])
            except AlertError as exc:
                raise _Lost(exc) from None

        try:
            return policy(self._retries, self._backoff).call(
                attempt, before_resend=lambda n: self.find_open_issue(alert.key))
        except _Lost as gave_up:
            raise gave_up.error from None

    def send(self, alert: Alert, ref: str | None = None) -> str | None:
        number = int(ref) if ref and ref.isdigit() else self.find_open_issue(alert.key)
        if alert.status is AlertStatus.RESOLVED:
            if number is None:
                return None  # nothing open for this key: nothing to close
            self._call("POST", f"/issues/{number}/comments",
                       {"body": f"{marker(alert.key)}\nResolved: {alert.summary}"})
            self._call("PATCH", f"/issues/{number}", {"state": "closed", "state_reason": "completed"})
            return str(number)
        if number is None:
            return str(self._open_issue(alert))
        self._call("POST", f"/issues/{number}/comments",
                   {"body": f"{marker(alert.key)}\nStill firing, updated:\n\n{issue_body(alert)}"})
        return str(number)
