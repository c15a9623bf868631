"""Four-valued results of validation checks, rolled up per model version.

A check is one comparison (a metric against a threshold, on the whole test set
or on a slice) or one behavioural test. Its verdict is one of
:class:`Verdict`; the version's verdict is the worst of its checks, in the order
failed > error > inconclusive > passed (Argo Rollouts' ``evaluate.go`` order:
a definite "no" outranks "could not tell").
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_actions.verdict import Verdict, worst

if TYPE_CHECKING:
    from mlops_actions.stats.paired import PairedDelta

__all__ = ["CheckKind", "CheckResult", "ValidationResult", "Verdict", "roll_up"]


class CheckKind(enum.StrEnum):
    """What a check looked at."""

    METRIC = "metric"  #: a metric threshold on the whole test set
    SLICE = "slice"  #: a metric threshold on a dataset slice
    BEHAVIOURAL = "behavioural"  #: a behavioural test declared in model.yaml


def roll_up(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst verdict; no checks at all is ``passed`` (nothing was asked)."""
    return worst(verdicts)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, with what a reviewer needs to judge it."""

    name: str  # e.g. "accuracy_score", "slice age>=65: f1_score", "determinism"
    kind: CheckKind
    verdict: Verdict
    message: str  # check, actual, expected, what to do
    metric: str | None = None
    slice: str | None = None
    rows: int | None = None
    candidate: float | None = None
    baseline: float | None = None
    threshold: str | None = None  # human-readable bound(s), e.g. ">= 0.9; >= baseline + 0.01"
    location: str | None = None  # model.yaml:line:col of the declaration
    paired: PairedDelta | None = None  # candidate - baseline on the same rows, with CI and p-value

    @property
    def delta(self) -> float | None:
        if self.candidate is None or self.baseline is None:
            return None
        return self.candidate - self.baseline

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        d["verdict"] = self.verdict.value
        d["delta"] = self.delta
        d["paired"] = self.paired.to_dict() if self.paired is not None else None
        return d


@dataclass(frozen=True)
class ValidationResult:
    """Everything ``validate`` found about one candidate version."""

    model: str
    version: str
    task: str
    checks: tuple[CheckResult, ...]
    metrics: Mapping[str, float | None]
    baseline_version: str | None = None
    baseline_metrics: Mapping[str, float | None] = field(default_factory=dict)
    slice_metrics: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    slice_rows: Mapping[str, int] = field(default_factory=dict)
    baseline_slice_metrics: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None
    labels: tuple[str, ...] = ()
    latency: Mapping[str, float] = field(default_factory=dict)
    rows: int = 0
    data_path: str = ""
    run_id: str | None = None
    #: small plot inputs: "calibration" {mean_predicted, observed, count} (binary) or
    #: "residuals" {predicted, residual} (regression, a sample of rows)
    curves: Mapping[str, Mapping[str, list[float]]] = field(default_factory=dict)
    #: candidate - baseline on the same rows, per metric (whole set; see validation.deltas)
    deltas: Mapping[str, PairedDelta] = field(default_factory=dict)
    #: the same per slice, for the metrics a slice threshold names
    slice_deltas: Mapping[str, Mapping[str, PairedDelta]] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return roll_up(c.verdict for c in self.checks)

    def by_verdict(self, verdict: Verdict) -> list[CheckResult]:
        return [c for c in self.checks if c.verdict is verdict]

    def with_run_id(self, run_id: str) -> ValidationResult:
        from dataclasses import replace

        return replace(self, run_id=run_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "task": self.task,
            "verdict": self.verdict.value,
            "counts": {v.value: len(self.by_verdict(v)) for v in Verdict},
            "baseline_version": self.baseline_version,
            "rows": self.rows,
            "data_path": self.data_path,
            "metrics": dict(self.metrics),
            "baseline_metrics": dict(self.baseline_metrics),
            "deltas": {k: v.to_dict() for k, v in self.deltas.items()},
            "slices": {
                name: {"rows": self.slice_rows.get(name, 0), "metrics": dict(m),
                       "baseline_metrics": dict(self.baseline_slice_metrics.get(name, {})),
                       "deltas": {k: v.to_dict() for k, v in self.slice_deltas.get(name, {}).items()}}
                for name, m in self.slice_metrics.items()
            },
            "confusion_matrix": [list(r) for r in self.confusion_matrix]
            if self.confusion_matrix is not None else None,
            "labels": list(self.labels),
            "latency": dict(self.latency),
            "checks": [c.to_dict() for c in self.checks],
            "curves": {k: dict(v) for k, v in self.curves.items()},
            "mlflow_run_id": self.run_id,
        }
