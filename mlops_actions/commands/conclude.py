"""``mlops-actions conclude --env ENV --model M``: end an A/B test with the PR that keeps its winner.

Runs the same A/B analysis as ``monitor`` (the prediction store, the model's monitoring window
and its model.yaml ``monitoring.ab_test``), prints its sentence and, when there is a winner,
opens the PR that pins the winning version as the only one (the ``ab_test`` strategy removed),
with the analysis in the PR body. Clicking again updates that PR instead of opening a second.
With no winner (no significant difference, too few rows, a sample ratio mismatch, a failed
guardrail) it says so and opens nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_NO_DATA, EXIT_OK, ConfigError

ORDER = 65
OUTPUTS = frozenset({"pr-number", "pr-url", "winner", "version"})  # step outputs written to $GITHUB_OUTPUT

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "conclude", help="end MODEL's A/B test in ENV: open the PR pinning the winner alone, if there is one",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog="Exit codes: 0 the PR was opened or is up to date (or --dry-run printed it); 1 no winner, "
               "nothing opened; 2 bad input (the model is not in an A/B test); 3 GitHub or the store "
               "failed; 5 neither version logged a prediction in the window.")
    p.add_argument("--env", required=True, help="environment name (environments/ENV.yaml)")
    p.add_argument("--model", required=True, help="model (directory under models/) pinned with an ab_test")
    p.add_argument("--window", default=None,
                   help="look back this far, e.g. 1d (default: the model's monitoring.window)")
    p.add_argument("--store", default=None, metavar="URL",
                   help="prediction store URL (default: $MLOPS_PREDICTION_STORE or .mlops/predictions.db)")
    p.add_argument("--fixed-horizon", action="store_true",
                   help="fixed-horizon p-values and CIs instead of the sequential (always-valid) default")
    p.add_argument("--any-environment", action="store_true",
                   help="count rows logged for any environment (default: rows tagged ENV when there are any)")
    p.add_argument("--base", help="branch to open the PR against (default: GITHUB_REF_NAME or main)")
    p.add_argument("--dry-run", action="store_true", help="print the analysis and the change, open nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.commands.promote import branch_name, submit
    from mlops_actions.config.loader import load_repo
    from mlops_actions.config.specs import duration_seconds
    from mlops_actions.github import actions
    from mlops_actions.gitops.pins import env_path
    from mlops_actions.gitops.propose import PinChange
    from mlops_actions.monitoring.ab import assess_ab
    from mlops_actions.monitoring.reports import ab_markdown
    from mlops_actions.monitoring.store import open_store

    repo = load_repo(args.repo)
    if args.env not in repo.environments:
        raise ConfigError(f"no environment {args.env!r} in {repo.root / 'environments'}",
                          hint=f"environments: {', '.join(sorted(repo.environments)) or '(none)'}")
    pin = repo.environments[args.env].pin(args.model, args.env)
    if pin.strategy.type != "ab_test":
        raise ConfigError(f"{args.model} is not in an A/B test in {args.env} (strategy {pin.strategy.type})",
                          hint="conclude ends an ab_test strategy; promote or rollback-pr change a plain pin")
    spec = repo.models.get(args.model)
    if spec is None:
        raise ConfigError(f"environment {args.env} pins {args.model!r} but models/{args.model}/model.yaml "
                          "is missing", hint="add the model.yaml or remove the pin")
    try:
        window = duration_seconds(args.window or spec.monitoring.window)
    except ValueError as exc:
        raise ConfigError(f"--window: {exc}") from None
    store = open_store(args.store, repo_root=repo.root)
    try:
        report = assess_ab(store, args.model, version_a=pin.version, version_b=pin.strategy.version_b,
                           share_b=pin.strategy.traffic_split, spec=spec.monitoring.ab_test,
                           environment=args.env, window_seconds=window, now=time.time(),
                           sequential=False if args.fixed_horizon else None,
                           environment_filter=False if args.any_environment else None)
    finally:
        store.close()
    analysis = "\n".join(ab_markdown(report)) + "\n"
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(analysis + "\n")
    print(report.sentence())
    actions.set_output("winner", report.winner or "")
    actions.set_output("version", report.winner_version or "")
    if report.a.rows == 0 and report.b.rows == 0:
        print(f"no predictions of {args.model} {pin.version} or {pin.strategy.version_b} in the window: "
              f"nothing to conclude (exit {EXIT_NO_DATA}); is the gateway logging to this store?",
              file=sys.stderr)
        return EXIT_NO_DATA
    if report.winner is None or report.winner_version is None:
        print(f"no winner ({report.reason}): no PR opened; the A/B test goes on "
              "(or end it by hand by editing the pin)")
        return EXIT_CHECK_FAILED
    version = report.winner_version
    loser = report.b if report.winner == "a" else report.a
    path = Path(args.repo) / env_path(args.env)
    text = path.read_text(encoding="utf-8")
    change = PinChange(
        env=args.env, model=args.model, version=version,
        branch=branch_name("conclude", args.model, version, args.env),
        title=f"Conclude the A/B test of {args.model} in {args.env}: keep {version}",
        body=(f"Ends the A/B test of `{args.model}` in `{args.env}`: **{report.winner.upper()} ({version}) "
              f"wins** over {loser.name} ({loser.version}). This pins `{version}` alone (the `ab_test` "
              f"strategy removed), so all traffic goes to it.\n\n{analysis}\n"
              "Opened by `mlops-actions conclude`; plan, validate and policy run on this PR; merging "
              "applies it. Clicking the button again updates this PR with the latest figures."),
        only=True)
    submit(change, text, args)
    return EXIT_OK
