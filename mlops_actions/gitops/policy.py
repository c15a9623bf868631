"""``policy``: promotion rules from each environment file's ``promotion`` section.

Rules, each four-valued (passed, failed, inconclusive, error) with a reason:

* ``promotion-order``: a pin in an environment with ``promotion.from: X`` must be
  live in X (registry alias ``X`` points at that version) or carry the tag
  ``mlops.passed.X`` recording that it passed there.
* ``semver``: a pin never goes down, unless the change is a rollback (PR label
  ``rollback``) or the environment sets ``allow_downgrade: true``.
* ``approvals``: at least ``required_approvals`` approving reviews on the PR, the
  latest review per reviewer counting (APPROVED counts; CHANGES_REQUESTED and
  DISMISSED cancel an earlier approval; COMMENTED changes nothing); the PR's
  author does not count.
* ``freeze``: no change while a freeze window is open (a rollback is allowed).

Only environments whose pins change between base and head are checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mlops_actions.config.specs import EnvironmentSpec, FreezeWindow, parse_semver
from mlops_actions.errors import Location
from mlops_actions.gitops.live import LiveRegistry
from mlops_actions.gitops.plan import ChangeKind, ModelPlan, compute_plan
from mlops_actions.gitops.sources import EnvSource, key_location, pin_location
from mlops_actions.report.markdown import inert

__all__ = [
    "PASSED_TAG_PREFIX",
    "ROLLBACK_LABEL",
    "Outcome",
    "PolicyInput",
    "RuleResult",
    "count_approvals",
    "evaluate",
    "render_markdown",
    "render_text",
    "to_json",
]

ROLLBACK_LABEL = "rollback"
PASSED_TAG_PREFIX = "mlops.passed."


class Outcome(StrEnum):
    PASSED = "passed"  # the rule holds
    FAILED = "failed"  # the rule is broken: the PR must change
    INCONCLUSIVE = "inconclusive"  # not enough information (no credentials, no PR)
    ERROR = "error"  # the rule could not be evaluated (outside system or bad rule data)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    env: str
    model: str | None
    outcome: Outcome
    reason: str
    location: Location | None = None


@dataclass(frozen=True)
class PolicyInput:
    """What the rules need beyond the files: the PR's labels, author, reviews and the time."""

    labels: tuple[str, ...] = ()
    author: str | None = None
    reviews: Sequence[Mapping[str, Any]] | None = None  # None: not read
    reviews_unavailable: str = "no pull request or no credentials to read its reviews"
    reviews_error: bool = False
    now: datetime | None = None


def count_approvals(reviews: Iterable[Mapping[str, Any]], author: str | None = None) -> list[str]:
    """Reviewers whose latest deciding review is APPROVED (GitHub's own rule)."""
    latest: dict[str, str] = {}
    for r in reviews:  # the API lists reviews oldest first
        user = str((r.get("user") or {}).get("login", ""))
        state = str(r.get("state", "")).upper()
        if not user or user == author:
            continue
        if state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[user] = state
    return sorted(u for u, s in latest.items() if s == "APPROVED")


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _semver(m: ModelPlan, spec: EnvironmentSpec, labels: tuple[str, ...], loc: Location) -> RuleResult:
    assert m.new_version is not None
    if m.old_version is None:
        return RuleResult("semver", m.env, m.model, Outcome.PASSED,
                          f"new pin {m.new_version}", loc)
    old, new = parse_semver(m.old_version), parse_semver(m.new_version)
    old_key = (old[:3], old[3] == "", old[3])
    new_key = (new[:3], new[3] == "", new[3])
    if new_key >= old_key:
        return RuleResult("semver", m.env, m.model, Outcome.PASSED,
                          f"{m.old_version} -> {m.new_version} does not go down", loc)
    if ROLLBACK_LABEL in labels:
        return RuleResult("semver", m.env, m.model, Outcome.PASSED,
                          f"{m.old_version} -> {m.new_version} goes down: allowed, the PR is "
                          f"labelled `{ROLLBACK_LABEL}`", loc)
    if spec.promotion.allow_downgrade:
        return RuleResult("semver", m.env, m.model, Outcome.PASSED,
                          f"{m.old_version} -> {m.new_version} goes down: allowed by "
                          "promotion.allow_downgrade", loc)
    return RuleResult("semver", m.env, m.model, Outcome.FAILED,
                      f"{m.old_version} -> {m.new_version} goes down; expected a higher version. "
                      f"If this is a rollback, label the PR `{ROLLBACK_LABEL}` "
                      "(or use the rollback workflow)", loc)


def _order(m: ModelPlan, spec: EnvironmentSpec, head: EnvSource, live: LiveRegistry | None,
           loc: Location) -> RuleResult:
    source = spec.promotion.from_
    version = m.new_version
    assert version is not None
    if source is None:
        return RuleResult("promotion-order", m.env, m.model, Outcome.PASSED,
                          "no promotion.from rule for this environment", loc)
    if source not in head.envs:
        return RuleResult("promotion-order", m.env, m.model, Outcome.ERROR,
                          f"promotion.from names {source!r}, which is not an environment "
                          f"(known: {', '.join(sorted(head.envs))})", loc)
    if live is None:
        return RuleResult("promotion-order", m.env, m.model, Outcome.INCONCLUSIVE,
                          f"cannot tell whether {m.model} {version} is live in {source}: "
                          "the registry was not read (skipped: no credentials?)", loc)
    state = live.model(m.model)
    if state.error is not None:
        return RuleResult("promotion-order", m.env, m.model, Outcome.ERROR,
                          f"registry: {state.error}", loc)
    there = state.aliases.get(source)
    if there == version:
        return RuleResult("promotion-order", m.env, m.model, Outcome.PASSED,
                          f"{version} is live in {source} (alias {source} -> {there})", loc)
    tag = f"{PASSED_TAG_PREFIX}{source}"
    tags = state.tags.get(version, {})
    if tags.get(tag, "").lower() in ("true", "1", "yes", "passed"):
        return RuleResult("promotion-order", m.env, m.model, Outcome.PASSED,
                          f"{version} passed in {source} (tag {tag}={tags[tag]})", loc)
    return RuleResult("promotion-order", m.env, m.model, Outcome.FAILED,
                      f"{m.model} {version} is not live in {source} (alias {source} -> "
                      f"{there or '(none)'}) and has no tag {tag}; promote it to {source} first", loc)


