"""``mlops-actions plan``: what merging would change (exit 0 no change, 1 changes, 2 error)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlops_actions.config.loader import registered_names
from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_OK, ConfigError, MlopsActionsError, RegistryError
from mlops_actions.github import actions
from mlops_actions.gitops import context
from mlops_actions.gitops.live import LiveRegistry, live_configured, open_registry, read_target
from mlops_actions.gitops.plan import ChangeKind, compute_plan, render_markdown, render_text
from mlops_actions.gitops.sources import read_source
from mlops_actions.report.markdown import inert

ORDER = 30
# written to $GITHUB_OUTPUT; "changes": one "ENV MODEL VERSION" line per new or changed pin
OUTPUTS = frozenset({"changed", "environments", "environments-json", "changes"})
NO_REGISTRY = "skipped: no registry configured (MLFLOW_TRACKING_URI not set; fork PRs get no secrets)"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan", help="show what merging would change: pins, aliases, strategies, drift",
        description="Compare environments/*.yaml at BASE and HEAD (git refs or directories) "
        "and the live registry aliases. Exit 0: no change; 1: changes; 2: error.")
    p.add_argument("--base", metavar="REF|DIR",
                   help="git ref or directory (default: the PR's base in Actions, else HEAD)")
    p.add_argument("--head", metavar="REF|DIR", help="git ref or directory (default: the working tree)")
    p.add_argument("--env", action="append", metavar="ENV", help="only this environment (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--markdown", metavar="FILE", help="also write the plan as Markdown (for a PR comment)")
    live = p.add_mutually_exclusive_group()
    live.add_argument("--live", dest="live", action="store_true", default=None,
                      help="read the registry; fail if it cannot be read")
    live.add_argument("--no-live", dest="live", action="store_false",
                      help="compare git only (default: read the registry when available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The plan; with --markdown, a plan that cannot be made still leaves a report saying why
    (file:line:column and what to do), so the PR comment step has something to post."""
    rendered: list[str] = []
    try:
        return _plan(args, rendered)
    except MlopsActionsError as err:
        if args.markdown:
            head = rendered[0] if rendered else "### mlops-actions plan\n"
            Path(args.markdown).write_text(head + "\n" + render_errors(err), encoding="utf-8")
        raise


def render_errors(err: MlopsActionsError) -> str:
    errors = list(err.errors) if isinstance(err, ConfigError) and err.errors else [err]
    lines = [f"#### ❌ The plan could not be made: {len(errors)} problem(s)", ""]
    for e in errors:
        where = f"`{inert(str(e.location))}`: " if e.location else ""
        hint = f" ({inert(e.hint)})" if e.hint else ""
        lines.append(f"- {where}{inert(e.message)}{hint}")
    return "\n".join(lines) + "\n"


def _plan(args: argparse.Namespace, rendered: list[str]) -> int:
    repo = Path(args.repo)
    ev = context.event()
    base = read_source(repo, args.base or context.default_base(ev))
    head = read_source(repo, args.head)
    live: LiveRegistry | None = None
    live_label = "skipped (--no-live)"
    if args.live is None and not live_configured(repo):
        live_label = NO_REGISTRY
    elif args.live is not False:
        try:
            live = LiveRegistry(open_registry(repo), names=registered_names(repo))
        except RegistryError as exc:
            if args.live:
                raise
            live_label = exc.message
    targets = None
    if live is not None:  # the target is live state too: read it with the registry
        targets = {env: read_target(repo, env, spec) for env, spec in head.envs.items()
                   if not args.env or env in args.env}
    plan = compute_plan(base, head, live, envs=args.env, live_label=live_label, targets=targets)
    print(plan.to_json() if args.json else render_text(plan))
    markdown = render_markdown(plan)
    rendered.append(markdown)
    if args.markdown:
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    # what the PR changes in git, in promotion order: the environments its checks cover and a
    # push applies (live differences alone are reported above, not checked here)
    actions.set_output("changed", "true" if plan.git_changed_envs else "false")
    actions.set_output("environments", " ".join(plan.git_changed_envs))
    actions.set_output("environments-json", json.dumps(plan.git_changed_envs))
    actions.set_output("changes", "\n".join(
        f"{m.env} {m.model} {m.new_version}" for e in plan.environments for m in e.models
        if m.new_version is not None and m.kind in (ChangeKind.ADDED, ChangeKind.VERSION)))
    actions.append_summary(markdown)
    if plan.problems:
        errors = [ConfigError(p.message, location=p.location,
                              hint="pin a version that exists (see `mlops-actions status`)")
                  for p in plan.problems]
        raise ConfigError(f"{len(errors)} problem(s) in the plan", errors=errors)
    return EXIT_CHECK_FAILED if plan.changed else EXIT_OK
