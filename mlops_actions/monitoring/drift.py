"""Data drift per feature against a reference, Evidently-compatible by default.

Method per column (``method="auto"``, Evidently 0.7's ``_get_default_stattest``),
``n`` = non-missing reference values, ``k`` = distinct values in reference and
current together:

===============  =========================  ==============================
column kind      n <= 1000                  n > 1000
===============  =========================  ==============================
numeric, k > 5   KS, drift when p <= 0.05   Wasserstein / std(ref) >= 0.1
numeric, k <= 5  chi-square (k > 2) or Z    Jensen-Shannon >= 0.1
categorical      chi-square (k > 2) or Z    Jensen-Shannon >= 0.1
===============  =========================  ==============================

Chi-square and Z decide at p < 0.05. The dataset drifts when the share of
drifted columns is >= ``drift_share`` (0.5).

Where we differ from Evidently on purpose (docs/monitoring.md says why):

* Jensen-Shannon distance in base 2, so it lies in [0, 1] (Evidently uses the
  natural log: same ranking, values 1/sqrt(ln 2) = 1.2x smaller).
* Chi-square is a 2 x k contingency test (reference vs current) with categories
  whose expected count is < 5 merged into one, not a goodness-of-fit test of
  current counts against reference proportions that breaks on unseen categories.
* PSI on reference-quantile bins is reported beside every column.
* Optional Bonferroni or Benjamini-Hochberg correction of the p-values.
* Missing share and unseen categories are data-quality checks of their own.
* One bad column gets an ``error`` verdict; the others are still tested.

``DriftOptions(compat="evidently")`` (``drift --compat evidently``) drops the
first two: every per-column score is Evidently 0.7's, to 1e-9 (tested against
Evidently itself), so a number can be checked against an Evidently report.
Text columns are the exception: Evidently trains a classifier on them; here
they are tested through their descriptors either way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlops_actions.monitoring.profile import (
    ColumnProfile,
    ReferenceProfile,
    category_counts,
    numeric_values,
)
from mlops_actions.monitoring.verdict import Verdict

if TYPE_CHECKING:  # pandas and scipy.stats load on first use: the file-based path
    import pandas as pd  # (detect_drift_files) needs neither for large references

__all__ = [
    "COMPAT",
    "METHODS",
    "ColumnDrift",
    "CurrentColumn",
    "DriftOptions",
    "DriftReport",
    "choose_method",
    "compare_column",
    "decide_report",
    "detect_drift",
    "detect_prediction_drift",
    "sorted_quantiles",
    "wasserstein_sorted",
]

Method = Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"]
METHODS: tuple[Method, ...] = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
DEFAULT_THRESHOLD = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1,
                     "jensenshannon": 0.1, "psi": 0.1}
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
COMPAT = ("none", "evidently")


@dataclass(frozen=True)
class DriftOptions:
    """What to compute (config apart from calculation); defaults are Evidently's."""

    method: str = "auto"
    threshold: float | None = None
    drift_share: float = 0.5
    correction: Literal["none", "bonferroni", "benjamini_hochberg"] = "none"
    features: tuple[str, ...] | None = None
    js_base: float = 2.0  # Evidently: e
    chisquare: Literal["contingency", "evidently"] = "contingency"
    min_expected: float = 5.0  # chi-square: merge categories expected less often than this
    psi_bins: int = 10
    workers: int = 0  # threads; 0 = number of CPUs
    #: "evidently": every per-column score as Evidently 0.7 computes it (Jensen-Shannon in natural
    #: log, goodness-of-fit chi-square, PSI with its zero filling); sets js_base and chisquare
    compat: Literal["none", "evidently"] = "none"

    def __post_init__(self) -> None:
        if self.compat not in COMPAT:
            raise ValueError(f"compat {self.compat!r} is not one of {', '.join(COMPAT)}")
        if self.compat == "evidently":  # frozen: set through object.__setattr__
            object.__setattr__(self, "js_base", math.e)
            object.__setattr__(self, "chisquare", "evidently")

    @classmethod
    def from_spec(cls, spec: Any) -> DriftOptions:
        """From ``model.yaml``'s ``monitoring.drift`` (:class:`~mlops_actions.config.specs.DriftSpec`)."""
        return cls(method=spec.method, threshold=spec.threshold, drift_share=spec.drift_share,
                   correction=spec.correction,
                   features=tuple(spec.features) if spec.features is not None else None)


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    method: str  # "" when no test ran
    statistic: float | None  # p-value or distance
    threshold: float | None
    drifted: bool | None  # None: not tested
    verdict: Verdict
    p_adjusted: float | None = None
    psi: float | None = None
    n_reference: int = 0
    n_current: int = 0
    missing_share_reference: float = 0.0
    missing_share_current: float = 0.0
    unseen_categories: tuple[str, ...] = ()
    unseen_share: float = 0.0
    out_of_range_share: float = 0.0
    outlier_share_reference: float = 0.0  # beyond reference Q1 - 3 IQR .. Q3 + 3 IQR
    outlier_share_current: float = 0.0
    message: str = ""
    #: why an ERROR column could not be tested, for the quality checks (never its message text):
    #: "schema" (missing from the current data), "type" (values that are not of the column's kind)
    problem: str = ""
    descriptor: str = ""  # text columns: the descriptor whose test this is (length, oov_share)
    descriptors: tuple[ColumnDrift, ...] = ()  # text columns: every descriptor's test

    @property
    def is_p_value(self) -> bool:
        return self.method in P_VALUE_METHODS

    def severity(self) -> float:
        """How far past its threshold (> 1: drifted); for sorting worst first."""
        if self.statistic is None or self.threshold is None or not math.isfinite(self.statistic):
            return -1.0
        if self.is_p_value:
            p = self.p_adjusted if self.p_adjusted is not None else self.statistic
            return self.threshold / max(p, 1e-300)
        return self.statistic / self.threshold

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        d["unseen_categories"] = list(self.unseen_categories)
        d["descriptors"] = [x.to_dict() for x in self.descriptors]
        return d


