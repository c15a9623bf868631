"""Data quality of current data against a reference profile.

Checks, each a finding with a four-valued verdict:

* schema: a reference feature missing from the current data (failed), a new
  column (passed, noted), values of the wrong type (error);
* missing values: the current missing share exceeds the reference's by more
  than ``max_missing_increase`` (absolute), or a column is all missing;
* out of range: more than ``max_out_of_range`` of current values outside the
  reference [min, max];
* outliers: the share beyond the reference Q1 - 3 IQR .. Q3 + 3 IQR fences
  exceeds the reference's own share by more than ``max_outlier_increase``, and
  significantly (Fisher's exact test of the two counts, ``outlier_alpha``);
* unseen categories: more than ``max_unseen`` of current values in categories
  the reference never had.

The numbers come from :func:`~mlops_actions.monitoring.drift.detect_drift`'s
per-column pass, so quality costs nothing extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_actions.monitoring.drift import DriftReport
from mlops_actions.monitoring.verdict import Verdict, worst

__all__ = ["QualityFinding", "QualityOptions", "QualityReport", "check_quality"]


@dataclass(frozen=True)
class QualityOptions:
    max_missing_increase: float = 0.05
    max_out_of_range: float = 0.05
    max_outlier_increase: float = 0.01
    outlier_alpha: float = 0.001  # the increase must also be significant (Fisher exact, one-sided)
    max_unseen: float = 0.01


@dataclass(frozen=True)
class QualityFinding:
    column: str
    check: str  # schema, missing, out_of_range, outliers, unseen_categories, type
    verdict: Verdict
    value: float | None
    limit: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "verdict": self.verdict.value,
                "value": self.value, "limit": self.limit, "message": self.message}


@dataclass(frozen=True)
class QualityReport:
    findings: tuple[QualityFinding, ...]
    n_rows: int

    @property
    def problems(self) -> list[QualityFinding]:
        return [f for f in self.findings if f.verdict is not Verdict.PASSED]

    @property
    def verdict(self) -> Verdict:
        if self.n_rows == 0:
            return Verdict.INCONCLUSIVE
        return worst(f.verdict for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "n_rows": self.n_rows,
                "findings": [f.to_dict() for f in self.findings]}


def _significant_increase(share: float, n: int, reference_share: float, n_reference: int,
                          alpha: float) -> bool:
    """One-sided test: is ``share`` of ``n`` rows more than the reference's share?

    Without it, one outlier in a window of 40 rows (2.5%) against a reference with
    none fails the check: noise, not a data-quality problem. The reference's share is
    itself measured on a sample (3 outliers in 398 training rows is a rough 0.75%), so
    the two counts are compared with Fisher's exact test; a binomial test against the
    reference share taken as exact called 6 in 143 healthy test rows significant.
    Without the reference's size (``n_reference`` 0) the binomial test is the fallback.
    """
    from scipy.stats import binomtest, fisher_exact

    if n <= 0:
        return False
    k = round(share * n)
    if n_reference > 0:
        k_ref = round(reference_share * n_reference)
        _, p_value = fisher_exact([[k, n - k], [k_ref, n_reference - k_ref]], alternative="greater")
        return bool(p_value < alpha)
    p = min(max(reference_share, 1e-3), 1.0)
    return bool(binomtest(k, n, p, alternative="greater").pvalue < alpha)


def check_quality(drift: DriftReport, current_columns: Sequence[str],
                  options: QualityOptions | None = None) -> QualityReport:
    """Quality findings from a drift pass over the same current data."""
    o = options or QualityOptions()
    out: list[QualityFinding] = []
    known = {c.column for c in drift.columns}
    for c in drift.columns:
        if c.verdict is Verdict.ERROR and c.problem == "schema":
            out.append(QualityFinding(c.column, "schema", Verdict.FAILED, None, None,
                                      f"{c.column}: {c.message}"))
            continue
        if c.verdict is Verdict.ERROR and c.problem == "type":
            out.append(QualityFinding(c.column, "type", Verdict.ERROR, None, None,
                                      f"{c.column}: {c.message}"))
            continue
        if c.n_current == 0 and drift.n_current_rows > 0 and c.missing_share_current >= 1.0:
            out.append(QualityFinding(c.column, "missing", Verdict.FAILED, 1.0, None,
                                      f"{c.column}: every current value is missing "
                                      f"(reference: {c.missing_share_reference:.1%})"))
            continue
        inc = c.missing_share_current - c.missing_share_reference
        if inc > o.max_missing_increase:
            out.append(QualityFinding(c.column, "missing", Verdict.FAILED, c.missing_share_current,
                                      c.missing_share_reference + o.max_missing_increase,
                                      f"{c.column}: {c.missing_share_current:.1%} missing vs "
                                      f"{c.missing_share_reference:.1%} in the reference (allowed +"
                                      f"{o.max_missing_increase:.0%})"))
        if c.kind == "numeric" and c.out_of_range_share > o.max_out_of_range:
            out.append(QualityFinding(c.column, "out_of_range", Verdict.FAILED, c.out_of_range_share,
                                      o.max_out_of_range,
                                      f"{c.column}: {c.out_of_range_share:.1%} of values outside the "
                                      f"reference range (allowed {o.max_out_of_range:.0%})"))
        extra_outliers = c.outlier_share_current - c.outlier_share_reference
        if c.kind == "numeric" and extra_outliers > o.max_outlier_increase \
                and _significant_increase(c.outlier_share_current, c.n_current,
                                          c.outlier_share_reference, c.n_reference, o.outlier_alpha):
            out.append(QualityFinding(c.column, "outliers", Verdict.FAILED, c.outlier_share_current,
                                      c.outlier_share_reference + o.max_outlier_increase,
                                      f"{c.column}: {c.outlier_share_current:.1%} outliers (beyond Q1-3IQR.."
                                      f"Q3+3IQR of the reference) vs {c.outlier_share_reference:.1%}"))
        if c.kind == "categorical" and c.unseen_share > o.max_unseen:
            shown = ", ".join(map(repr, c.unseen_categories[:5]))
            out.append(QualityFinding(c.column, "unseen_categories", Verdict.FAILED, c.unseen_share,
                                      o.max_unseen,
                                      f"{c.column}: {c.unseen_share:.1%} of values in categories the "
                                      f"reference never had ({shown})"))
    for name in current_columns:
        if name not in known:
            out.append(QualityFinding(str(name), "schema", Verdict.PASSED, None, None,
                                      f"{name}: new column, not in the reference (not monitored)"))
    if not any(f.verdict is not Verdict.PASSED for f in out):
        out.append(QualityFinding("*", "all", Verdict.PASSED, None, None,
                                  f"{len(known)} column(s): schema, missing values, ranges, outliers and "
                                  "categories as in the reference"))
    return QualityReport(tuple(out), drift.n_current_rows)
