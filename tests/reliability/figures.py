"""Figures of the reliability and security suite (issue 9).

Each reliability test calls :func:`record` once with a one-line summary and the
numbers behind it (faults injected, predictions acknowledged and found, inputs
tried, ...). The figures land in ``$MLOPS_RELIABILITY_FIGURES`` (default
``build/reliability/``), one JSON file per check; ``scripts/reliability`` runs
the suite and rewrites the "Figures" table of docs/reliability.md from them
(``python -m tests.reliability.readme``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def figures_dir() -> Path:
    return Path(os.environ.get("MLOPS_RELIABILITY_FIGURES", REPO_ROOT / "build" / "reliability"))


def record(check: str, area: str, summary: str, **numbers: Any) -> Path:
    """Write one check's figures.

    ``check``: a stable key (file name), e.g. ``"gateway-sigkill-under-load"``.
    ``area``: the table row group: ``crash``, ``load``, ``faults``, ``concurrency``,
    ``hostile-input``, ``secrets`` or ``workflows``.
    ``summary``: one sentence with the figures in it, as a reader of that table wants it,
    e.g. ``"30 SIGKILLs at random points of a canary: 30/30 restarts converged, 0 s without
    a healthy backend"``.
    ``numbers``: the raw figures (JSON-serialisable), kept for trend-watching.
    """
    out = figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{check}.json"
    payload = {"check": check, "area": area, "summary": summary, "numbers": numbers,
               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