@dataclass(frozen=True)
class DriftReport:
    columns: tuple[ColumnDrift, ...]
    drift_share: float  # the threshold
    n_reference_rows: int
    n_current_rows: int

    @property
    def tested(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted is not None]

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drifted]

    @property
    def share(self) -> float:
        tested = self.tested
        return len(self.drifted) / len(tested) if tested else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.tested) and self.share >= self.drift_share

    @property
    def verdict(self) -> Verdict:
        if self.dataset_drift:
            return Verdict.FAILED
        if not self.tested:
            errors = any(c.verdict is Verdict.ERROR for c in self.columns)
            return Verdict.ERROR if errors else Verdict.INCONCLUSIVE
        return Verdict.PASSED

    def worst_first(self) -> list[ColumnDrift]:
        return sorted(self.columns, key=lambda c: (c.verdict is not Verdict.ERROR, -c.severity()))

    def summary(self) -> str:
        if not self.columns:
            return "no columns to test"
        text = (f"{len(self.drifted)} of {len(self.tested)} column(s) drifted "
                f"(share {self.share:.2f}, dataset drift at >= {self.drift_share:.2f})")
        errors = [c.column for c in self.columns if c.verdict is Verdict.ERROR]
        if errors:
            text += f"; {len(errors)} column(s) could not be tested: {', '.join(errors)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "dataset_drift": self.dataset_drift, "share": self.share,
                "drift_share": self.drift_share, "n_drifted": len(self.drifted),
                "n_tested": len(self.tested), "n_reference_rows": self.n_reference_rows,
                "n_current_rows": self.n_current_rows,
                "columns": [c.to_dict() for c in self.worst_first()]}


# --------------------------------------------------------------------------- method choice


def choose_method(kind: str, n_reference: int, n_values: int) -> Method:
    """Evidently's default test for a column (see the module docstring)."""
    if n_reference <= 1000:
        if kind == "numeric" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


# --------------------------------------------------------------------------- the statistics


