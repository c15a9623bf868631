"""``mlops-actions status --env ENV``: live routes, weights and rollout phases, and the canary
judge's judgements (``analysis.compare_to_stable``) of each rollout."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_actions.deploy.interface import Rollout
    from mlops_actions.deploy.targets.interface import TargetStatus

ORDER = 45
JUDGE_METRIC = "canary_vs_stable"  # the rollout engine's measurement name (deploy.rollout.engine)
SHOWN_JUDGEMENTS = 4  # the last few: one per analysis window


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="show live routes, weights and rollout phase of an environment",
        description="Ask the environment's target (the gateway, or the cluster) for its routes and "
        "rollouts, with the canary-vs-stable judgements of each rollout (analysis.compare_to_stable).")
    p.add_argument("--env", required=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--markdown", metavar="FILE",
                   help="also write the status as Markdown (the deploy comment's body)")
    p.set_defaults(func=run)


def judgements(r: Rollout) -> list[tuple[float, str, str, tuple[str, ...]]]:
    """The rollout's last canary-vs-stable judgements: (time, verdict, summary, per-metric clauses)."""
    return [(m.at, m.result.value, m.summary, m.details)
            for m in [m for m in r.measurements if m.metric == JUDGE_METRIC][-SHOWN_JUDGEMENTS:]]


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at)) + "Z"


def text_lines(status: TargetStatus) -> list[str]:
    lines = [f"environment {status.environment}"]
    for model, route in sorted(status.routes.items()):
        line = f"  {model}: stable {route.stable}"
        if route.candidate:
            line += f", {route.mode} {route.candidate} at {route.weight}%"
        r = status.rollouts.get(model)
        if r is not None:
            line += f"; rollout to {r.to_version}: {r.phase.value} (step {r.step}) - {r.message}"
        lines.append(line)
        if r is not None:
            lines += _judgement_lines(r)
    for model, r in sorted(status.rollouts.items()):
        if model not in status.routes:
            lines.append(f"  {model}: rollout to {r.to_version}: {r.phase.value} (step {r.step}) - "
                         f"{r.message}")
            lines += _judgement_lines(r)
    return lines


def _judgement_lines(r: Rollout) -> list[str]:
    lines = []
    for at, verdict, summary, clauses in judgements(r):
        lines.append(f"    canary vs stable at {_clock(at)}: {verdict} - {summary}")
        lines += [f"      {c}" for c in clauses]
    return lines


def markdown(status: TargetStatus) -> str:
    """The status as Markdown: a table of routes, then each rollout's judgements as lists."""
    lines = [f"**Environment `{status.environment}`**", "",
             "| model | stable | candidate | rollout |", "|---|---|---|---|"]
    models = sorted(set(status.routes) | set(status.rollouts))
    for model in models:
        route, r = status.routes.get(model), status.rollouts.get(model)
        cand = f"{route.mode} {route.candidate} at {route.weight}%" if route and route.candidate else "-"
        roll = (f"to {r.to_version}: **{r.phase.value}** (step {r.step}): {_cell(r.message)}"
                if r is not None else "-")
        lines.append(f"| {model} | {route.stable if route else '-'} | {cand} | {roll} |")
    for model in models:
        r = status.rollouts.get(model)
        found = judgements(r) if r is not None else []
        if not found or r is None:
            continue
        lines += ["", f"**{model}** {r.to_version}: canary vs stable (Kayenta's judge, same window):", ""]
        for at, verdict, summary, clauses in found:
            lines.append(f"- {_clock(at)} **{verdict}**: {summary}")
            lines += [f"  - {c}" for c in clauses]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run(args: argparse.Namespace) -> int:
    from mlops_actions.deploy.apply import load_env, target_for

    repo = Path(args.repo)
    status = target_for(repo, load_env(repo, args.env), args.env, progress=lambda _m: None).status()
    if args.markdown:
        Path(args.markdown).write_text(markdown(status), encoding="utf-8")
    if args.json:
        print(json.dumps({"environment": status.environment,
                          "routes": {m: r.to_dict() for m, r in status.routes.items()},
                          "rollouts": {m: r.to_dict() for m, r in status.rollouts.items()}}, indent=2))
        return 0
    print("\n".join(text_lines(status)))
    return 0
