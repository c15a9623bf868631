"""Statistics engine: compare two variants with intervals, p-values and a four-valued verdict.

``interface`` (value types), ``compare`` (fixed horizon; several metrics with a
multiplicity correction), ``sequential`` (mSPRT, always-valid), ``srm`` (sample ratio
mismatch), ``files`` (reading a variant's prediction log), ``paired`` (two models on the same
rows: McNemar, DeLong, paired bootstrap; validation's deltas), ``judge`` (canary against
stable, Kayenta's model: ``from mlops_actions.stats.judge import judge``). Pure functions over
numpy arrays.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_actions.stats.compare import compare_arms, compare_metrics, latency_test, proportion_test
    from mlops_actions.stats.interface import (
        Arm,
        ArmSummary,
        Comparison,
        Difference,
        Metric,
        MultiComparison,
        Srm,
        Verdict,
    )
    from mlops_actions.stats.paired import PairedDelta, bootstrap_delta, delong, mcnemar
    from mlops_actions.stats.srm import srm_check

#: name -> submodule. Loaded on first use (PEP 562): ``compare`` imports scipy.stats (about a
#: second), and importing ``mlops_actions.stats.interface`` for the CLI's parser runs this file.
_LAZY = {
    **dict.fromkeys(("compare_arms", "compare_metrics", "latency_test", "proportion_test"), "compare"),
    **dict.fromkeys(("Arm", "ArmSummary", "Comparison", "Difference", "Metric", "MultiComparison", "Srm",
                     "Verdict"), "interface"),
    **dict.fromkeys(("PairedDelta", "bootstrap_delta", "delong", "mcnemar"), "paired"),
    "srm_check": "srm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

__all__ = [
    "Arm",
    "ArmSummary",
    "Comparison",
    "Difference",
    "Metric",
    "MultiComparison",
    "PairedDelta",
    "Srm",
    "Verdict",
    "bootstrap_delta",
    "compare_arms",
    "compare_metrics",
    "delong",
    "latency_test",
    "mcnemar",
    "proportion_test",
    "srm_check",
]