def wasserstein_sorted(ref: np.ndarray, cur: np.ndarray) -> float:
    """First Wasserstein distance of two sorted samples, equal to ``scipy.stats.wasserstein_distance``
    (to ~1e-12) in linear time: the integral over u in (0, 1] of |ref's quantile(u) - cur's
    quantile(u)|, on the merged grid of steps i/n and j/m. Integer arithmetic places every step
    (no sort, no search), so a million values per side take milliseconds."""
    n, m = len(ref), len(cur)
    if n == m:  # both quantile functions step at i/n: the mean gap of the order statistics
        return float(np.mean(np.abs(ref - cur)))
    if n == 0 or m == 0:
        raise ValueError("wasserstein needs values on both sides")
    i = np.arange(1, n + 1, dtype=np.int64)  # ref step i/n is i*m in units of 1/(n*m)
    j = np.arange(1, m + 1, dtype=np.int64)
    cur_before = (i * m - 1) // n  # cur steps strictly before ref step i (= cur's index there)
    ref_upto = np.minimum((j * n) // m, n - 1)  # ref steps at or before cur step j (ties: ref first)
    pos_ref = i - 1 + cur_before
    pos_cur = j - 1 + (j * n) // m
    steps = np.empty(n + m)  # exact in float64 below 2**53 (n * m: a billion rows a side)
    steps[pos_ref] = i * m
    steps[pos_cur] = j * n
    gaps = np.empty(n + m)
    gaps[pos_ref] = np.abs(ref - cur[cur_before])
    gaps[pos_cur] = np.abs(ref[ref_upto] - cur)
    gaps *= np.diff(steps, prepend=0.0)  # not np.dot: BLAS threads stall on a busy machine
    return float(np.sum(gaps) / (float(n) * float(m)))


def sorted_quantiles(values: np.ndarray, q: Any) -> np.ndarray:
    """``np.quantile(values, q)`` (linear method, bit for bit) of already sorted values, without
    the partition of a copy that numpy does: the two neighbours of each virtual index, lerped as
    numpy's ``_lerp``."""
    q = np.asarray(q, dtype=np.float64)
    n = len(values)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    gamma = virtual - prev
    lo = np.clip(prev.astype(np.int64), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    a, b = values[lo], values[hi]
    diff_b_a = b - a
    out: np.ndarray = np.add(a, diff_b_a * gamma)
    np.subtract(b, diff_b_a * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _js(p: np.ndarray, q: np.ndarray, base: float) -> float:
    """``scipy.spatial.distance.jensenshannon(p, q, base)`` in numpy (scipy.spatial alone takes
    about a second to import, longer than the tests it serves)."""
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)  # scipy.special.rel_entr: 0 where p == 0
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    js = np.sum(left) + np.sum(right)
    js /= np.log(base)
    return float(np.sqrt(js / 2.0))


def _z_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-proportion Z-test on the first (sorted) label, as Evidently; p=1 when nothing varies.
    ``erfc(|z| / sqrt 2)`` is Evidently's ``2 * (1 - norm.cdf(|z|))``, without scipy.stats."""
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1 = 1 - ref_counts[0] / n1  # share of values != the first label
    p2 = 1 - cur_counts[0] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0:
        return 1.0
    z = (p1 - p2) / math.sqrt(var)
    return float(math.erfc(abs(z) / math.sqrt(2)))


def _chisquare_contingency(ref_counts: np.ndarray, cur_counts: np.ndarray, min_expected: float) -> float:
    """2 x k independence test; categories expected < ``min_expected`` times merged into one."""
    from scipy import stats

    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    rare = (expected < min_expected).any(axis=0)
    if rare.any():
        merged = table[:, rare].sum(axis=1, keepdims=True)
        table = np.hstack([table[:, ~rare], merged]) if merged.sum() > 0 else table[:, ~rare]
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False)[1])


def _chisquare_evidently(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's goodness-of-fit form, for comparison (breaks when a label is new)."""
    from scipy import stats

    f_exp = ref_counts * (cur_counts.sum() / ref_counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur_counts, f_exp)[1])


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    r = np.where(ref_share == 0, 1e-4, ref_share)
    c = np.where(cur_share == 0, 1e-4, cur_share)
    return float(np.sum((r - c) * np.log(r / c)))


