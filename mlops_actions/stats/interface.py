"""Value types of the statistics engine: metrics, per-arm figures, differences, verdicts.

Everything here is a frozen dataclass or an enum; the calculations live in
:mod:`mlops_actions.stats.compare`, :mod:`~mlops_actions.stats.sequential` and
:mod:`~mlops_actions.stats.srm`. Differences are always ``B - A``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_ROWS",
    "SRM_THRESHOLD",
    "Arm",
    "ArmSummary",
    "Comparison",
    "Difference",
    "Metric",
    "MultiComparison",
    "Srm",
    "Verdict",
]

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_ROWS = 30
SRM_THRESHOLD = 0.001  # GrowthBook's: a sample ratio mismatch below this p-value

FloatArray = npt.NDArray[np.float64]


class Metric(enum.StrEnum):
    """What is compared; each knows which way is better."""

    ACCURACY = "accuracy"  # share of labelled rows with prediction == label
    ERROR_RATE = "error_rate"  # share of rows with error == 1
    LATENCY_MS = "latency_ms"  # median latency; Mann-Whitney U

    @property
    def higher_is_better(self) -> bool:
        return self is Metric.ACCURACY

    @property
    def is_proportion(self) -> bool:
        return self is not Metric.LATENCY_MS


class Verdict(enum.StrEnum):
    """Four-valued, like the gate results (Argo's evaluate.go), from B's point of view."""

    B_BETTER = "b_better"  # significant difference in B's favour
    A_BETTER = "a_better"  # significant difference in A's favour
    NO_DIFFERENCE = "no_difference"  # enough data, no significant difference
    INCONCLUSIVE = "inconclusive"  # too little data, or a sample ratio mismatch


@dataclass(frozen=True)
class Arm:
    """One variant's usable values for one metric: 0/1 outcomes for proportions, latencies
    in ms otherwise. ``rows`` counts every row of the variant's file (for the SRM check)."""

    values: FloatArray
    rows: int

    @property
    def n(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class ArmSummary:
    n: int  # usable rows
    value: float | None  # the proportion, or the median latency; None with no rows

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "value": _num(self.value)}


@dataclass(frozen=True)
class Difference:
    estimate: float | None  # B - A
    ci: tuple[float, float] | None  # at 1 - alpha (always-valid when sequential)
    p_value: float | None  # None only with too little data or no variance

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": _num(self.estimate),
                "ci": None if self.ci is None else [_num(self.ci[0]), _num(self.ci[1])],
                "p_value": _num(self.p_value)}


@dataclass(frozen=True)
class Srm:
    """Sample ratio mismatch: do the row counts fit the expected split?"""

    p_value: float
    mismatch: bool
    expected_share_a: float
    rows: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"p_value": _num(self.p_value), "mismatch": self.mismatch}


@dataclass(frozen=True)
class Comparison:
    """One metric, A against B."""

    metric: Metric
    a: ArmSummary
    b: ArmSummary
    difference: Difference
    verdict: Verdict
    alpha: float
    sequential: bool
    method: str  # the test and interval used, in words
    srm: Srm | None = None
    rows_needed: dict[str, int] | None = None  # per arm, when there is too little data
    p_adjusted: float | None = None  # with several metrics (see MultiComparison.correction)

    @property
    def b_worse(self) -> bool:
        return self.verdict is Verdict.A_BETTER

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric.value, "a": self.a.to_dict(), "b": self.b.to_dict(),
                               "difference": self.difference.to_dict()}
        if self.p_adjusted is not None:
            out["difference"]["p_adjusted"] = _num(self.p_adjusted)
        if self.srm is not None:
            out["srm"] = self.srm.to_dict()
        out["verdict"] = self.verdict.value
        out["rows_needed"] = self.rows_needed
        out.update(alpha=self.alpha, sequential=self.sequential, method=self.method)
        return out


@dataclass(frozen=True)
class MultiComparison:
    """Several metrics at once: ``primary`` p-values adjusted together (``correction``), their
    CIs at the Bonferroni level; ``guardrails`` judged each on its own at ``alpha``."""

    primary: tuple[Comparison, ...]
    guardrails: tuple[Comparison, ...] = field(default_factory=tuple)
    correction: str = "holm"

    def to_dict(self) -> dict[str, Any]:
        return {"correction": self.correction,
                "primary": [c.to_dict() for c in self.primary],
                "guardrails": [c.to_dict() for c in self.guardrails]}


def _num(v: float | None) -> float | None:
    """JSON has no NaN: a missing figure is null."""
    return None if v is None or not math.isfinite(v) else float(v)
