"""``mlops-actions rollback MODEL --env ENV``: back to the stable (or previous) version."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

ORDER = 46


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "rollback", help="abort a running rollout, or go back to the previous version",
        description="Abort MODEL's running rollout (traffic back to stable) or, when none runs, roll "
        "back to the version that was stable before. Open a PR restoring the pin so git agrees.")
    p.add_argument("model")
    p.add_argument("--env", required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.deploy.apply import load_env, target_for

    repo = Path(args.repo)
    r = target_for(repo, load_env(repo, args.env)).abort(args.model, os.environ.get("USER", "cli"))
    print(f"{args.model}: {r.phase.value} - {r.message}")
    return 0
