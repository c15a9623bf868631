"""One four-valued verdict for every judgement the toolkit makes.

Validation checks, promotion-policy rules, rollout analysis and monitoring all answer the
same question (did the measured thing meet its expectation?) with the same four values,
as Argo Rollouts' ``evaluate.go`` does for its measurements. This module imports nothing
from the package, so every layer may use it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = ["Verdict", "worst"]


class Verdict(enum.StrEnum):
    PASSED = "passed"  #: measured, and the expectation holds
    FAILED = "failed"  #: measured, and the expectation is broken
    INCONCLUSIVE = "inconclusive"  #: not enough information to decide (too few rows, no credentials)
    ERROR = "error"  #: could not measure (an outside system failed, bad input)

    @property
    def rank(self) -> int:
        """Severity: passed < inconclusive < error < failed."""
        return _RANK[self]

    @property
    def icon(self) -> str:
        return _ICON[self]


_RANK = {Verdict.PASSED: 0, Verdict.INCONCLUSIVE: 1, Verdict.ERROR: 2, Verdict.FAILED: 3}
_ICON = {Verdict.PASSED: "✅", Verdict.INCONCLUSIVE: "⚠️", Verdict.ERROR: "❗", Verdict.FAILED: "❌"}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe verdict: failed > error > inconclusive > passed; passed when empty."""
    return max(verdicts, key=_RANK.__getitem__, default=Verdict.PASSED)
