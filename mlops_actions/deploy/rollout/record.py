"""The rollout vocabulary: persisted phases, routes, measurements and the rollout record.

Values only, JSON round-trippable in one place each (``to_dict`` / ``from_dict``):
the strategy is kept as its typed spec (:data:`~mlops_actions.config.specs.Strategy`)
from the moment a rollout is declared, parsed once when a record is read back from
the state database or the admin API, never re-parsed per tick.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from pydantic import TypeAdapter

from mlops_actions.config.specs import Strategy
from mlops_actions.verdict import Verdict

__all__ = [
    "ACTIVE_PHASES",
    "TERMINAL_PHASES",
    "Measurement",
    "Phase",
    "Rollout",
    "Route",
    "parse_strategy",
]

_STRATEGY: TypeAdapter[Strategy] = TypeAdapter(Strategy)


def parse_strategy(data: dict[str, Any]) -> Strategy:
    """A strategy spec from its JSON form (raises pydantic's ValidationError when invalid)."""
    return _STRATEGY.validate_python(data)


def dump_strategy(strategy: Strategy) -> dict[str, Any]:
    data: dict[str, Any] = strategy.model_dump(mode="json", by_alias=True)
    return data


class Phase(enum.StrEnum):
    """Where a rollout is; persisted, so a restarted host resumes from it."""

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
    result: Verdict
    value: float | None
    samples: int
    message: str
    at: float
    #: a judgement's parts, for a reader to show apart (``message`` holds them in one line): its
    #: one-sentence summary and one clause per metric (the canary-vs-stable judge)
    summary: str = ""
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result.value, "details": list(self.details)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**{**data, "result": Verdict(data["result"]), "details": tuple(data.get("details", ()))})


@dataclass(frozen=True)
class Rollout:
    """The persisted state of one model's rollout in one environment.

    ``step`` indexes the canary steps (blue-green: its sub-steps, see the engine);
    ``successes`` .. ``consecutive_errors`` count the current analysis step's
    measurements, ``bg_*`` the canary's background analysis; ``measurements`` keeps
    the last 50 results (every one is in the state database's analysis runs).
    """

    id: str
    environment: str
    model: str
    from_version: str
    from_uri: str
    to_version: str
    to_uri: str
    strategy: Strategy
    version_b_uri: str | None = None  # ab_test: where version_b loads from
    phase: Phase = Phase.PROGRESSING
    step: int = 0
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
        """The JSON form (state database, admin API): the one place a record is serialised."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["strategy"] = dump_strategy(self.strategy)
        data["phase"] = self.phase.value
        data["measurements"] = [m.to_dict() for m in self.measurements]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        """The record from its JSON form; also reads rows written before ``version_b_uri`` had a
        field of its own (it sat inside the strategy)."""
        strategy = dict(data["strategy"])
        legacy_b_uri = strategy.pop("version_b_uri", None)
        return cls(**{**data, "strategy": parse_strategy(strategy),
                      "version_b_uri": data.get("version_b_uri") or legacy_b_uri or None,
                      "phase": Phase(data["phase"]),
                      "measurements": tuple(Measurement.from_dict(m) for m in data.get("measurements", ()))})
