"""``mlops-actions apply --env ENV``: roll the environment's pins out through its gateway."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_EXTERNAL
from mlops_actions.github import actions

ORDER = 40
OUTPUTS = frozenset({"summary"})  # one line for a Deployment status: what each model ended as


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "apply", help="apply environments/ENV.yaml: aliases, rollouts, watch",
        description="Set MLflow aliases and declare each changed pin's rollout to the environment's "
        "target (the local gateway, or a Kubernetes cluster: Argo Rollouts or Gateway API weights); "
        "with --wait, watch until done (in gateway-api mode this process steps the weights and runs "
        "the analyses, so it must stay alive). Exit 1 if a rollout rolled back, 3 if the target "
        "failed or did not finish in time. Idempotent. Models with depends_on go in waves: a wave "
        "starts once every rollout of the previous one is Healthy; after a failure the later waves are "
        "NotStarted. Without --wait, waves are declared up to the first one with a rollout to wait for.")
    p.add_argument("--env", required=True)
    p.add_argument("--wait", action="store_true", help="watch rollouts until they finish")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait at most (default 1800)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.deploy.apply import NOT_STARTED, PHASE_WORDS, TIMEOUT, apply_environment

    results = apply_environment(Path(args.repo), args.env, wait=args.wait, timeout=args.timeout)
    code = 0
    parts = []
    for r in results:
        print(f"{r.model} {r.version}: {r.phase}{' (changed)' if r.changed else ''}"
              + (f" - {r.message}" if r.phase == NOT_STARTED else ""))
        if r.phase in ("RolledBack", "Aborted"):
            code = max(code, EXIT_CHECK_FAILED)
        elif r.phase == TIMEOUT:
            code = max(code, EXIT_EXTERNAL)
        if r.changed or r.phase != "Healthy":
            words = PHASE_WORDS.get(r.phase, r.phase)
            detail = r.message.removeprefix("not started: ") if r.phase == NOT_STARTED else r.message
            parts.append(f"{r.model} {r.version} {words}"
                         + (f": {detail}" if r.phase != "Healthy" and detail else ""))
    actions.set_output("summary", "; ".join(parts) or f"{args.env}: nothing to change")
    return code
