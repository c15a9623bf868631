"""``mlops-actions demo``: the whole loop on the embedded default, in a throwaway repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_OK

ORDER = 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="run the whole loop (register, PR checks, canary, monitor, rollback) locally",
        description="Copy models/ and environments/ into a throwaway git repository and run the "
        "whole loop there on the embedded default (MLflow on SQLite, gateways on 127.0.0.1): "
        "train and register, the PR checks, a canary rollout to staging then production, "
        "monitoring with injected drift and an alert, and a broken candidate rolled back "
        "automatically. Reports are left in --out. Exit 0 when every step ended as expected.")
    p.add_argument("--out", default="reports/demo", metavar="DIR",
                   help="where reports and logs go (default: reports/demo)")
    p.add_argument("--fast", action="store_true", help="shorter analysis intervals (used by the tests)")
    p.add_argument("--keep", action="store_true", help="keep the throwaway repository")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlops_actions.demo import DemoSettings, run_demo

    settings = DemoSettings.fast() if args.fast else DemoSettings()
    result = run_demo(Path(args.repo), Path(args.out), settings, keep=args.keep)
    print()
    print((result.out / "summary.md").read_text())
    if not result.ok:
        bad = [s.title for s in result.steps if not s.ok]
        print(f"demo: {len(bad)} step(s) did not end as expected: {', '.join(bad)}")
        return EXIT_CHECK_FAILED
    print(f"demo: every step ended as expected; reports in {result.out}")
    return EXIT_OK
