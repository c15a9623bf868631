"""``mlops-actions staging-check``: serve the candidate on 127.0.0.1 and smoke-test it.

The gateway that serves it is built in the serving area. Until it is in this
build, the command says "not available yet" and exits 3 (an outside part is
missing): never a fake pass. An environment with
``promotion.require_staging_check: false`` is skipped with exit 0.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from mlops_actions.config.loader import load_environment
from mlops_actions.errors import EXIT_OK, ConfigError, TargetError
from mlops_actions.github import actions

ORDER = 36
OUTPUTS = frozenset({"result"})  # step outputs written to $GITHUB_OUTPUT
GATEWAY_MODULE = "mlops_actions.serving.gateway"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "staging-check", help="serve the candidate locally and check it (health, parity, latency)",
        description="Start the gateway on 127.0.0.1 with the versions pinned in ENV, replay test "
        "rows, and check served == offline predictions, no errors, the latency budget and the "
        "health endpoints. Exit 0 passed or not required, 1 failed, 3 the gateway is not available.")
    p.add_argument("--env", required=True)
    p.add_argument("--rows", type=int, default=200, help="test rows to replay per model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.repo) / "environments" / f"{args.env}.yaml"
    if not path.is_file():
        raise ConfigError(f"environment {args.env!r} not found: no environments/{args.env}.yaml")
    spec = load_environment(path)
    if not spec.promotion.require_staging_check:
        print(f"staging-check {args.env}: skipped: promotion.require_staging_check is false")
        actions.set_output("result", "skipped")
        return EXIT_OK
    try:
        importlib.import_module(GATEWAY_MODULE)
    except ImportError:
        actions.set_output("result", "not-available")
        raise TargetError(
            f"staging-check {args.env}: not available yet: the gateway ({GATEWAY_MODULE}) is not "
            "in this build, so the candidate cannot be served and checked",
            hint="set promotion.require_staging_check: false to skip it knowingly") from None
    raise TargetError(  # pragma: no cover - until the gateway's API is wired in
        f"staging-check {args.env}: not available yet: the gateway is present but not wired "
        "into staging-check")
