"""A fork PR's run, judged by trusted code: which PR it was, read from its artifact as data.

A ``pull_request`` run from a fork has a read-only token and no secrets, so it cannot post
the policy status. ``pr-fork.yml`` (``workflow_run``, this repository's code and token)
does it instead, from the small ``pr-info.json`` the fork's run uploaded. That file was
written by a workflow the fork controls, so nothing in it is believed until GitHub agrees:
it is size-limited, must be exactly ``{"pr": N, "head_sha": ..., "base_sha": ...}``, and the
PR it names must be open with the head commit the finished run actually ran on
(``workflow_run.head_sha``) from the repository it ran for. The base commit is taken from
GitHub's answer, never from the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_actions.errors import ConfigError, Location
from mlops_actions.github.rest import GitHubClient

__all__ = ["MAX_INFO_BYTES", "ForkPR", "read_pr_info", "verify_pr"]

MAX_INFO_BYTES = 4096
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ForkPR:
    number: int
    head_sha: str
    base_sha: str
    head_repository: str


def read_pr_info(path: Path) -> dict[str, Any]:
    """The artifact's claim, checked for shape only (it is not trusted yet)."""
    where = Location(str(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the PR info artifact: {exc.strerror}", location=where,
                          hint="the pr.yml run uploads it as `pr-info`; was the run a pull_request?"
                          ) from None
    if len(raw) > MAX_INFO_BYTES:
        raise ConfigError(f"the PR info artifact is {len(raw)} bytes, more than {MAX_INFO_BYTES}",
                          location=where, hint="it holds three fields; a larger one is not from pr.yml")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"the PR info artifact is not JSON: {exc}", location=where) from None
    expected = {"pr", "head_sha", "base_sha"}
    if not isinstance(data, dict) or set(data) != expected:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"the PR info artifact must have exactly the keys {sorted(expected)}, not {got}",
                          location=where)
    if not isinstance(data["pr"], int) or isinstance(data["pr"], bool) or data["pr"] <= 0:
        raise ConfigError(f"the PR info artifact's pr is not a PR number: {data['pr']!r}", location=where)
    for key in ("head_sha", "base_sha"):
        if not isinstance(data[key], str) or not _SHA.match(data[key]):
            raise ConfigError(f"the PR info artifact's {key} is not a commit SHA", location=where)
    return data


def verify_pr(client: GitHubClient, claim: dict[str, Any], *, run_head_sha: str,
              run_head_repository: str) -> ForkPR:
    """The PR the claim names, as GitHub has it, or ConfigError when GitHub disagrees."""
    number = int(claim["pr"])
    pr = client.pull(number)
    head = pr.get("head") or {}
    head_repo = str((head.get("repo") or {}).get("full_name", ""))
    problems = []
    if pr.get("state") != "open":
        problems.append(f"#{number} is {pr.get('state')}, not open")
    if head.get("sha") != run_head_sha or claim["head_sha"] != run_head_sha:
        problems.append(f"#{number}'s head is {str(head.get('sha'))[:12]}, "
                        f"the run ran on {run_head_sha[:12]}")
    if head_repo != run_head_repository:
        problems.append(f"#{number} comes from {head_repo or '(unknown)'}, "
                        f"the run from {run_head_repository}")
    if problems:
        raise ConfigError("the PR info artifact does not match GitHub: " + "; ".join(problems),
                          hint="nothing is posted for a run whose PR cannot be confirmed; a newer "
                               "push re-runs pr.yml and this check")
    return ForkPR(number, run_head_sha, str((pr.get("base") or {}).get("sha", "")), head_repo)
