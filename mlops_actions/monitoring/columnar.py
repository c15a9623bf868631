"""Drift from files, one column at a time, with Arrow: the lean path for large data.

:func:`detect_drift_files` reads the reference (a CSV/Parquet file or a stored
profile) and the current data (CSV/Parquet) column by column with pyarrow, runs
each column's test (:func:`~mlops_actions.monitoring.drift.compare_column`, the
same statistics as :func:`~mlops_actions.monitoring.drift.detect_drift`) and
drops the column before reading the next. Neither table is ever whole in memory
and pandas is never imported, so the process's peak memory is the interpreter,
numpy, pyarrow and scipy's distance module plus a few columns (scipy.stats loads
only when a p-value test runs: references of 1,000 rows or fewer).

Column kinds are read from the Arrow types the way ``pd.read_parquet`` +
:func:`~mlops_actions.monitoring.profile.infer_kind` see them: float -> numeric;
integer -> categorical with <= 10 distinct values, else numeric (an integer
column with nulls is numeric, as pandas reads it as float); bool and dictionary
-> categorical; strings -> text when more than half the values are distinct,
else categorical. Dates, times, lists and other types get an ``error`` verdict
naming the type. CSV files are read with Arrow's reader (whole file, columnar;
empty strings and ``NA``-like values are missing, as pandas does).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_actions.errors import ValidationError
from mlops_actions.monitoring.drift import (
    ColumnDrift,
    CurrentColumn,
    DriftOptions,
    DriftReport,
    compare_column,
    decide_report,
)
from mlops_actions.monitoring.profile import (
    INTEGER_CARDINALITY_LIMIT,
    ColumnKind,
    ColumnProfile,
    ReferenceProfile,
    StoredProfile,
    category_profile,
    file_sha256,
    numeric_profile,
    sorted_label_counts,
    text_profile,
)
from mlops_actions.monitoring.verdict import Verdict
from mlops_actions.tables import ColumnFile, is_string

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ColumnFile", "arrow_current", "arrow_kind", "arrow_profile", "cached_profile",
           "detect_drift_files", "profile_file"]



# --------------------------------------------------------------------------- one Arrow column


def arrow_kind(arr: pa.ChunkedArray, declared: pa.DataType | None = None) -> tuple[ColumnKind, str | None]:
    """The column kind pandas + :func:`infer_kind` would give, and why not when unusable.
    ``declared``: the file's type of the column, when it was read as another (strings read as a
    dictionary, see :class:`ColumnFile`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = declared if declared is not None else arr.type
    n_valid = len(arr) - arr.null_count
    if pa.types.is_null(t) or (n_valid == 0 and not pa.types.is_floating(t)):
        return "unknown", "the reference column is all missing"
    if pa.types.is_floating(t):
        return "numeric", None
    if pa.types.is_integer(t):
        if arr.null_count:  # pandas reads an integer column with nulls as float
            return "numeric", None
        nunique = pc.count_distinct(arr, mode="only_valid").as_py()
        return ("categorical" if nunique <= INTEGER_CARDINALITY_LIMIT else "numeric"), None
    if pa.types.is_boolean(t) or pa.types.is_dictionary(t):
        return "categorical", None
    if is_string(t):
        if pa.types.is_dictionary(arr.type):
            nunique = len(arrow_category_counts(arr)[0])
        else:
            nunique = pc.count_distinct(arr, mode="only_valid").as_py()
        return ("text" if nunique > n_valid * 0.5 else "categorical"), None
    return "unknown", (f"column type {t} is not supported for drift (numbers, text, booleans and "
                       "categories are); convert it or leave it out of features:")


