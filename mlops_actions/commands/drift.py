"""``mlops-actions drift --reference REF --current CUR``: data drift between two files.

Reads CSV/Parquet files (or a stored reference profile ``.npz``) column by column
with Arrow, never loading a whole table (see
:func:`mlops_actions.monitoring.columnar.detect_drift_files`), and runs the same
per-column tests as ``monitor``. Prints a Markdown table (worst columns first) or
JSON (``--json``). Exit 1 when the dataset drifts (share of drifted columns >=
``--drift-share``), 0 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_actions.errors import EXIT_CHECK_FAILED, EXIT_OK, ConfigError

if TYPE_CHECKING:
    from mlops_actions.monitoring.drift import DriftReport

ORDER = 61

__all__ = ["add_parser", "render_drift_markdown", "run"]


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "drift", help="data drift between a reference file and a current file (CSV/Parquet)",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--reference", required=True, metavar="PATH",
                   help="reference data (.parquet, .csv) or a stored profile (.npz)")
    p.add_argument("--current", required=True, metavar="PATH", help="current data (.parquet, .csv)")
    p.add_argument("--features", default=None, metavar="A,B,...",
                   help="only these columns (default: every reference column but --exclude)")
    p.add_argument("--exclude", action="append", default=[], metavar="COLUMN",
                   help="leave this column out (e.g. the label); repeatable")
    p.add_argument("--method", default="auto",
                   help="auto (Evidently's choice per column), ks, chisquare, z, wasserstein, "
                        "jensenshannon or psi")
    p.add_argument("--threshold", type=float, default=None,
                   help="the method's threshold (default: 0.05 for p-values, 0.1 for distances)")
    p.add_argument("--drift-share", type=float, default=0.5,
                   help="dataset drift when at least this share of columns drift (default 0.5)")
    p.add_argument("--correction", default="none", choices=("none", "bonferroni", "benjamini_hochberg"),
                   help="multiple-testing correction of p-values")
    p.add_argument("--compat", default="none", choices=("none", "evidently"),
                   help="evidently: every column's score as Evidently 0.7 computes it (Jensen-Shannon "
                        "in natural log, goodness-of-fit chi-square); default: ours (JS in base 2, "
                        "contingency chi-square)")
    p.add_argument("--save-profile", default=None, metavar="PATH.npz",
                   help="also store the reference profile here, to pass as --reference next time")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.set_defaults(func=run)


def _fmt(v: float | None) -> str:
    return "-" if v is None or v != v else f"{v:.4g}"


def render_drift_markdown(report: DriftReport, *, title: str = "Data drift", max_rows: int = 30) -> str:
    """A compact table of one drift report, worst columns first."""
    icon = {"passed": "✅", "failed": "❌", "inconclusive": "⚪", "error": "⚠️"}
    lines = [f"### {title} — {icon[report.verdict.value]} {report.summary()}", "",
             "| column | kind | method | statistic | threshold | drifted | PSI | detail |",
             "|---|---|---|---|---|---|---|---|"]
    cols = report.worst_first()
    for c in cols[:max_rows]:
        drifted = {True: "❌ yes", False: "no", None: "-"}[c.drifted]
        detail = c.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{c.column}` | {c.kind} | {c.method or '-'} | {_fmt(c.statistic)} | "
                     f"{_fmt(c.threshold)} | {drifted} | {_fmt(c.psi)} | {detail} |")
    if len(cols) > max_rows:
        lines.append(f"\n… and {len(cols) - max_rows} more (see --json)")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from mlops_actions.monitoring.columnar import ColumnFile, detect_drift_files, profile_file
    from mlops_actions.monitoring.drift import METHODS, DriftOptions
    from mlops_actions.monitoring.profile import StoredProfile
    from mlops_actions.monitoring.verdict import Verdict

    if args.method != "auto" and args.method not in METHODS:
        raise ConfigError(f"--method {args.method!r} is not a drift method",
                          hint=f"valid: auto, {', '.join(METHODS)}")
    if not 0 < args.drift_share <= 1:
        raise ConfigError(f"--drift-share {args.drift_share} is not in (0, 1]")
    features = tuple(f.strip() for f in args.features.split(",") if f.strip()) if args.features else None
    is_profile = Path(args.reference).suffix.lower() == ".npz"
    if features is None and args.exclude:
        if is_profile:
            with StoredProfile(args.reference) as stored:
                names = stored.names
        else:
            names = ColumnFile(args.reference).names
        features = tuple(n for n in names if n not in args.exclude)
    reference: Any = args.reference
    if args.save_profile:
        if is_profile:
            raise ConfigError("--save-profile needs a data file as --reference, not a stored profile",
                              hint="drop --save-profile: the profile is already stored")
        reference = profile_file(args.reference, features=features)
        reference.save(args.save_profile)
    options = DriftOptions(method=args.method, threshold=args.threshold, drift_share=args.drift_share,
                           correction=args.correction, features=features, compat=args.compat)
    report = detect_drift_files(reference, args.current, options)
    markdown = render_drift_markdown(report)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
    if args.json:
        print(json.dumps(report.to_dict(), indent=1, default=str))
    else:
        print(markdown, end="")
    return EXIT_CHECK_FAILED if report.verdict is Verdict.FAILED else EXIT_OK