def _fill_zeroes_evidently(share: np.ndarray) -> np.ndarray:
    """Evidently's ``get_binned_data(feel_zeroes=True)``: an empty bin gets the smallest non-empty
    share / 1e6 when that share is <= 1e-4, else 1e-4."""
    nonzero = share[share != 0]
    if not len(nonzero) or len(nonzero) == len(share):
        return share
    low = nonzero.min()
    return np.where(share == 0, low / 10**6 if low <= 0.0001 else 0.0001, share)


def _psi_evidently(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    r, c = _fill_zeroes_evidently(ref_share), _fill_zeroes_evidently(cur_share)
    return float(np.sum((r - c) * np.log(r / c)))


def _bins_psi(ref: np.ndarray, cur: np.ndarray, bins: int) -> float:
    """PSI on reference-quantile bins (both arrays sorted)."""
    edges = np.unique(sorted_quantiles(ref, np.linspace(0, 1, bins + 1))[1:-1])
    r = np.diff(np.concatenate(([0], np.searchsorted(ref, edges, "right"), [len(ref)]))) / len(ref)
    c = np.diff(np.concatenate(([0], np.searchsorted(cur, edges, "right"), [len(cur)]))) / len(cur)
    return _psi(r, c)


def _align(ref_labels: np.ndarray, ref_counts: np.ndarray, cur_labels: np.ndarray,
           cur_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of both over the sorted union of labels."""
    keys = np.union1d(ref_labels, cur_labels)
    r = np.zeros(len(keys), dtype=np.int64)
    c = np.zeros(len(keys), dtype=np.int64)
    r[np.searchsorted(keys, ref_labels)] = ref_counts
    c[np.searchsorted(keys, cur_labels)] = cur_counts
    return keys, r, c


# --------------------------------------------------------------------------- one column


@dataclass(frozen=True)
class CurrentColumn:
    """What the tests need of one current column, however it was read (pandas or Arrow).

    Numeric: ``values`` are the finite values (any order), ``n_missing`` the NaN/inf/null
    dropped. Categorical: ``values`` are the labels (:func:`~mlops_actions.monitoring.profile.
    sorted_label_counts`) and ``counts`` their counts. ``error`` says why the column cannot be read
    as the reference's kind."""

    n_total: int
    values: np.ndarray
    counts: np.ndarray | None = None
    n_missing: int = 0
    error: str | None = None

    @classmethod
    def from_series(cls, kind: str, col: pd.Series) -> CurrentColumn:
        if kind == "numeric":
            values, n_dropped, error = numeric_values(col)
            return cls(len(col), values, None, n_dropped, error)
        if kind == "text":
            texts = [v if isinstance(v, str) else None for v in col.tolist()]
            return cls(len(col), np.array(texts, dtype=object), None, sum(t is None for t in texts))
        labels, counts, n_missing = category_counts(col)
        return cls(len(col), labels, counts, n_missing)


def _column(prof: ColumnProfile, cur_col: pd.Series | None, options: DriftOptions) -> ColumnDrift:
    """One column from a pandas Series (None: absent from the current data)."""
    if cur_col is None or prof.error or prof.kind not in ("numeric", "categorical", "text"):
        return compare_column(prof, None if cur_col is None else CurrentColumn(len(cur_col), np.empty(0)),
                              options)
    return compare_column(prof, CurrentColumn.from_series(prof.kind, cur_col), options)


def compare_column(prof: ColumnProfile, current: CurrentColumn | None, options: DriftOptions) -> ColumnDrift:
    """The drift test of one column: the reference profile against the current column's values.
    Undecided (see :func:`_decide`): ``drifted`` is set once p-values are adjusted."""
    base = ColumnDrift(prof.name, prof.kind, "", None, None, None, Verdict.ERROR,
                       n_reference=prof.n, missing_share_reference=prof.missing_share)
    if current is None:
        return replace(base, problem="schema",
                       message="missing from the current data (schema change): the model gets "
                               "no value for it; check the feature pipeline")
    n_total = current.n_total
    if prof.error:  # "unknown": the reference's values are not of one kind a test can read
        return replace(base, message=prof.error, problem="type" if prof.kind == "unknown" else "")
    method: str = options.method
    if method != "auto" and method not in METHODS:
        return replace(base, message=f"unknown drift method {method!r}; valid: auto, {', '.join(METHODS)}")
    if prof.kind == "text":
        return _text_column(prof, current, options, base)
    if current.error:
        return replace(base, message=f"current data: {current.error}", problem="type")
    if prof.kind == "numeric":
        cur = np.sort(current.values)
        base = replace(base, n_current=len(cur),
                       missing_share_current=current.n_missing / n_total if n_total else 0.0)
        if not len(cur):
            return replace(base, verdict=Verdict.INCONCLUSIVE,
                           message="no non-missing value in the current data")
        ref = prof.values
        lo, hi = ref[0], ref[-1]
        out = int(np.searchsorted(cur, lo, "left") + len(cur) - np.searchsorted(cur, hi, "right"))
        q1, q3 = sorted_quantiles(ref, [0.25, 0.75])
        fences = np.array([q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)])
        r_out = np.searchsorted(ref, fences[0], "left") + len(ref) - np.searchsorted(ref, fences[1], "right")
        c_out = np.searchsorted(cur, fences[0], "left") + len(cur) - np.searchsorted(cur, fences[1], "right")
        base = replace(base, out_of_range_share=out / len(cur),
                       outlier_share_reference=float(r_out / len(ref)),
                       outlier_share_current=float(c_out / len(cur)),
                       psi=_bins_psi(ref, cur, options.psi_bins))
        ref_nunique = prof.nunique
        n_values = ref_nunique if ref_nunique > 5 else len(np.union1d(np.unique(ref), np.unique(cur)))
        if method == "auto":
            method = choose_method("numeric", prof.n, n_values)
        if method in ("ks",):
            from scipy import stats

            stat = float(stats.ks_2samp(ref, cur)[1])
        elif method == "wasserstein":
            stat = wasserstein_sorted(ref, cur) / max(float(np.std(ref)), 0.001)
        elif method in ("chisquare", "z") or ref_nunique <= 20:  # per value, as Evidently
            rl, rc = np.unique(ref, return_counts=True)
            cl, cc = np.unique(cur, return_counts=True)
            _, r, c = _align(rl, rc, cl, cc)
            stat = _discrete(method, r, c, options)
        else:  # jensenshannon / psi on many values: Evidently's Sturges histogram over both
            edges = np.histogram_bin_edges(np.concatenate((ref, cur)), bins="sturges")
            r = np.histogram(ref, edges)[0]
            c = np.histogram(cur, edges)[0]
            stat = _discrete(method, r, c, options)
    else:  # categorical
        cl = current.values
        cc = current.counts if current.counts is not None else np.zeros(len(cl), dtype=np.int64)
        base = replace(base, n_current=int(cc.sum()),
                       missing_share_current=current.n_missing / n_total if n_total else 0.0)
        if not cc.sum():
            return replace(base, verdict=Verdict.INCONCLUSIVE,
                           message="no non-missing value in the current data")
        if method in NUMERIC_ONLY:
            return replace(base, message=f"method {method!r} needs a numeric column; this one is "
                                         "categorical (use jensenshannon, chisquare, z or psi)")
        keys, r, c = _align(prof.values, prof.counts if prof.counts is not None else np.ones(0), cl, cc)
        unseen = (r == 0) & (c > 0)
        base = replace(base, unseen_categories=tuple(str(k) for k in keys[unseen][:20]),
                       unseen_share=float(c[unseen].sum() / c.sum()),
                       psi=_psi(r / r.sum(), c / c.sum()))
        if method == "auto":
            method = choose_method("categorical", prof.n, len(keys))
        stat = _discrete(method, r, c, options)
    threshold = options.threshold if options.threshold is not None else DEFAULT_THRESHOLD[method]
    return replace(base, method=method, statistic=stat, threshold=threshold, verdict=Verdict.PASSED)


def _text_column(prof: ColumnProfile, current: CurrentColumn, options: DriftOptions,
                 base: ColumnDrift) -> ColumnDrift:
    """A text column through its descriptors (:mod:`mlops_actions.monitoring.text`), each tested
    as a numeric feature; the column carries the most severe descriptor's test."""
    from mlops_actions.monitoring.profile import numeric_profile
    from mlops_actions.monitoring.text import descriptors

    if not prof.descriptors or prof.counts is None:
        return replace(base, verdict=Verdict.INCONCLUSIVE,
                       message="free text (more than half the values distinct) profiled without text "
                               "descriptors: recompute the reference profile to test it")
    n_total = current.n_total
    base = replace(base, n_current=n_total - current.n_missing,
                   missing_share_current=current.n_missing / n_total if n_total else 0.0)
    if n_total == current.n_missing:
        return replace(base, verdict=Verdict.INCONCLUSIVE, message="no non-missing value in the current data")
    cur = descriptors(current.values.tolist(), prof.values, prof.counts)
    parts = []
    for name, ref_values in prof.descriptors.items():
        values = cur[name]
        finite = values[np.isfinite(values)]
        tested = compare_column(numeric_profile(f"{prof.name}.{name}", ref_values, 0),
                                CurrentColumn(len(values), finite, None, len(values) - len(finite)), options)
        parts.append(_decide(replace(tested, descriptor=name), None))
    decided = [d for d in parts if d.drifted is not None]
    if not decided:
        return replace(base, verdict=Verdict.INCONCLUSIVE, descriptors=tuple(parts),
                       message="; ".join(f"{d.descriptor}: {d.message}" for d in parts))
    top = max(decided, key=ColumnDrift.severity)
    return replace(base, method=top.method, statistic=top.statistic, threshold=top.threshold,
                   verdict=Verdict.PASSED, psi=top.psi, descriptor=top.descriptor, descriptors=tuple(parts))


def _discrete(method: str, r: np.ndarray, c: np.ndarray, options: DriftOptions) -> float:
    if method == "jensenshannon":
        return _js(r / r.sum(), c / c.sum(), options.js_base)
    if method == "psi":
        if options.compat == "evidently":
            return _psi_evidently(r / r.sum(), c / c.sum())
        return _psi(r / r.sum(), c / c.sum())
    if method == "z":
        if len(r) > 2:
            raise ValueError(f"the Z-test compares two categories; this column has {len(r)}")
        if len(r) == 1:
            return 1.0
        return _z_test(r, c)
    if options.chisquare == "evidently":
        return _chisquare_evidently(r, c)
    return _chisquare_contingency(r, c, options.min_expected)


def _decide(col: ColumnDrift, p_adjusted: float | None) -> ColumnDrift:
    if col.statistic is None or col.threshold is None:
        return col
    value = p_adjusted if p_adjusted is not None else col.statistic
    if not math.isfinite(value):
        return replace(col, drifted=None, verdict=Verdict.ERROR, p_adjusted=p_adjusted,
                       message=f"{col.method} gave {value}; too few distinct values to test")
    if col.method == "ks":
        drifted = value <= col.threshold
    elif col.is_p_value:
        drifted = value < col.threshold
    else:
        drifted = value >= col.threshold
    word = "p" if col.is_p_value else "distance"
    op = ("<=" if col.method == "ks" else "<") if col.is_p_value else ">="
    shown = f"{word} {value:.4g}" + (" (adjusted)" if p_adjusted is not None else "")
    message = (f"{col.method} {shown} {op} {col.threshold:g}: drifted" if drifted else
               f"{col.method} {shown}: no drift (drift at {word} {op} {col.threshold:g})")
    if col.descriptor:  # a text column: which descriptor decided, and the others
        others = [f"{d.descriptor} {d.method} {d.statistic:.4g}" for d in col.descriptors
                  if d.descriptor != col.descriptor and d.statistic is not None]
        message = f"text {col.descriptor}: {message}" + (f" (also {', '.join(others)})" if others else "")
    return replace(col, drifted=bool(drifted), p_adjusted=p_adjusted, message=message,
                   verdict=Verdict.FAILED if drifted else Verdict.PASSED)


def _adjust(p: np.ndarray, how: str) -> np.ndarray:
    m = len(p)
    if how == "bonferroni":
        capped: np.ndarray = np.minimum(p * m, 1.0)
        return capped
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out


# --------------------------------------------------------------------------- the entry point


def detect_drift(reference: ReferenceProfile | pd.DataFrame, current: pd.DataFrame | Mapping[str, Any],
                 options: DriftOptions | None = None) -> DriftReport:
    """Drift of every reference feature (or ``options.features``) in ``current``.

    ``reference`` is a profile (computed once, see :class:`ReferenceProfile`) or a
    DataFrame profiled on the spot. Never raises for a bad column: that column
    gets an ``error`` verdict and a message; the others are tested.
    """
    import pandas as pd

    options = options or DriftOptions()
    if not isinstance(current, pd.DataFrame):
        current = pd.DataFrame(current)
    features = list(options.features) if options.features is not None else None
    if isinstance(reference, pd.DataFrame):
        reference = ReferenceProfile.from_frame(reference, features=features,
                                                workers=options.workers or os.cpu_count() or 1)
    names = features if features is not None else list(reference.columns)
    cur_df: pd.DataFrame = current

    def one(name: str) -> ColumnDrift:
        prof = reference.columns.get(name)
        if prof is None:
            return ColumnDrift(name, "unknown", "", None, None, None, Verdict.ERROR,
                               message="not in the reference data; recompute the reference profile")
        try:
            return _column(prof, cur_df[name] if name in cur_df.columns else None, options)
        except Exception as exc:  # one bad column never stops the others
            return ColumnDrift(name, prof.kind, "", None, None, None, Verdict.ERROR,
                               n_reference=prof.n, message=f"{type(exc).__name__}: {exc}")

    workers = options.workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        cols = list(pool.map(one, names))
    return decide_report(cols, options, reference.n_rows, len(current))


def decide_report(cols: list[ColumnDrift], options: DriftOptions, n_reference_rows: int,
                  n_current_rows: int) -> DriftReport:
    """Adjust the p-values (``options.correction``), decide every column, and make the report."""
    p_idx = [i for i, c in enumerate(cols) if c.is_p_value and c.statistic is not None
             and math.isfinite(c.statistic)]
    adjusted: dict[int, float] = {}
    if options.correction != "none" and p_idx:
        adj = _adjust(np.array([cols[i].statistic for i in p_idx], dtype=float), options.correction)
        adjusted = dict(zip(p_idx, adj.tolist(), strict=True))
    decided = tuple(_decide(c, adjusted.get(i)) for i, c in enumerate(cols))
    return DriftReport(decided, options.drift_share, n_reference_rows, n_current_rows)



def detect_prediction_drift(reference: Any, current: Any, *, threshold: float | None = None,
                            method: str = "auto", js_base: float = 2.0) -> ColumnDrift:
    """Drift of the model's output distribution: the same tests as a feature named ``prediction``.

    ``threshold`` applies to distance methods (Wasserstein, Jensen-Shannon, PSI);
    p-value tests chosen for small baselines keep p < 0.05.

    ``reference`` and ``current`` are sequences of predictions (labels, scores,
    or logged outputs such as ``[p0, p1]`` or ``{"prediction": x}``).
    """
    import pandas as pd

    from mlops_actions.monitoring.performance import prediction_value

    def frame(values: Any) -> pd.DataFrame:
        vals = [prediction_value(v) for v in values]
        col = pd.Series(vals, dtype=object)
        non_null = col.dropna()
        if len(non_null) and all(isinstance(v, int | float | np.number) and not isinstance(v, bool)
                                 for v in non_null):
            col = pd.to_numeric(col)
        return pd.DataFrame({"prediction": col})

    ref_df, cur_df = frame(reference), frame(current)
    if ref_df.empty:
        return ColumnDrift("prediction", "unknown", "", None, None, None, Verdict.INCONCLUSIVE,
                           message="no baseline predictions; set one with set_prediction_baseline")
    if cur_df.empty:
        return ColumnDrift("prediction", "unknown", "", None, None, None, Verdict.INCONCLUSIVE,
                           message="no current predictions in the window")
    # the kind comes from the reference (a label column of few integers is categorical)
    report = detect_drift(ref_df, cur_df, DriftOptions(method=method, js_base=js_base, workers=1))
    col = report.columns[0]
    if threshold is not None and col.statistic is not None and not col.is_p_value:
        # the threshold is a distance; p-value tests (small baselines) keep their 0.05
        col = _decide(replace(col, threshold=threshold), None)
    return col
