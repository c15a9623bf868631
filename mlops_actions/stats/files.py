"""A variant's prediction log (CSV or Parquet, one row per served prediction) as :class:`Arm` values.

Columns: ``prediction``, ``label`` (empty until a late label arrives), ``latency_ms``,
``error`` (0/1), optionally ``timestamp`` (not used here). Only the columns the metric needs
must be present. Usable rows: accuracy counts the rows with both a prediction and a label
(``prediction == label``, numerically when both columns are numbers, as text otherwise);
error rate the rows with an ``error``; latency the rows with a ``latency_ms`` (failed
requests included: a variant that fails fast must not look fast). Every problem is a
:class:`ConfigError` naming the file and the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_actions.errors import ConfigError, ValidationError
from mlops_actions.stats.interface import Arm, Metric

__all__ = ["COLUMNS", "load_arms"]

COLUMNS: dict[Metric, tuple[str, ...]] = {
    Metric.ACCURACY: ("prediction", "label"),
    Metric.ERROR_RATE: ("error",),
    Metric.LATENCY_MS: ("latency_ms",),
}


def _numeric(path: Path, name: str, column: pa.ChunkedArray) -> np.ndarray:
    """The non-null values of a column as float64, or a ConfigError showing a bad value."""
    kept = pc.drop_null(column)
    if pa.types.is_null(kept.type):
        return np.empty(0)
    try:
        return np.asarray(pc.cast(kept, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        bad = next((v for v in kept.to_pylist() if not _is_number(v)), None)
        raise ConfigError(f"{path}: column {name!r} must be numeric; found {bad!r}",
                          hint=f"fix or drop the rows whose {name} is not a number, then rerun") from exc


def _is_number(v: object) -> bool:
    try:
        float(str(v))
    except ValueError:
        return False
    return True


def _accuracy(prediction: pa.ChunkedArray, label: pa.ChunkedArray) -> np.ndarray:
    labelled = pc.and_(pc.is_valid(prediction), pc.is_valid(label))
    pred, lab = pc.filter(prediction, labelled), pc.filter(label, labelled)
    numeric = all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) or pa.types.is_boolean(c.type)
                  for c in (pred, lab))
    if not numeric:
        pred, lab = pc.cast(pred, pa.string()), pc.cast(lab, pa.string())
    else:
        pred, lab = pc.cast(pred, pa.float64()), pc.cast(lab, pa.float64())
    return np.asarray(pc.equal(pred, lab).to_numpy(zero_copy_only=False), dtype=float)


def load_arms(path: str | Path, metrics: tuple[Metric, ...]) -> dict[Metric, Arm]:
    """Read one variant's file once and return its usable values for each metric."""
    from mlops_actions.tables import ColumnFile

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="give the path of a CSV or Parquet prediction log")
    try:
        data = ColumnFile(path)
    except ValidationError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from exc
    if data.n_rows == 0:
        raise ConfigError(f"{path} has no rows",
                          hint="the variant has served no predictions yet: wait for traffic, "
                               "or check the export")
    needed = {c for m in metrics for c in COLUMNS[m]}
    missing = sorted(needed - set(data.names))
    if missing:
        raise ConfigError(
            f"{path} has no column {', '.join(map(repr, missing))} "
            f"(needed by --metric {', '.join(m.value for m in metrics)})",
            hint=f"columns present: {', '.join(data.names) or 'none'}; "
                 "rename the column or pick another metric")
    try:
        arms: dict[Metric, Arm] = {}
        for metric in metrics:
            if metric is Metric.ACCURACY:
                values = _accuracy(data.read("prediction"), data.read("label"))
            else:
                name = COLUMNS[metric][0]
                values = _numeric(path, name, data.read(name))
                _check_range(path, metric, name, values)
            arms[metric] = Arm(values=values, rows=data.n_rows)
    except ValidationError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from exc
    return arms


def _check_range(path: Path, metric: Metric, name: str, values: np.ndarray) -> None:
    if metric is Metric.ERROR_RATE:
        bad = values[(values != 0) & (values != 1)]
        if bad.size:
            raise ConfigError(f"{path}: column {name!r} must be 0 or 1; found {bad[0]:g} "
                              f"({bad.size} such rows)", hint="write 1 for a failed request, 0 otherwise")
    elif not np.isfinite(values).all() or (values < 0).any():
        bad = values[~np.isfinite(values) | (values < 0)]
        raise ConfigError(f"{path}: column {name!r} must be a non-negative number of milliseconds; "
                          f"found {bad[0]:g} ({bad.size} such rows)",
                          hint=f"fix or drop those rows of {path}")
