"""``mlops-actions rollback MODEL --env ENV``: back to the stable (or previous) version.

Local target: the gateway aborts the running rollout, or rolls back to the version
that was stable before. Kubernetes target: a running rollout is aborted in the
cluster (Argo's abort, or all Gateway API weight back to the live version); when
none runs, the GitOps way back is ``rollback-pr`` (revert the pin), and only
``--undo`` changes the cluster directly (Argo's ``undo``: the previous revision's
pod template goes back into the Rollout; Argo CD's self-heal or the next
``apply`` reverts that unless the pin is reverted in git too).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mlops_actions.errors import EXIT_OK, ConfigError

ORDER = 46


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "rollback", help="abort a running rollout, or go back to the previous version",
        description="Abort MODEL's running rollout (traffic back to stable) or, when none runs, roll "
        "back to the version that was stable before (local target; on Kubernetes only with --undo). "
        "Open a PR restoring the pin (rollback-pr) so git agrees.")
    p.add_argument("model")
    p.add_argument("--env", required=True)
    p.add_argument("--undo", action="store_true",
                   help="kubernetes: no rollout runs, so put the Rollout's previous revision back "
                   "(kubectl argo rollouts undo); Argo CD self-heal reverts it unless the pin is reverted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.config.specs import KubernetesTarget
    from mlops_actions.deploy.apply import load_env, target_for

    repo = Path(args.repo)
    spec = load_env(repo, args.env)
    target = target_for(repo, spec, args.env)
    actor = os.environ.get("USER", "cli")
    if not isinstance(spec.target, KubernetesTarget):
        r = target.abort(args.model, actor)
        print(f"{args.model}: {r.phase.value} - {r.message}")
        return EXIT_OK
    return _kubernetes(target, args)


def _kubernetes(target: Any, args: argparse.Namespace) -> int:
    """Abort what runs; otherwise say the GitOps way back, and undo only when asked."""
    from mlops_actions.deploy.interface import ACTIVE_PHASES

    pin = target.env.pin(args.model, args.env)
    record = target.status().rollouts.get(args.model)
    running = record is not None and record.phase in ACTIVE_PHASES
    if running and not args.undo:
        r = target.abort(args.model)
        print(f"{args.model}: {r.phase.value} - aborted in the cluster: traffic back to the stable "
              f"version; revert the pin (mlops-actions rollback-pr --model {args.model} --env {args.env}) "
              "so git agrees")
        return EXIT_OK
    gitops = f"mlops-actions rollback-pr --model {args.model} --env {args.env}"
    if not args.undo:
        raise ConfigError(
            f"no rollout of {args.model} is running in {args.env}, so there is nothing to abort; going back "
            f"to the previous version is a change of the pin: {gitops}, then merge and apply",
            hint="--undo puts the Rollout's previous revision back in the cluster now (kubectl argo rollouts "
                 "undo); Argo CD self-heal or the next apply reverts it unless the pin is reverted too")
    restored, r = target.undo(args.model)
    print(f"{args.model}: undo: the Rollout runs {restored} again ({r.phase.value}); the pin in git still "
          f"says {pin.version}: {gitops}, or the next apply (or Argo CD self-heal) "
          "puts it back")
    return EXIT_OK
