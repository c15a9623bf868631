"""``policy``: promotion rules from each environment file's ``promotion`` section.

Rules, each four-valued (passed, failed, inconclusive, error) with a reason:

* ``promotion-order``: a pin in an environment with ``promotion.from: X`` must be
  live in X (registry alias ``X`` points at that version) or carry the tag
  ``mlops.passed.X`` recording that it passed there.
* ``semver``: a pin never goes down, unless the change is a rollback (PR label
  ``rollback``) or the environment sets ``allow_downgrade: true``.
* ``approvals``: at least ``required_approvals`` approvals as branch protection
  counts them (see :mod:`mlops_actions.gitops.approvals`): the latest review per
  reviewer, on the PR's head commit, from someone with write access who is not
  the author and, when ``approvers`` is set, is listed there. The required count
  and the approvers come from the base branch's environment file when it has one,
  so a PR cannot lower the bar it is judged by. The result lists each reviewer
  with why they counted or not.
* ``freeze``: no change while a freeze window is open (a rollback is allowed).

Only environments whose pins change between base and head are checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from mlops_actions.config.specs import EnvironmentSpec, FreezeWindow, PromotionRules, parse_semver
from mlops_actions.errors import Location
from mlops_actions.gitops.approvals import ReviewerAccess, judge_reviews
from mlops_actions.gitops.live import LiveRegistry
from mlops_actions.gitops.plan import ChangeKind, ModelPlan, compute_plan
from mlops_actions.gitops.sources import EnvSource, key_location, pin_location
from mlops_actions.report.markdown import inert
from mlops_actions.verdict import Verdict

__all__ = [
    "PASSED_TAG_PREFIX",
    "ROLLBACK_LABEL",
    "Outcome",
    "PolicyInput",
    "RuleResult",
    "evaluate",
    "render_markdown",
    "render_text",
    "to_json",
]

ROLLBACK_LABEL = "rollback"
PASSED_TAG_PREFIX = "mlops.passed."


Outcome = Verdict  # a rule's outcome is the toolkit's one verdict type


@dataclass(frozen=True)
class RuleResult:
    rule: str
    env: str
    model: str | None
    outcome: Outcome
    reason: str
    location: Location | None = None
    details: tuple[str, ...] = ()  # e.g. each reviewer and why they counted or not


@dataclass(frozen=True)
class PolicyInput:
    """What the rules need beyond the files: the PR's labels, author, head commit, reviews,
    who the reviewers are (``access``: GitHub, asked only about approvals that could count)
    and the time."""

    labels: tuple[str, ...] = ()
    author: str | None = None
    reviews: Sequence[Mapping[str, Any]] | None = None  # None: not read
    reviews_unavailable: str = "no pull request or no credentials to read its reviews"
    reviews_error: bool = False
    now: datetime | None = None
    head_sha: str | None = None  # the PR's head commit: approvals of another one are stale
    access: ReviewerAccess | None = None


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


def _approval_rules(base: EnvironmentSpec | None, head: EnvironmentSpec) -> tuple[PromotionRules, str]:
    """The approval rules the PR is judged by (the base branch's, when the environment exists
    there), and a note when the PR changes them."""
    if base is None:
        return head.promotion, ""
    old, new = base.promotion, head.promotion
    changed = [k for k in ("required_approvals", "approvers") if getattr(old, k) != getattr(new, k)]
    if not changed:
        return old, ""
    return old, (f" (the base branch's rules; this PR changes {' and '.join(changed)}, which "
                 "apply once it is merged)")


def _approvals(env: str, rules: PromotionRules, note: str, ctx: PolicyInput,
               loc: Location) -> RuleResult:
    need = rules.required_approvals
    if need == 0:
        return RuleResult("approvals", env, None, Outcome.PASSED, f"no approvals required{note}", loc)
    if ctx.reviews is None:
        outcome = Outcome.ERROR if ctx.reviews_error else Outcome.INCONCLUSIVE
        return RuleResult("approvals", env, None, outcome,
                          f"{need} approval(s) required; {ctx.reviews_unavailable}{note}", loc)
    if not ctx.head_sha:
        return RuleResult("approvals", env, None, Outcome.INCONCLUSIVE,
                          f"{need} approval(s) required; the PR's head commit is unknown, so stale "
                          f"approvals cannot be told apart{note}", loc)
    verdicts = judge_reviews(ctx.reviews, author=ctx.author, head_sha=ctx.head_sha,
                             approvers=rules.approvers, access=ctx.access)
    details = tuple(v.line() for v in verdicts)
    counted = [v.login for v in verdicts if v.counted]
    unchecked = [v.login for v in verdicts if v.unchecked]
    got = f"{len(counted)} approval(s)" + (f" ({', '.join(counted)})" if counted else "")
    if len(counted) >= need:
        return RuleResult("approvals", env, None, Outcome.PASSED, f"{got}, {need} required{note}",
                          loc, details)
    if len(counted) + len(unchecked) >= need:
        return RuleResult("approvals", env, None, Outcome.ERROR,
                          f"{got}, {need} required; could not check {', '.join(unchecked)} "
                          f"(see below){note}", loc, details)
    who = f"someone in approvers ({', '.join(rules.approvers)})" if rules.approvers \
        else "a reviewer with write access"
    return RuleResult("approvals", env, None, Outcome.FAILED,
                      f"{got}, {need} required; ask {who} to approve the head commit "
                      f"{ctx.head_sha[:7]} (the latest review of each reviewer counts, the "
                      f"author's does not){note}", loc, details)


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
        rules, note = _approval_rules(base.envs.get(env_plan.name), spec)
        results.append(_approvals(env_plan.name, rules, note, ctx, env_loc))
        results.append(_freeze(env_plan.name, spec.promotion.freeze, ctx, env_loc))
    return results


def render_text(results: list[RuleResult]) -> str:
    if not results:
        return "policy: no environment pin changes: nothing to check"
    lines = []
    for r in results:
        what = f"{r.env}/{r.model}" if r.model else r.env
        lines.append(f"{r.outcome.value.upper():<12} {r.rule:<16} {what:<28} {r.reason}")
        lines += [f"{'':<12}   {line}" for line in r.details]
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
    for r in results:  # who counted and who did not, under the table
        if r.details:
            out += ["", f"**{r.rule}** in `{r.env}`:", ""]
            out += [f"- {inert(line, keep_code=True)}" for line in r.details]  # no one is pinged
    return "\n".join(out) + "\n"


def to_json(results: list[RuleResult]) -> str:
    return json.dumps([asdict(r) | {"location": str(r.location) if r.location else None}
                       for r in results], indent=2, default=str)
