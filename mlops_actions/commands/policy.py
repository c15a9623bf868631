"""``mlops-actions policy``: promotion rules (order, semver, approvals, freeze) for a PR."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from mlops_actions.commands._github import client_or_none, run_url, warn
from mlops_actions.config.loader import registered_names
from mlops_actions.errors import (
    EXIT_CHECK_FAILED,
    EXIT_EXTERNAL,
    EXIT_OK,
    ConfigError,
    GitHubError,
    RegistryError,
)
from mlops_actions.github import actions
from mlops_actions.github.event import Event
from mlops_actions.github.rest import GitHubClient
from mlops_actions.gitops import context
from mlops_actions.gitops.approvals import GitHubAccess
from mlops_actions.gitops.live import LiveRegistry, live_configured, open_registry
from mlops_actions.gitops.policy import (
    Outcome,
    PolicyInput,
    evaluate,
    render_markdown,
    render_text,
    to_json,
)
from mlops_actions.gitops.sources import read_source

ORDER = 32
OUTPUTS = frozenset({"result"})  # step outputs written to $GITHUB_OUTPUT


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "policy", help="check promotion rules: order, semver, approvals, freeze windows",
        description="Check each changed pin against its environment's promotion rules. "
        "Exit 0: no rule failed; 1: a rule failed (or, with --strict, was inconclusive); "
        "3: a rule could not be evaluated (GitHub or the registry failed).")
    p.add_argument("--base", metavar="REF|DIR", help="default: the PR's base in Actions, else HEAD")
    p.add_argument("--head", metavar="REF|DIR", help="default: the working tree")
    p.add_argument("--env", action="append", metavar="ENV", help="only this environment (repeatable)")
    p.add_argument("--pr", type=int, metavar="N", help="PR whose reviews count (default: from the event)")
    p.add_argument("--label", action="append", default=[], metavar="LABEL",
                   help="a PR label, e.g. rollback (added to the event's labels)")
    p.add_argument("--now", metavar="ISO8601", help="evaluate freeze windows at this time (default: now)")
    live = p.add_mutually_exclusive_group()
    live.add_argument("--live", dest="live", action="store_true", default=None,
                      help="read the registry; fail if it cannot be opened")
    live.add_argument("--no-live", dest="live", action="store_false",
                      help="do not read the registry (promotion-order becomes inconclusive); "
                      "default: read it when MLFLOW_TRACKING_URI is set or .mlops/ exists")
    p.add_argument("--strict", action="store_true", help="inconclusive counts as failed")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the results as Markdown")
    p.add_argument("--sha", metavar="SHA",
                   help="the PR's head commit for --status-context (default: from the event; pr-fork.yml "
                   "passes the confirmed head of a fork's PR)")
    p.add_argument("--status-context", metavar="NAME",
                   help="also set this commit status on the PR's head commit (e.g. mlops-actions/policy), "
                   "so a later review run can turn it green; a GitHub failure here is a warning")
    p.set_defaults(func=run)


def _post_status(context_name: str, sha: str | None, state: str, description: str) -> None:
    if not sha:
        warn("policy: no head commit to set the status on (not a pull request run)")
        return
    client = client_or_none("policy status")
    if client is None:
        return
    try:
        client.create_status(sha, state, context_name, description, target_url=run_url())
        print(f"status {context_name} on {sha[:7]}: {state}")
    except GitHubError as exc:
        warn(f"policy: could not set the commit status {context_name}: {exc.message}")


def _pull_request(pr: int | None, ev: Event | None, sha: str | None = None) -> PolicyInput:
    """The PR's author, head commit, labels and reviews, and GitHub to ask who its reviewers
    are; or why they could not be read. The event has the author, head and labels; the API
    fills them in for ``--pr N`` outside a pull request run (pr-fork.yml's workflow_run,
    which passes the confirmed head as ``sha``)."""
    known = ev.pull_request if ev is not None and ev.pull_request is not None \
        and ev.pull_request.number == pr else None
    author = known.author if known is not None else None
    head_sha = sha or (known.head_sha if known is not None and known.head_sha else None)
    labels: tuple[str, ...] = ()
    if pr is None:
        return PolicyInput(reviews_unavailable="no pull request (pass --pr N)")
    if not (os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")):
        return PolicyInput(author=author, head_sha=head_sha,
                           reviews_unavailable="skipped: no credentials (GITHUB_TOKEN not set)")
    try:
        client = GitHubClient.from_env()
        if known is None or author is None or head_sha is None:
            data = client.pull(pr)
            author = author or str((data.get("user") or {}).get("login", "")) or None
            head_sha = head_sha or str((data.get("head") or {}).get("sha", "")) or None
            if known is None:  # no pull_request in the event: its labels come from the API
                labels = tuple(str(label.get("name")) for label in data.get("labels") or ())
        return PolicyInput(author=author, head_sha=head_sha, labels=labels, reviews=client.reviews(pr),
                           access=GitHubAccess(client))
    except GitHubError as exc:
        return PolicyInput(author=author, head_sha=head_sha, reviews_error=True,
                           reviews_unavailable=f"GitHub: {exc.message}")


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    ev = context.event()
    base = read_source(repo, args.base or context.default_base(ev))
    head = read_source(repo, args.head)
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"--now {args.now!r} is not ISO 8601",
                              hint="e.g. --now 2026-12-24T12:00:00Z") from None
    live: LiveRegistry | None = None
    if args.live or (args.live is None and live_configured(repo)):
        try:
            live = LiveRegistry(open_registry(repo), names=registered_names(repo))
        except RegistryError as exc:
            if args.live:
                raise
            print(f"note: {exc.message}")
    pull = _pull_request(args.pr or context.pr_number(ev), ev, args.sha)
    labels = tuple(dict.fromkeys([*context.pr_labels(ev), *pull.labels, *args.label]))
    ctx = replace(pull, now=now, labels=labels)
    results = evaluate(base, head, live, ctx, envs=args.env)
    print(to_json(results) if args.json else render_text(results))
    markdown = render_markdown(results)
    if args.markdown:
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    actions.append_summary(markdown)
    failed = [r for r in results if r.outcome is Outcome.FAILED
              or (args.strict and r.outcome is Outcome.INCONCLUSIVE)]
    errors = [r for r in results if r.outcome is Outcome.ERROR]
    if actions.in_actions():
        for r in results:
            if r in failed or r in errors:
                actions.annotate_limited("error", f"policy {r.rule}: {r.reason}", location=r.location,
                                         title=f"policy: {r.rule}")
            elif r.outcome is Outcome.INCONCLUSIVE:
                actions.annotate_limited("warning", f"policy {r.rule}: {r.reason}", location=r.location,
                                         title=f"policy: {r.rule}")
    result = "failed" if failed else "error" if errors else "passed"
    actions.set_output("result", result)
    if args.status_context:
        counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
        summary = ", ".join(f"{n} {o.value}" for o, n in counts.items() if n) or "nothing to check"
        if failed or errors:  # the status line says which rules hold the PR back
            summary += "; " + ", ".join(dict.fromkeys(r.rule for r in [*failed, *errors]))
        _post_status(args.status_context, ctx.head_sha,
                     {"failed": "failure", "error": "error"}.get(result, "success"), f"policy: {summary}")
    if failed:
        return EXIT_CHECK_FAILED
    return EXIT_EXTERNAL if errors else EXIT_OK
