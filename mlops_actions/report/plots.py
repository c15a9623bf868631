"""matplotlib (Agg backend, no display) plots returned as base64 PNG for HTML reports."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from mlops_actions.report.html import figure_png

__all__ = ["bars", "calibration", "confusion_matrix", "residuals"]

_GREEN, _RED, _GREY, _BLUE = "#1a7f37", "#cf222e", "#8c959f", "#0969da"


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> str:
    cm = np.asarray(matrix, dtype=float)
    k = len(labels)
    size = max(3.2, 0.55 * k + 2.2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    row = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, row, out=np.zeros_like(cm), where=row > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}\n{share[i, j]:.0%}", ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(k), labels, rotation=45 if k > 4 else 0)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return figure_png(fig)


def calibration(mean_predicted: Sequence[float], observed: Sequence[float], title: str) -> str:
    """Reliability diagram: mean predicted probability vs observed frequency, one point per bin."""
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.plot([0, 1], [0, 1], "--", color=_GREY, label="perfectly calibrated")
    ax.plot(mean_predicted, observed, "o-", color=_BLUE, label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency of the positive class")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    return figure_png(fig)


def residuals(predicted: Sequence[float], residual: Sequence[float], title: str) -> str:
    """Residual (true - predicted) against predicted, for a sample of rows."""
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.scatter(predicted, residual, s=6, alpha=0.4, color=_BLUE)
    ax.axhline(0, color=_GREY, linestyle="--")
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title(title)
    return figure_png(fig)


def bars(names: Sequence[str], values: Sequence[float | None], title: str, *,
         reference: float | None = None, bound: float | None = None,
         verdicts: Sequence[str] | None = None) -> str:
    """Horizontal bars (one per slice); colour by verdict; dashed line at the whole-set value."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(6.2, max(2.2, 0.38 * n + 1.2)))
    vals = [0.0 if v is None else float(v) for v in values]
    colours = []
    for i in range(n):
        v = verdicts[i] if verdicts and i < len(verdicts) else ""
        colours.append(_RED if v == "failed" else _GREEN if v == "passed" else _GREY)
    y = np.arange(n)
    ax.barh(y, vals, color=colours)
    for i, value in enumerate(values):
        ax.text(vals[i], i, " n/a" if value is None else f" {value:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    top = max([*vals, reference or 0.0, bound or 0.0, 1e-9])
    ax.set_xlim(0, top * 1.18)
    if reference is not None:
        ax.axvline(reference, color=_BLUE, linestyle="--", label=f"whole set {reference:.3f}")
    if bound is not None:
        ax.axvline(bound, color=_RED, linestyle=":", label=f"threshold {bound:g}")
    if reference is not None or bound is not None:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return figure_png(fig)
