"""``mlops-actions status --env ENV``: live routes, weights and rollout phases."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ORDER = 45


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="show live routes, weights and rollout phase of an environment",
        description="Ask the environment's target (the gateway, or the cluster) for its routes and rollouts.")
    p.add_argument("--env", required=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.deploy.apply import load_env, target_for

    repo = Path(args.repo)
    status = target_for(repo, load_env(repo, args.env), args.env, progress=lambda _m: None).status()
    if args.json:
        print(json.dumps({"environment": status.environment,
                          "routes": {m: r.to_dict() for m, r in status.routes.items()},
                          "rollouts": {m: r.to_dict() for m, r in status.rollouts.items()}}, indent=2))
        return 0
    print(f"environment {status.environment}")
    for model, route in sorted(status.routes.items()):
        line = f"  {model}: stable {route.stable}"
        if route.candidate:
            line += f", {route.mode} {route.candidate} at {route.weight}%"
        r = status.rollouts.get(model)
        if r is not None:
            line += f"; rollout to {r.to_version}: {r.phase.value} (step {r.step}) - {r.message}"
        print(line)
    for model, r in sorted(status.rollouts.items()):
        if model not in status.routes:
            print(f"  {model}: rollout to {r.to_version}: {r.phase.value} (step {r.step}) - {r.message}")
    return 0