def _decoded(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        return pc.cast(arr, arr.type.value_type)
    return arr


def _numpy(arr: pa.Array | pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """A primitive Arrow array as numpy (nulls become NaN for floats), read from its buffers:
    pyarrow's own ``to_numpy()``, like ``fill_null`` with a Python scalar, imports pandas (about
    30 MB of resident memory) to check for extension types."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()  # one chunk: no copy
    validity, data = arr.buffers()[:2] if len(arr) else (None, None)
    if data is None:
        return np.empty(0, dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    values = np.frombuffer(data, dtype=dtype, count=len(arr), offset=arr.offset * itemsize)
    if arr.null_count and validity is not None:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        valid = bits[arr.offset:arr.offset + len(arr)].astype(bool)
        values = values.copy()
        values[~valid] = np.nan
    return values


def arrow_numeric_values(arr: pa.ChunkedArray) -> tuple[np.ndarray, int, str | None]:
    """As :func:`~mlops_actions.monitoring.profile.numeric_values`: finite float64 values, the
    count dropped (null, NaN, inf), and an error when the values are not numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _decoded(arr)
    t = arr.type
    if not (pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) or is_string(t)):
        return np.empty(0), len(arr), f"column type {t} is not numeric"
    try:
        floats = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.empty(0), len(arr), "some values are not numbers in a numeric column"
    values = _numpy(floats, np.float64)
    finite = np.isfinite(values)
    if finite.all():
        return values, 0, None
    return values[finite], int(len(values) - finite.sum()), None


def _valid_mask(arr: pa.Array) -> np.ndarray | None:
    """Which slots of a primitive Arrow array hold a value (None: all of them)."""
    validity = arr.buffers()[0]
    if not arr.null_count or validity is None:
        return None
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    return bits[arr.offset:arr.offset + len(arr)].astype(bool)


def _dictionary_counts(arr: pa.ChunkedArray) -> tuple[list[object], np.ndarray]:
    """Raw values and counts of a dictionary-encoded column: one ``bincount`` of the indices per
    chunk, no hashing of strings (a Parquet string column read as a dictionary comes this way)."""
    import pyarrow as pa

    raw: list[object] = []
    counts: list[np.ndarray] = []
    for chunk in arr.chunks:
        if not len(chunk):
            continue
        indices = chunk.indices
        width = indices.type.bit_width
        dtype = np.dtype(f"uint{width}" if pa.types.is_unsigned_integer(indices.type) else f"int{width}")
        idx = np.frombuffer(indices.buffers()[1], dtype=dtype, count=len(indices),
                            offset=indices.offset * dtype.itemsize)
        valid = _valid_mask(chunk)
        if valid is not None:
            idx = idx[valid]
        n = np.bincount(idx, minlength=len(chunk.dictionary))
        used = np.flatnonzero(n)
        dictionary = chunk.dictionary.to_pylist()  # not .take(pa.array(...)): that imports pandas
        values = [dictionary[k] for k in used.tolist()]
        keep = [k for k, v in enumerate(values) if v is not None]  # a null in the dictionary: missing
        raw.extend(values[k] for k in keep)
        counts.append(n[used][keep])
    return raw, (np.concatenate(counts).astype(np.int64) if counts else np.zeros(0, dtype=np.int64))


def arrow_category_counts(arr: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, int]:
    """As :func:`~mlops_actions.monitoring.profile.category_counts`: sorted labels, their counts,
    and the missing count."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        raw_values, raw_counts = _dictionary_counts(arr)
        labels, n = sorted_label_counts(raw_values, raw_counts)
        return labels, n, int(len(arr) - int(n.sum()))
    arr = _decoded(arr)
    counted = pc.value_counts(arr)
    values, counts = counted.field("values"), counted.field("counts")
    valid = pc.is_valid(values)
    raw = pc.filter(values, valid).to_pylist()
    labels, n = sorted_label_counts(raw, _numpy(pc.cast(pc.filter(counts, valid), pa.int64()), np.int64))
    return labels, n, int(len(arr) - int(n.sum()))


def arrow_profile(name: str, arr: pa.ChunkedArray, declared: pa.DataType | None = None) -> ColumnProfile:
    """The reference profile of one Arrow column (as ``ReferenceProfile.from_frame`` would make);
    ``declared`` as for :func:`arrow_kind`."""
    import pyarrow as pa

    if declared is not None and is_string(declared) and pa.types.is_dictionary(arr.type):
        n_valid = len(arr) - arr.null_count  # strings read as a dictionary: count once, decide the kind
        labels, counts, n_missing = arrow_category_counts(arr)
        if not len(labels):
            return ColumnProfile(name, "unknown", 0, len(arr), np.empty(0),
                                 error="the reference column is all missing")
        if len(labels) <= n_valid * 0.5:
            return category_profile(name, labels, counts, n_missing)
    kind, why = arrow_kind(arr, declared)
    if kind == "numeric":
        values, n_missing, error = arrow_numeric_values(arr)
        if error:
            return ColumnProfile(name, "unknown", 0, len(arr), np.empty(0), error=error)
        return numeric_profile(name, values, n_missing)
    if kind == "categorical":
        return category_profile(name, *arrow_category_counts(arr))
    if kind == "text":
        return text_profile(name, _decoded(arr).to_pylist())
    return ColumnProfile(name, "unknown", len(arr) - arr.null_count, arr.null_count, np.empty(0), error=why)


def arrow_current(kind: str, arr: pa.ChunkedArray) -> CurrentColumn:
    """One current column, read as the reference's ``kind``."""
    if kind == "numeric":
        values, dropped, error = arrow_numeric_values(arr)
        return CurrentColumn(len(arr), values, None, dropped, error)
    if kind == "categorical":
        labels, counts, n_missing = arrow_category_counts(arr)
        return CurrentColumn(len(arr), labels, counts, n_missing)
    if kind == "text":
        texts = _decoded(arr).to_pylist()
        return CurrentColumn(len(arr), np.array(texts, dtype=object), None,
                             sum(not isinstance(t, str) for t in texts))
    return CurrentColumn(len(arr), np.empty(0))


# --------------------------------------------------------------------------- files


def profile_file(path: str | Path, *, features: Sequence[str] | None = None,
                 exclude: Sequence[str] = (), workers: int = 0, source: str = "",
                 fingerprint: str = "") -> ReferenceProfile:
    """The :class:`ReferenceProfile` of a CSV/Parquet file, built column by column (no DataFrame)."""
    with ColumnFile(path, strings_as_dictionary=True) as data:
        names = list(features) if features is not None else [n for n in data.names if n not in exclude]
        missing = [n for n in names if n not in data.names]
        if missing:
            raise ValidationError(f"reference data {path} has no column(s) {', '.join(map(repr, missing))}",
                                  hint=f"columns present: {', '.join(data.names)}")
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            profiles = list(pool.map(lambda n: arrow_profile(n, data.read(n), data.types[n]), names))
    return ReferenceProfile({p.name: p for p in profiles}, data.n_rows, source or str(path), fingerprint)


def _reference_columns(reference: str | Path | ReferenceProfile,
                       ) -> tuple[list[str], int, Callable[[str], ColumnProfile], Callable[[], None]]:
    """Names, row count, a per-column profile getter and a closer for any kind of reference."""
    if isinstance(reference, ReferenceProfile):
        prof = reference
        return list(prof.columns), prof.n_rows, prof.columns.__getitem__, lambda: None
    path = Path(reference)
    if path.suffix.lower() == ".npz":
        stored = StoredProfile(path)
        return stored.names, stored.n_rows, stored.column, stored.close
    data = ColumnFile(path, strings_as_dictionary=True)
    return data.names, data.n_rows, lambda n: arrow_profile(n, data.read(n), data.types[n]), data.close


def detect_drift_files(reference: str | Path | ReferenceProfile, current: str | Path,
                       options: DriftOptions | None = None) -> DriftReport:
    """Drift of ``current`` (a CSV/Parquet file) against ``reference`` (a CSV/Parquet file, a
    stored profile ``.npz`` written by :meth:`ReferenceProfile.save`, or a profile object),
    column by column: the same methods, values and decisions as
    :func:`~mlops_actions.monitoring.drift.detect_drift` on the loaded tables, at a fraction
    of the memory. Never raises for a bad column (it gets an ``error`` verdict); raises
    :class:`~mlops_actions.errors.ValidationError` for an unreadable file."""
    options = options or DriftOptions()
    cur = ColumnFile(current, strings_as_dictionary=True)
    try:
        ref_names, n_ref_rows, ref_column, close = _reference_columns(reference)
    except BaseException:
        cur.close()
        raise
    try:
        names = list(options.features) if options.features is not None else ref_names
        known = set(ref_names)

        def one(name: str) -> ColumnDrift:
            if name not in known:
                return ColumnDrift(name, "unknown", "", None, None, None, Verdict.ERROR,
                                   message="not in the reference data; recompute the reference profile")
            try:
                prof = ref_column(name)
            except Exception as exc:
                return ColumnDrift(name, "unknown", "", None, None, None, Verdict.ERROR,
                                   message=f"reference: {exc}")
            try:
                current_col = arrow_current(prof.kind, cur.read(name)) if name in cur.names else None
                return compare_column(prof, current_col, options)
            except Exception as exc:  # one bad column never stops the others
                return ColumnDrift(name, prof.kind, "", None, None, None, Verdict.ERROR,
                                   n_reference=prof.n, message=f"{type(exc).__name__}: {exc}")

        with ThreadPoolExecutor(max_workers=options.workers or os.cpu_count() or 1) as pool:
            cols = list(pool.map(one, names))
    finally:
        close()
        cur.close()
    return decide_report(cols, options, n_ref_rows, cur.n_rows)


def cached_profile(data_path: str | Path, cache_dir: str | Path, *, features: list[str] | None = None,
                   reader: Any = None, exclude: tuple[str, ...] = ()) -> ReferenceProfile:
    """The profile of a CSV/Parquet file, from ``cache_dir`` when the file is unchanged.

    Without ``reader`` the file is profiled column by column with Arrow (:func:`profile_file`:
    no DataFrame of the whole file); ``reader(path) -> DataFrame`` profiles what it returns
    instead. (Here, not on ``ReferenceProfile``: the profile module sits below this one.)"""
    data_path = Path(data_path)
    fingerprint = file_sha256(data_path)
    cache = Path(cache_dir) / f"{data_path.stem}-{fingerprint[:16]}.npz"
    if cache.exists():
        prof = ReferenceProfile.load(cache)
        if prof.fingerprint == fingerprint and (features is None or set(features) <= set(prof.columns)):
            return prof
    if reader is None:
        prof = profile_file(data_path, features=features, exclude=exclude, source=str(data_path),
                            fingerprint=fingerprint)
    else:
        df = reader(data_path)
        prof = ReferenceProfile.from_frame(df, features=features, source=str(data_path),
                                           fingerprint=fingerprint)
    prof.save(cache)
    return prof
