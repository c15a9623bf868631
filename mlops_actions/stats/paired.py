"""Paired comparisons: two models scored on the same rows (candidate ``B`` vs baseline ``A``).

Rows are shared, so the comparison is of paired outcomes, far tighter than two independent
samples (most rows are right, or wrong, for both models):

* :func:`mcnemar` for a share of rows (accuracy): McNemar's test on the discordant rows, exact
  (statsmodels' ``mcnemar(exact=True)``) or mid-p (the default: the exact binomial p-value less
  the probability of the observed count, recommended by Fagerland, Lydersen & Laake 2013, "The
  McNemar test for binary matched-pairs data: mid-p and asymptotic are better than exact
  conditional", BMC Med Res Methodol 13:91), and the Agresti-Min interval of the difference of
  paired proportions (Agresti & Min 2005: the Wald interval after adding 1/2 to each cell of
  the 2 x 2 table; near-nominal coverage even with few discordant rows, where Wald's collapses).
* :func:`delong` for ROC AUC: DeLong, DeLong & Clarke-Pearson (1988)'s test of two correlated
  AUCs (the default of pROC's ``roc.test``) with the fast midrank algorithm of Sun & Xu (2014):
  an asymptotic normal interval and p-value in O(n log n), where a bootstrap would re-rank
  every resample.
* :func:`bootstrap_delta` for any other metric: the percentile interval of ``B - A`` over paired
  resamples of the rows (the same resampled rows score both models) and the p-value that is
  its dual (the smallest ``1 - confidence`` at which the interval excludes 0). The resamples
  come from :func:`resample_weights` (how many times each row is drawn, in chunks, from a
  fixed seed), :func:`resample_sums` (the column sums of per-row values in each resample; with
  more than 5,000 rows, rows are first summed into 5,000 random buckets and the buckets
  resampled, the "bucket bootstrap" of online experimentation platforms, which has the same
  limit law for sums of independent rows and a cost that does not grow with the rows) or
  :func:`resample_cells` (the same law, drawn directly as counts of the few
  distinct per-row outcomes, e.g. ``(true label, A's prediction, B's prediction)``: as fast for
  a million rows as for a hundred). The caller turns the resamples into metric values; this
  module knows no metric.

Differences are always ``B - A``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from mlops_actions.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "PairedDelta",
    "bootstrap_delta",
    "delong",
    "mcnemar",
    "resample_cells",
    "resample_sums",
    "resample_weights",
]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
_CHUNK_ELEMENTS = 1 << 22  # row weights per chunk (32 MiB of int64)
MAX_GROUPS = 5_000  # above this many rows, sums are bootstrapped over random buckets of rows
MAX_UNDEFINED_SHARE = 0.05  # more resamples than this with an undefined metric: no interval

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PairedDelta:
    """``B - A`` on the same rows, with its interval and p-value (None where undefined)."""

    estimate: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    confidence: float
    n: int  # paired rows
    method: str
    note: str | None = None  # why the interval or p-value is missing

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": _num(self.estimate),
                "ci": None if self.ci is None else [_num(self.ci[0]), _num(self.ci[1])],
                "p_value": _num(self.p_value), "confidence": self.confidence, "n": self.n,
                "method": self.method, "note": self.note}


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence} is not in (0, 1)", hint="use e.g. 0.95")


def _as_bool(name: str, values: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    arr = np.asarray(values)
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ConfigError(f"{name}: paired outcomes must be 0/1 or booleans",
                              hint="pass 1 where the model was right on the row")
        arr = arr.astype(bool)
    return arr.reshape(-1)


def mcnemar(correct_a: npt.ArrayLike, correct_b: npt.ArrayLike, *, confidence: float = DEFAULT_CONFIDENCE,
            mid_p: bool = True) -> PairedDelta:
    """The difference of paired proportions ``mean(B) - mean(A)`` with McNemar's p-value and
    the Agresti-Min interval (see the module docstring)."""
    _check_confidence(confidence)
    a, b = _as_bool("correct_a", correct_a), _as_bool("correct_b", correct_b)
    if a.shape != b.shape:
        raise ConfigError(f"paired outcomes differ in length: {a.size} vs {b.size}",
                          hint="score both models on the same rows")
    n = int(a.size)
    kind = "mid-p" if mid_p else "exact"
    method = (f"McNemar {kind} test on the discordant rows; Agresti-Min {confidence:.0%} CI of the "
              "paired difference")
    if n == 0:
        return PairedDelta(None, None, None, confidence, 0, method, note="no rows")
    only_a = int((a & ~b).sum())  # A right, B wrong
    only_b = int((b & ~a).sum())  # B right, A wrong
    discordant = only_a + only_b
    estimate = (only_b - only_a) / n
    small = min(only_a, only_b)
    if discordant:
        cdf = float(stats.binom.cdf(small, discordant, 0.5))
        pmf = float(stats.binom.pmf(small, discordant, 0.5)) if mid_p else 0.0
        p = min(1.0, 2.0 * cdf - pmf)
    else:  # the models agree on every row: no evidence of a difference
        p = 1.0
    # Agresti-Min: 1/2 added to each of the four cells
    n_adj = n + 2.0
    a_adj, b_adj = only_a + 0.5, only_b + 0.5
    centre = (b_adj - a_adj) / n_adj
    var = ((a_adj + b_adj) - (b_adj - a_adj) ** 2 / n_adj) / n_adj**2
    half = float(stats.norm.isf((1 - confidence) / 2)) * math.sqrt(max(var, 0.0))
    ci = (max(-1.0, centre - half), min(1.0, centre + half))
    return PairedDelta(estimate, ci, p, confidence, n, method)


def resample_weights(n: int, resamples: int = DEFAULT_RESAMPLES, *,
                     seed: int | tuple[int, ...] = DEFAULT_SEED,
                     chunk_elements: int = _CHUNK_ELEMENTS) -> Iterator[IntArray]:
    """Bootstrap resamples of ``n`` rows, as chunks of shape ``(c, n)``: how often each row was
    drawn (each resample draws ``n`` rows with replacement). Deterministic for a seed."""
    if n < 1 or resamples < 1:
        raise ConfigError(f"bootstrap of {n} rows x {resamples} resamples", hint="need >= 1 of each")
    rng = np.random.default_rng(seed)
    per_chunk = max(1, min(resamples, chunk_elements // n))
    done = 0
    while done < resamples:
        c = min(per_chunk, resamples - done)
        idx = rng.integers(0, n, size=(c, n))
        flat = (np.arange(c, dtype=np.int64)[:, None] * n + idx).ravel()
        yield np.bincount(flat, minlength=c * n).reshape(c, n)
        done += c


def resample_cells(cells: npt.ArrayLike, resamples: int = DEFAULT_RESAMPLES, *,
                   seed: int | tuple[int, ...] = DEFAULT_SEED) -> tuple[IntArray, IntArray]:
    """Bootstrap resamples of rows summarised by a per-row category (``cells``, any integers):
    returns the distinct categories and their counts in each resample, shape
    ``(resamples, categories)``. Resampling ``n`` rows with replacement draws these counts from
    the multinomial with the observed shares, so this is the row bootstrap, at a cost that does
    not grow with ``n``."""
    if resamples < 1:
        raise ConfigError(f"{resamples} bootstrap resamples", hint="use e.g. 2000")
    values, counts = np.unique(np.asarray(cells).reshape(-1), return_counts=True)
    n = int(counts.sum())
    if n == 0:
        raise ConfigError("bootstrap of 0 rows", hint="need at least one row")
    rng = np.random.default_rng(seed)
    return values.astype(np.int64), rng.multinomial(n, counts / n, size=resamples).astype(np.int64)


def bootstrap_delta(estimate_a: float | None, estimate_b: float | None, replicates_a: npt.ArrayLike,
                    replicates_b: npt.ArrayLike, *, n: int, confidence: float = DEFAULT_CONFIDENCE,
                    method: str = "paired bootstrap") -> PairedDelta:
    """``B - A`` from the metric on all rows (``estimate_*``) and on each paired resample
    (``replicates_*``; NaN where the metric is undefined in a resample): percentile interval and
    its dual p-value ``min(1, 2 * min(share <= 0, share >= 0))`` (with the +1 correction of
    Davison & Hinkley so it is never 0)."""
    _check_confidence(confidence)
    full = f"{method}: percentile {confidence:.0%} CI of B - A, p-value by inverting it"
    if estimate_a is None or estimate_b is None \
            or not (math.isfinite(estimate_a) and math.isfinite(estimate_b)):
        return PairedDelta(None, None, None, confidence, n, full, note="metric undefined on these rows")
    estimate = estimate_b - estimate_a
    d = np.asarray(replicates_b, dtype=float) - np.asarray(replicates_a, dtype=float)
    total = d.size
    d = d[np.isfinite(d)]
    undefined = 1 - d.size / total if total else 1.0
    if total == 0 or undefined > MAX_UNDEFINED_SHARE:
        return PairedDelta(estimate, None, None, confidence, n, full,
                           note=f"metric undefined in {undefined:.0%} of resamples (too few rows of a class)")
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(d, [tail, 1 - tail])
    if np.all(d == d[0]):  # every resample gives the same difference: no variation to test
        return PairedDelta(estimate, (float(lo), float(hi)), None, confidence, n, full,
                           note="the difference is the same in every resample")
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    p = min(1.0, 2 * min(below, above))
    return PairedDelta(estimate, (float(lo), float(hi)), p, confidence, n, full)


def resample_sums(columns: npt.ArrayLike, resamples: int = DEFAULT_RESAMPLES, *,
                  seed: int | tuple[int, ...] = DEFAULT_SEED, max_groups: int = MAX_GROUPS) -> FloatArray:
    """Bootstrap resamples of the column sums of per-row values ``columns`` (rows x m): shape
    ``(resamples, m + 1)``, the last column counting the rows drawn. Up to ``max_groups`` rows
    the rows themselves are resampled; above it, rows are summed into ``max_groups`` random
    buckets (seeded) and the buckets are resampled (see the module docstring)."""
    cols = np.asarray(columns, dtype=float)
    if cols.ndim == 1:
        cols = cols[:, None]
    n = cols.shape[0]
    cols = np.column_stack([cols, np.ones(n)])
    if n > max_groups:
        bucket = np.random.default_rng(seed).permutation(n) % max_groups
        grouped = np.zeros((max_groups, cols.shape[1]))
        np.add.at(grouped, bucket, cols)
        cols = grouped
    out = [w.astype(float) @ cols for w in resample_weights(cols.shape[0], resamples, seed=seed)]
    return np.concatenate(out)


def _midrank(x: FloatArray) -> FloatArray:
    return np.asarray(stats.rankdata(x), dtype=float)


def delong(positive: npt.ArrayLike, score_a: npt.ArrayLike, score_b: npt.ArrayLike, *,
           confidence: float = DEFAULT_CONFIDENCE) -> PairedDelta:
    """``AUC(B) - AUC(A)`` on the same rows with DeLong's variance of the paired difference
    (see the module docstring); NaN-free: None where a class is missing or the variance is 0."""
    _check_confidence(confidence)
    pos = _as_bool("positive", positive)
    sa, sb = np.asarray(score_a, dtype=float).reshape(-1), np.asarray(score_b, dtype=float).reshape(-1)
    if not pos.size == sa.size == sb.size:
        raise ConfigError(f"DeLong: {pos.size} labels, {sa.size} and {sb.size} scores",
                          hint="score both models on the same rows")
    method = f"DeLong test of paired ROC AUCs; {confidence:.0%} normal CI"
    m, n = int(pos.sum()), int((~pos).sum())
    if m == 0 or n == 0:
        return PairedDelta(None, None, None, confidence, int(pos.size), method,
                           note="ROC AUC needs both classes")
    aucs, v01, v10 = [], [], []
    for s in (sa, sb):
        x, y = s[pos], s[~pos]
        tx, ty, tz = _midrank(x), _midrank(y), _midrank(np.concatenate([x, y]))
        aucs.append(float((tz[:m].sum() / m - (m + 1) / 2) / n))
        v01.append((tz[:m] - tx) / n)  # per positive: share of negatives it outranks
        v10.append(1.0 - (tz[m:] - ty) / m)  # per negative: share of positives that outrank it
    estimate = aucs[1] - aucs[0]
    sx = np.cov(np.vstack(v01)) if m > 1 else np.zeros((2, 2))
    sy = np.cov(np.vstack(v10)) if n > 1 else np.zeros((2, 2))
    cov = sx / m + sy / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if not var > 1e-15:
        return PairedDelta(estimate, None, None, confidence, int(pos.size), method,
                           note="the AUC difference has no variance (identical rankings)")
    se = math.sqrt(var)
    half = float(stats.norm.isf((1 - confidence) / 2)) * se
    p = float(2 * stats.norm.sf(abs(estimate) / se))
    return PairedDelta(estimate, (max(-1.0, estimate - half), min(1.0, estimate + half)), p, confidence,
                       int(pos.size), method)
