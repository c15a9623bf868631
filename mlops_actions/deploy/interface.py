"""Rollout vocabulary shared by the local gateway and the Kubernetes target.

Values only: the persisted :class:`Phase` enum, four-valued :class:`GateResult`,
the live :class:`Route` of one model and the :class:`Rollout` record the
controller advances one small idempotent step at a time. Every value is
JSON-serialisable (``to_dict`` / ``from_dict``) so it survives a restart.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mlops_actions.verdict import Verdict

__all__ = [
    "TERMINAL_PHASES",
    "GateResult",
    "Measurement",
    "Phase",
    "Rollout",
    "Route",
]


class Phase(enum.StrEnum):
    """Where a rollout is; persisted, so a restarted gateway resumes from it."""

    PROGRESSING = "Progressing"  # moving through the steps (set_weight, short pauses)
    PAUSED = "Paused"  # waiting: a pause without duration, or inconclusive analysis
    ANALYZING = "Analyzing"  # an analysis step is taking measurements
    PROMOTING = "Promoting"  # the new version becomes stable (routes switch)
    HEALTHY = "Healthy"  # done: the new version is stable and serves all traffic
    DEGRADED = "Degraded"  # an A/B test or blue-green preview runs with a failing signal
    ROLLED_BACK = "RolledBack"  # analysis failed: traffic went back to the stable version
    ABORTED = "Aborted"  # a person aborted it: traffic went back to the stable version


TERMINAL_PHASES = frozenset({Phase.HEALTHY, Phase.ROLLED_BACK, Phase.ABORTED})
#: a rollout a person can resume or abort (``mlops-actions resume`` / ``rollback``)
ACTIVE_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.ANALYZING})


GateResult = Verdict  # Argo Rollouts' measurement outcomes: the toolkit's one verdict type


@dataclass(frozen=True)
class Route:
    """How requests for one model reach its versions.

    ``stable`` always has a loaded, healthy backend. ``candidate`` is the canary,
    the A/B variant ``b`` or the blue-green preview, depending on ``mode``.
    """

    model: str
    stable: str  # semver
    stable_uri: str
    candidate: str | None = None
    candidate_uri: str | None = None
    mode: str = "none"  # none | canary | ab_test | blue_green
    weight: int = 0  # percent of traffic to the candidate (canary, ab_test)
    sticky_header: str = "X-User-Id"
    preview_header: str = "X-Preview"
    mirror: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Route:
        return cls(**data)

    def only_stable(self) -> Route:
        return replace(self, candidate=None, candidate_uri=None, mode="none", weight=0, mirror=False)


@dataclass(frozen=True)
class Measurement:
    """One analysis measurement of one metric."""

    metric: str
    result: GateResult
    value: float | None
    samples: int
    message: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**{**data, "result": GateResult(data["result"])})


@dataclass(frozen=True)
class Rollout:
    """The persisted state of one model's rollout in one environment."""

    id: str
    environment: str
    model: str
    from_version: str
    from_uri: str
    to_version: str
    to_uri: str
    strategy: dict[str, Any]  # the Strategy spec as JSON (config/specs.py)
    phase: Phase = Phase.PROGRESSING
    step: int = 0  # index into the canary steps
    weight: int = 0
    step_started_at: float = 0.0
    analysis_started_at: float = 0.0  # window start of the next measurement
    successes: int = 0
    failures: int = 0
    inconclusives: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    bg_started_at: float = 0.0  # background analysis (canary.analysis) window start
    bg_failures: int = 0
    bg_consecutive_errors: int = 0
    message: str = ""
    actor: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    measurements: tuple[Measurement, ...] = field(default_factory=tuple)

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        data["measurements"] = [m.to_dict() for m in self.measurements]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        return cls(**{**data, "phase": Phase(data["phase"]),
                      "measurements": tuple(Measurement.from_dict(m) for m in data.get("measurements", ()))})