def _approvals(env: str, spec: EnvironmentSpec, ctx: PolicyInput, loc: Location) -> RuleResult:
    need = spec.promotion.required_approvals
    if need == 0:
        return RuleResult("approvals", env, None, Outcome.PASSED, "no approvals required", loc)
    if ctx.reviews is None:
        outcome = Outcome.ERROR if ctx.reviews_error else Outcome.INCONCLUSIVE
        return RuleResult("approvals", env, None, outcome,
                          f"{need} approval(s) required; {ctx.reviews_unavailable}", loc)
    approvers = count_approvals(ctx.reviews, ctx.author)
    if len(approvers) >= need:
        return RuleResult("approvals", env, None, Outcome.PASSED,
                          f"{len(approvers)} approval(s) ({', '.join(approvers)}), {need} required", loc)
    return RuleResult("approvals", env, None, Outcome.FAILED,
                      f"{len(approvers)} approval(s), {need} required; ask a reviewer to approve "
                      "(the latest review of each reviewer counts, the author's does not)", loc)


def _freeze(env: str, windows: list[FreezeWindow], ctx: PolicyInput, loc: Location) -> RuleResult:
    now = ctx.now or datetime.now(UTC)
    for w in windows:
        try:
            start, end = _parse_time(w.start), _parse_time(w.end)
        except ValueError:
            return RuleResult("freeze", env, None, Outcome.ERROR,
                              f"freeze window {w.start!r}..{w.end!r} is not ISO 8601 "
                              "(expected e.g. \"2026-12-20T00:00:00Z\")", loc)
        if start <= now < end:
            why = f" ({w.reason})" if w.reason else ""
            if ROLLBACK_LABEL in ctx.labels:
                return RuleResult("freeze", env, None, Outcome.PASSED,
                                  f"freeze until {w.end}{why}, but rollbacks are allowed", loc)
            return RuleResult("freeze", env, None, Outcome.FAILED,
                              f"{env} is frozen from {w.start} to {w.end}{why}; merge after the "
                              f"window or label the PR `{ROLLBACK_LABEL}` if it is one", loc)
    return RuleResult("freeze", env, None, Outcome.PASSED,
                      "no freeze window open" if windows else "no freeze windows", loc)


def evaluate(base: EnvSource, head: EnvSource, live: LiveRegistry | None, ctx: PolicyInput,
             *, envs: Iterable[str] | None = None) -> list[RuleResult]:
    plan = compute_plan(base, head, None, envs=envs)
    results: list[RuleResult] = []
    for env_plan in plan.environments:
        spec = head.envs.get(env_plan.name)
        if spec is None:
            continue  # a removed environment: nothing to promote
        changed = [m for m in env_plan.models
                   if m.kind in (ChangeKind.ADDED, ChangeKind.VERSION, ChangeKind.STRATEGY)]
        if not changed:
            continue
        path = head.paths.get(env_plan.name, env_plan.name)
        text = head.texts.get(env_plan.name, "")
        env_loc = key_location(text, path, "promotion")
        for m in changed:
            loc = pin_location(text, path, m.model)
            if m.kind is not ChangeKind.STRATEGY:
                results.append(_order(m, spec, head, live, loc))
                results.append(_semver(m, spec, ctx.labels, loc))
        results.append(_approvals(env_plan.name, spec, ctx, env_loc))
        results.append(_freeze(env_plan.name, spec.promotion.freeze, ctx, env_loc))
    return results


def render_text(results: list[RuleResult]) -> str:
    if not results:
        return "policy: no environment pin changes: nothing to check"
    lines = []
    for r in results:
        what = f"{r.env}/{r.model}" if r.model else r.env
        lines.append(f"{r.outcome.value.upper():<12} {r.rule:<16} {what:<28} {r.reason}")
    counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
    lines.append("policy: " + ", ".join(f"{n} {o.value}" for o, n in counts.items() if n))
    return "\n".join(lines)


_ICON = {Outcome.PASSED: "✅", Outcome.FAILED: "❌", Outcome.INCONCLUSIVE: "⚠️", Outcome.ERROR: "💥"}


def render_markdown(results: list[RuleResult]) -> str:
    out = ["### mlops-actions policy", ""]
    if not results:
        return "\n".join([*out, "No environment pin changes: nothing to check.", ""])
    out += ["| | rule | where | reason |", "|---|---|---|---|"]
    for r in results:
        what = f"`{r.env}/{r.model}`" if r.model else f"`{r.env}`"
        reason = inert(r.reason, keep_code=True)  # freeze reasons and times come from the PR
        out.append(f"| {_ICON[r.outcome]} {r.outcome.value} | {r.rule} | {what} | {reason} |")
    return "\n".join(out) + "\n"


def to_json(results: list[RuleResult]) -> str:
    return json.dumps([asdict(r) | {"location": str(r.location) if r.location else None}
                       for r in results], indent=2, default=str)
