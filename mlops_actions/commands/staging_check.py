"""``mlops-actions staging-check``: serve the candidates on 127.0.0.1 and smoke-test them.

Uses the gateway of the serving area. When it is not in the build, the command says
"not available yet" and exits 3: never a fake pass. An environment with
``promotion.require_staging_check: false`` is skipped with exit 0.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from mlops_actions.config.loader import load_environment
from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_EXTERNAL, EXIT_OK, ConfigError, TargetError
from mlops_actions.github import actions
from mlops_actions.gitops.policy import Outcome

ORDER = 36
OUTPUTS = frozenset({"result"})  # written to $GITHUB_OUTPUT
GATEWAY_MODULE = "mlops_actions.serving.gateway"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "staging-check", help="serve the candidates locally and check them (health, parity, latency)",
        description="Start the gateway on 127.0.0.1 with the versions pinned in ENV, replay test "
        "rows, and check served == offline predictions, no errors, the latency budget and the "
        "health endpoints. Exit 0 passed or not required, 1 failed, 3 error or gateway not available.")
    p.add_argument("--env", required=True)
    p.add_argument("--rows", type=int, default=100, help="test rows to replay per model (default 100)")
    p.add_argument("--latency-budget-ms", type=float, default=500.0,
                   help="p95 per row when model.yaml has no latency test (default 500)")
    p.add_argument("--markdown", metavar="FILE", help="also write the results as Markdown")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    path = repo / "environments" / f"{args.env}.yaml"
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
    from mlops_actions.gitops.staging import render_markdown, render_text, run_staging_check

    checks = run_staging_check(repo, args.env, spec, rows=args.rows,
                               latency_budget_ms=args.latency_budget_ms)
    print(render_text(args.env, checks))
    markdown = render_markdown(args.env, checks)
    if args.markdown:
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    actions.append_summary(markdown)
    failed = any(c.outcome is Outcome.FAILED for c in checks)
    errored = any(c.outcome is Outcome.ERROR for c in checks)
    actions.set_output("result", "failed" if failed else "error" if errored else "passed")
    if failed:
        return EXIT_CHECK_FAILED
    return EXIT_EXTERNAL if errored else EXIT_OK
