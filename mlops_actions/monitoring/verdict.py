"""Four-valued results shared by performance, drift and quality checks (Argo's evaluate.go)."""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["Verdict", "worst"]


class Verdict(enum.StrEnum):
    PASSED = "passed"  # measured, within bounds
    FAILED = "failed"  # measured, out of bounds
    INCONCLUSIVE = "inconclusive"  # too little data to say
    ERROR = "error"  # could not measure (bad column, bad input)


_RANK = {Verdict.PASSED: 0, Verdict.INCONCLUSIVE: 1, Verdict.ERROR: 2, Verdict.FAILED: 3}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe verdict: failed > error > inconclusive > passed; passed when empty."""
    return max(verdicts, key=_RANK.__getitem__, default=Verdict.PASSED)
