"""Rollout vocabulary shared by every target (re-exported from :mod:`.rollout.record`).

The persisted :class:`Phase` enum, the live :class:`Route` of one model, one
analysis :class:`Measurement` and the :class:`Rollout` record the engine
(:mod:`mlops_actions.deploy.rollout.engine`) advances one small idempotent step
at a time. Every value is JSON-serialisable (``to_dict`` / ``from_dict``) so it
survives a restart.
"""

from __future__ import annotations

from mlops_actions.deploy.rollout.record import (
    ACTIVE_PHASES,
    TERMINAL_PHASES,
    Measurement,
    Phase,
    Rollout,
    Route,
)
from mlops_actions.verdict import Verdict

__all__ = [
    "ACTIVE_PHASES",
    "TERMINAL_PHASES",
    "GateResult",
    "Measurement",
    "Phase",
    "Rollout",
    "Route",
]

GateResult = Verdict  # Argo Rollouts' measurement outcomes: the toolkit's one verdict type (an alias)
