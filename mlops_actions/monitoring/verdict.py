"""Monitoring's verdicts are the toolkit's one verdict type (``mlops_actions.verdict``)."""

from __future__ import annotations

from mlops_actions.verdict import Verdict, worst

__all__ = ["Verdict", "worst"]
