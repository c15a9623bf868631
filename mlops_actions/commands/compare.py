"""``mlops-actions compare A B --metric M``: is variant B better or worse than A, and how sure is that?

A and B are CSV or Parquet prediction logs, one row per served prediction (columns
prediction, label, latency_ms, error; see docs/compare.md). Prints a sentence
and a table, or JSON (--json). Exit 0 when the comparison was made, whatever its verdict;
1 when B is significantly worse than A or the row counts do not fit --expected-split
(sample ratio mismatch), so the command can gate a rollout; 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_OK, ConfigError

if TYPE_CHECKING:
    from mlops_actions.stats.interface import Comparison

ORDER = 61

__all__ = ["add_parser", "render_comparison", "run"]


def add_parser(sub: Any) -> None:
    from mlops_actions.stats.interface import DEFAULT_ALPHA, DEFAULT_MIN_ROWS, Metric

    p: argparse.ArgumentParser = sub.add_parser(
        "compare", help="compare variant B with A on one metric: difference, CI, p-value, verdict",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog="Verdicts: b_better, a_better, no_difference, inconclusive (too little data or a "
               "sample ratio mismatch). Exit codes: 0 verdict computed, 1 B significantly worse "
               "(a_better) or sample ratio mismatch, 2 bad input.")
    p.add_argument("a", metavar="A", help="variant A's prediction log (.csv or .parquet): the baseline")
    p.add_argument("b", metavar="B", help="variant B's prediction log (.csv or .parquet): the candidate")
    p.add_argument("--metric", required=True, choices=[m.value for m in Metric],
                   help="accuracy (labelled rows; higher is better), error_rate or latency_ms "
                        "(lower is better)")
    p.add_argument("--expected-split", type=float, default=None, metavar="P",
                   help="A's expected share of all rows, e.g. 0.5: checks for a sample ratio mismatch "
                        "(chi-square, flagged below p = 0.001)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"significance level; CIs are at 1 - alpha (default {DEFAULT_ALPHA})")
    p.add_argument("--sequential", action="store_true",
                   help="always-valid p-value and CI (mSPRT): use when you look at the data repeatedly")
    p.add_argument("--min-rows", type=int, default=DEFAULT_MIN_ROWS, metavar="N",
                   help=f"fewer usable rows in an arm: inconclusive (default {DEFAULT_MIN_ROWS})")
    p.add_argument("--json", action="store_true", help="print JSON instead of a sentence and a table")
    p.set_defaults(func=run)


def _f(v: float | None, signed: bool = False) -> str:
    return "-" if v is None else (f"{v:+.4g}" if signed else f"{v:.4g}")


def _sentence(c: Comparison) -> str:
    from mlops_actions.stats.interface import Verdict

    d = c.difference
    level = f"{(1 - c.alpha) * 100:g}%{' always-valid' if c.sequential else ''} CI"
    figures = (f"B - A = {_f(d.estimate, True)}"
               + (f", {level} [{_f(d.ci[0], True)}, {_f(d.ci[1], True)}]" if d.ci else "")
               + (f", p = {d.p_value:.3g}" if d.p_value is not None else ""))
    if c.srm is not None and c.srm.mismatch:
        share = c.srm.expected_share_a
        return (f"{c.metric}: inconclusive: sample ratio mismatch, {c.srm.rows[0]} vs {c.srm.rows[1]} rows "
                f"against an expected {share:.0%}/{1 - share:.0%} split (p = {c.srm.p_value:.2g}); find out "
                f"why rows are missing before trusting any comparison ({figures}).")
    if c.verdict is Verdict.INCONCLUSIVE:
        if c.rows_needed:
            need = max(c.rows_needed["a"] + c.a.n if c.rows_needed["a"] else 0,
                       c.rows_needed["b"] + c.b.n if c.rows_needed["b"] else 0)
            return (f"{c.metric}: inconclusive: too little data; A needs {c.rows_needed['a']} more usable "
                    f"rows, B {c.rows_needed['b']} (at least {need} each).")
        return f"{c.metric}: inconclusive ({figures})."
    words = {Verdict.B_BETTER: "B is better than A", Verdict.A_BETTER: "B is worse than A",
             Verdict.NO_DIFFERENCE: f"no significant difference at alpha = {c.alpha:g}"}
    return f"{c.metric}: {words[c.verdict]} ({figures})."


def render_comparison(c: Comparison) -> str:
    """A sentence, then the per-arm figures as a Markdown table."""
    value = "median (ms)" if c.metric == "latency_ms" else "value"
    lines = [_sentence(c), "", f"| arm | usable rows | {value} |", "|---|---|---|",
             f"| A | {c.a.n} | {_f(c.a.value)} |", f"| B | {c.b.n} | {_f(c.b.value)} |"]
    d = c.difference
    ci = f"[{_f(d.ci[0], True)}, {_f(d.ci[1], True)}]" if d.ci else "-"
    lines.append(f"| B - A | CI {ci} | {_f(d.estimate, True)} |")
    lines += ["", f"verdict: {c.verdict}; method: {c.method}"]
    if c.srm is not None:
        lines.append(f"sample ratio: {c.srm.rows[0]} vs {c.srm.rows[1]} rows, expected share of A "
                     f"{c.srm.expected_share_a:g}: p = {c.srm.p_value:.3g}"
                     f"{' (MISMATCH)' if c.srm.mismatch else ''}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from mlops_actions.stats.compare import compare_arms
    from mlops_actions.stats.files import load_arms
    from mlops_actions.stats.interface import Metric, Verdict

    if not 0 < args.alpha < 1:
        raise ConfigError(f"--alpha {args.alpha} is not in (0, 1)", hint="use e.g. 0.05")
    if args.expected_split is not None and not 0 < args.expected_split < 1:
        raise ConfigError(f"--expected-split {args.expected_split} is not in (0, 1)",
                          hint="give A's expected share of all rows, e.g. 0.5 for an even split")
    if args.min_rows < 2:
        raise ConfigError(f"--min-rows {args.min_rows} is below 2", hint="use at least 2 (default 30)")
    metric = Metric(args.metric)
    a = load_arms(args.a, (metric,))[metric]
    b = load_arms(args.b, (metric,))[metric]
    result = compare_arms(metric, a, b, alpha=args.alpha, sequential=args.sequential,
                          min_rows=args.min_rows, expected_split=args.expected_split)
    text = render_comparison(result)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    print(json.dumps(result.to_dict(), indent=1) if args.json else text, end="\n" if args.json else "")
    failed = result.verdict is Verdict.A_BETTER or (result.srm is not None and result.srm.mismatch)
    return EXIT_CHECK_FAILED if failed else EXIT_OK
