"""Rounds in alternating order and the min / median / max of per-round ratios, shared by the
benchmarks, and the JSON rows ``benchmarks/run`` collects into ``results.md``.

One machine's load moves a single timing a lot (2 cores shared by several jobs); the ratio of two
runs made back to back, first one side then the other, moves much less. Every benchmark runs
``--rounds`` rounds (>= 3), flips which side goes first each round, and reports each ratio as
min / median / max over the rounds.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["order", "ratio_row", "rotate", "spread", "write_rows"]


def order(round_index: int, sides: Sequence[str]) -> list[str]:
    """The sides in the order this round runs them: as given on even rounds, reversed on odd."""
    return list(sides) if round_index % 2 == 0 else list(sides)[::-1]


def rotate(items: Sequence[Any], round_index: int) -> list[Any]:
    """The items in the order this round runs them when there are more than two sides: shifted
    by one place each round, so each side goes first (and last) in turn."""
    k = round_index % len(items) if items else 0
    return list(items[k:]) + list(items[:k])


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def ratio_row(benchmark: str, case: str, what: str, peer: str, ratios: Sequence[float], *,
              same_work: bool, goal: float | None = None, lower_is_better: bool = False,
              note: str = "") -> dict[str, Any]:
    """One line of results.md: ``what`` (e.g. "peer time / our time") against ``peer``.
    ``same_work``: the peer does what we do (not just the tool users would pick). ``goal``: the
    median must be >= goal (<= goal when ``lower_is_better``)."""
    s = spread(ratios)
    met = None if goal is None else (s["median"] <= goal if lower_is_better else s["median"] >= goal)
    row = {"benchmark": benchmark, "case": case, "what": what, "peer": peer, "same_work": same_work,
           "rounds": len(ratios), "ratios": list(ratios), **s, "goal": goal,
           "lower_is_better": lower_is_better, "goal_met": met, "note": note}
    print(f"  {benchmark} {case}: {what} vs {peer}{' (same work)' if same_work else ''}, "
          f"{len(ratios)} rounds: min {s['min']:.3g}, median {s['median']:.3g}, max {s['max']:.3g}"
          + (f" (goal {'<=' if lower_is_better else '>='} {goal:g}: {'met' if met else 'NOT met'})"
             if goal is not None else ""), flush=True)
    return row


def write_rows(path: str | None, rows: list[dict[str, Any]]) -> None:
    if path:
        Path(path).write_text(json.dumps(rows, indent=1))
