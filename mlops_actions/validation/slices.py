"""Dataset slices as boolean masks, from declared conditions only.

A slice is a list of :class:`~mlops_actions.config.specs.Condition` combined
with AND. Each condition becomes a vectorised numpy comparison on one column;
nothing from model.yaml is ever evaluated as code (no ``eval``, no
``DataFrame.query``): a model.yaml comes from an untrusted PR branch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlops_actions.config.specs import Condition, SliceSpec
from mlops_actions.errors import Location, ValidationError

__all__ = ["condition_mask", "describe", "slice_mask"]


def describe(conditions: Sequence[Condition]) -> str:
    """``age >= 65 and region in [eu, us]``, for messages and reports."""
    parts = []
    for c in conditions:
        if c.op in ("is null", "is not null"):
            parts.append(f"{c.column} {c.op}")
        elif isinstance(c.value, list):
            parts.append(f"{c.column} {c.op} [{', '.join(map(str, c.value))}]")
        else:
            parts.append(f"{c.column} {c.op} {c.value}")
    return " and ".join(parts)


def _comparable(series: pd.Series, value: object, cond: Condition,
                location: Location | None) -> object:
    """Check that ``value`` can be compared with the column's values."""
    numeric_col = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if numeric_col and (isinstance(value, (str, bool))):
        raise ValidationError(
            f"slice condition `{describe([cond])}` compares numeric column {cond.column!r} "
            f"with {value!r} ({type(value).__name__})",
            hint="write the value as a number, or name a text column", location=location)
    if not numeric_col and cond.op in ("<", "<=", ">", ">=") and not isinstance(value, str) \
            and not pd.api.types.is_datetime64_any_dtype(series.dtype):
        raise ValidationError(
            f"slice condition `{describe([cond])}` orders column {cond.column!r} of type "
            f"{series.dtype} against the number {value!r}",
            hint="the column holds text: check the data (non-numeric values?) or compare with text",
            location=location)
    return value


def condition_mask(frame: pd.DataFrame, cond: Condition, *, location: Location | None = None) -> np.ndarray:
    """Rows of ``frame`` where ``cond`` holds, as a boolean array. Null never satisfies a comparison."""
    if cond.column not in frame.columns:
        raise ValidationError(
            f"slice condition names unknown column {cond.column!r}",
            hint=f"columns of the test data: {', '.join(map(str, frame.columns))}", location=location)
    series = frame[cond.column]
    notnull: np.ndarray = series.notna().to_numpy()
    if cond.op == "is null":
        return ~notnull
    if cond.op == "is not null":
        return notnull
    if cond.op in ("in", "not in"):
        assert isinstance(cond.value, list)  # guaranteed by the spec validator
        values = [_comparable(series, v, cond, location) for v in cond.value]
        member: np.ndarray = series.isin(values).to_numpy()
        inside: np.ndarray = (member if cond.op == "in" else ~member) & notnull
        return inside
    value = _comparable(series, cond.value, cond, location)
    arr = series.to_numpy()
    try:
        with np.errstate(invalid="ignore"):
            if cond.op == "==":
                out = arr == value
            elif cond.op == "!=":
                out = arr != value
            elif cond.op == "<":
                out = arr < value
            elif cond.op == "<=":
                out = arr <= value
            elif cond.op == ">":
                out = arr > value
            else:  # ">="
                out = arr >= value
    except TypeError as exc:
        raise ValidationError(
            f"slice condition `{describe([cond])}` cannot compare column {cond.column!r} "
            f"({series.dtype}) with {value!r}: {exc}",
            hint="check the column's values (mixed types?) and the condition's value", location=location,
        ) from None
    mask: np.ndarray = np.asarray(out, dtype=bool) & notnull
    return mask


def slice_mask(frame: pd.DataFrame, spec: SliceSpec, *,
               locations: Sequence[Location | None] | None = None) -> np.ndarray:
    """AND of the slice's conditions."""
    mask = np.ones(len(frame), dtype=bool)
    for i, cond in enumerate(spec.where):
        loc = locations[i] if locations is not None and i < len(locations) else None
        mask &= condition_mask(frame, cond, location=loc)
    return mask
