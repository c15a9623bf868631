"""``mlops-actions promote``: open the PR that promotes a version from one environment to the next."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from mlops_actions.errors import EXIT_OK, ConfigError
from mlops_actions.github import actions
from mlops_actions.github.rest import GitHubClient
from mlops_actions.gitops.pins import env_path, pinned_version
from mlops_actions.gitops.propose import PinChange, open_pin_pr, preview

ORDER = 64
OUTPUTS = frozenset({"pr-number", "pr-url"})  # step outputs written to $GITHUB_OUTPUT


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "promote", help="open a PR pinning MODEL in --to at the version pinned in --from",
        description="Read environments/FROM.yaml (the checkout), check it pins MODEL at VERSION, and "
        "open a PR that sets the same pin in environments/TO.yaml. The PR then goes through plan, "
        "validate and policy like any other.")
    p.add_argument("--model", required=True)
    p.add_argument("--version", help="default: the version pinned in --from")
    p.add_argument("--from", dest="from_env", required=True, metavar="ENV")
    p.add_argument("--to", dest="to_env", required=True, metavar="ENV")
    p.add_argument("--base", help="branch to open the PR against (default: GITHUB_REF_NAME or main)")
    p.add_argument("--dry-run", action="store_true", help="print the change, open nothing")
    p.set_defaults(func=run)


def branch_name(kind: str, model: str, version: str, env: str) -> str:
    return re.sub(r"[^A-Za-z0-9._/-]", "-", f"mlops/{kind}-{model}-{version}-{env}")


def _read(repo: Path, env: str) -> str:
    path = repo / env_path(env)
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        known = sorted(p.stem for p in (repo / "environments").glob("*.yaml"))
        raise ConfigError(f"environment {env!r} not found: no {env_path(env)}",
                          hint=f"known environments: {', '.join(known) or 'none'}") from None


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    source = pinned_version(_read(repo, args.from_env), args.model)
    if source is None:
        raise ConfigError(f"{args.model} is not pinned in {env_path(args.from_env)}",
                          hint=f"promote it to {args.from_env} first")
    version = args.version or source
    if version != source:
        raise ConfigError(
            f"{args.model} {version} is not the version pinned in {args.from_env} ({source})",
            hint=f"promote {version} to {args.from_env} first, or omit --version to promote {source}")
    target_text = _read(repo, args.to_env)
    current = pinned_version(target_text, args.model)
    if current == version:
        print(f"{args.model} is already pinned at {version} in {args.to_env}: nothing to do")
        return EXIT_OK
    change = PinChange(
        env=args.to_env, model=args.model, version=version,
        branch=branch_name("promote", args.model, version, args.to_env),
        title=f"Promote {args.model} {version} from {args.from_env} to {args.to_env}",
        body=(f"Promotes `{args.model}` **{current or '(new)'} -> {version}** in `{args.to_env}` "
              f"(live in `{args.from_env}`).\n\nOpened by `mlops-actions promote`; plan, validate and "
              "policy run on this PR; merging applies it."))
    submit(change, target_text, args)
    return EXIT_OK


def submit(change: PinChange, current_text: str, args: argparse.Namespace) -> None:
    """``--dry-run``: print the diff the PR would make; otherwise open the PR and write the
    ``pr-number`` / ``pr-url`` step outputs (shared by ``promote`` and ``rollback-pr``)."""
    if args.dry_run:
        print(preview(current_text, change), end="")
        return
    base = args.base or os.environ.get("GITHUB_REF_NAME") or "main"
    client = GitHubClient.from_env()
    pr, created = open_pin_pr(client, change, base)
    if created:
        print(f"opened #{pr['number']}: {change.title} {pr.get('html_url', '')}")
    else:
        print(f"#{pr['number']} is already open for this change (branch {change.branch}, up to date): "
              f"{pr.get('html_url', '')}")
    labels = list(getattr(args, "label", None) or [])
    if labels:  # REST creates a label the repository lacks (`gh pr edit --add-label` fails on it)
        client.add_labels(int(str(pr["number"])), labels)
        print(f"labelled #{pr['number']}: {', '.join(labels)}")
    actions.set_output("pr-number", str(pr["number"]))
    actions.set_output("pr-url", str(pr.get("html_url", "")))
