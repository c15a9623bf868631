"""``mlops-actions resume MODEL --env ENV``: a person says go to a paused rollout.

What ``kubectl argo rollouts promote`` does, for either target: leave a pause without
duration (or an inconclusive analysis) and go on with the next step, or with
``--full`` skip the remaining steps and analyses. (``promote`` is the GitOps command
that opens the PR pinning a version in the next environment; this one moves a
rollout that is already running.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mlops_actions.errors import EXIT_OK, ConfigError

ORDER = 47


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "resume", help="resume a paused rollout (the next step), or finish it at once with --full",
        description="Leave MODEL's pause (a pause without duration, or an inconclusive analysis) and go "
        "on with the next step, like `kubectl argo rollouts promote`; --full skips the remaining steps "
        "and analyses. Works on local and Kubernetes targets.")
    p.add_argument("model")
    p.add_argument("--env", required=True)
    p.add_argument("--full", action="store_true", help="skip the remaining steps and analyses")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.deploy.apply import load_env, target_for
    from mlops_actions.deploy.interface import ACTIVE_PHASES, Phase

    repo = Path(args.repo)
    spec = load_env(repo, args.env)
    spec.pin(args.model, args.env)
    target = target_for(repo, spec, args.env)
    before = target.status().rollouts.get(args.model)
    if before is None or before.phase not in ACTIVE_PHASES:
        state = "no rollout" if before is None else f"its last rollout is {before.phase.value}"
        raise ConfigError(f"{args.model} has nothing to resume in {args.env}: {state}",
                          hint=f"a new version goes out through a pin change and `mlops-actions apply --env "
                               f"{args.env}`")
    if before.phase is not Phase.PAUSED and not args.full:
        raise ConfigError(f"{args.model}'s rollout in {args.env} is {before.phase.value}, not paused: it "
                          "moves on by itself", hint="--full skips the remaining steps and analyses")
    r = target.promote(args.model, full=args.full)
    actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("USER", "cli")
    print(f"{args.model}: {r.phase.value} step {r.step} weight {r.weight}% - {r.message} "
          f"(resumed by {actor})")
    return EXIT_OK
