"""Reference statistics, computed once per reference data set, stored, and reused.

A :class:`ReferenceProfile` keeps, per column, what every drift method and
data-quality check needs: the sorted finite values of a numeric column (so
Wasserstein and KS are exact, not approximated from a sketch), category counts
of a categorical one, missing counts, range and quartiles. It saves to one
``.npz`` file (no pickle) and loads back in milliseconds.

Column kinds follow Evidently's inference so the same method is chosen per
column: float -> numeric; integer with <= 10 distinct values -> categorical,
else numeric; bool/category -> categorical; strings -> categorical, or text
when more than half the values are distinct (ids, free text: not tested).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlops_actions.errors import ValidationError
from mlops_actions.monitoring.text import descriptors, tokens

if TYPE_CHECKING:  # pandas loads on first use: the file-based drift path never needs it
    import pandas as pd

__all__ = [
    "INTEGER_CARDINALITY_LIMIT",
    "ColumnKind",
    "ColumnProfile",
    "ReferenceProfile",
    "StoredProfile",
    "category_profile",
    "infer_kind",
    "numeric_profile",
    "numeric_values",
    "sorted_label_counts",
    "text_profile",
]

INTEGER_CARDINALITY_LIMIT = 10
FORMAT_VERSION = 1
ColumnKind = Literal["numeric", "categorical", "text", "unknown"]


def infer_kind(col: pd.Series) -> ColumnKind:
    """Evidently 0.7's ``infer_column_type``, restricted to what drift tests."""
    dtype = col.dtype
    name = dtype.name
    if name.startswith(("float", "Float")):
        return "numeric"
    if name.startswith(("int", "Int", "uint", "UInt")):
        return "categorical" if col.nunique() <= INTEGER_CARDINALITY_LIMIT else "numeric"
    if name in ("bool", "boolean", "category"):
        return "categorical"
    if name in ("string", "str") or name == "object":
        non_null = col.dropna()
        if non_null.empty:
            return "unknown"
        kinds = {type(v) for v in non_null.iloc[:1000]} | {type(non_null.iloc[-1])}
        if kinds <= {str}:
            return "text" if col.nunique() > col.count() * 0.5 else "categorical"
        if all(issubclass(k, int | float | np.number) and not issubclass(k, bool) for k in kinds):
            return "numeric"
        return "unknown"
    return "unknown"


def numeric_values(col: pd.Series) -> tuple[np.ndarray, int, str | None]:
    """Finite float64 values (NaN and +/-inf dropped, as Evidently does), the count dropped, and
    an error when some values are not numbers at all."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col.dtype):
        arr = col.to_numpy(dtype=np.float64)
    elif pd.api.types.is_numeric_dtype(col.dtype):
        arr = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        coerced = pd.to_numeric(col, errors="coerce")
        bad = coerced.isna() & col.notna()
        if bad.any():
            example = col[bad].iloc[0]
            return (np.empty(0), len(col),
                    f"{int(bad.sum())} value(s) are not numbers (e.g. {example!r}) in a numeric column")
        arr = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(arr)
    if finite.all():
        return arr, 0, None
    return arr[finite], int(len(arr) - finite.sum()), None


def category_counts(col: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels (as strings, sorted) and their counts; missing values counted apart."""
    counts = col.value_counts(dropna=True, sort=False)
    labels, values = sorted_label_counts(list(counts.index), counts.to_numpy(dtype=np.int64))
    return labels, values, int(len(col) - int(values.sum()))


def sorted_label_counts(raw: list[Any], counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw category values and their counts -> one spelling per label (:func:`_label`), sorted,
    counts of labels that spell alike merged. Shared by the pandas and the Arrow readers so
    both give the same labels."""
    labels = np.array([_label(v) for v in raw], dtype=str)
    values = np.asarray(counts, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    labels, values = labels[order], values[order]
    if len(np.unique(labels)) != len(labels):  # e.g. 1 and "1": merge after str()
        uniq, inv = np.unique(labels, return_inverse=True)
        labels, values = uniq, np.bincount(inv, weights=values).astype(np.int64)
    return labels, values


def _label(v: Any) -> str:
    """One spelling per category: 1, 1.0 and np.int64(1) are the same label."""
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(v)


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: ColumnKind
    n: int  # non-missing values
    n_missing: int
    values: np.ndarray = field(repr=False)  # numeric: sorted finite values; categorical: labels
    counts: np.ndarray | None = field(default=None, repr=False)  # categorical: count per label
    error: str | None = None  # why this column cannot be compared
    #: text: sorted reference values of each descriptor (``values``/``counts``: the vocabulary)
    descriptors: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def missing_share(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @property
    def nunique(self) -> int:
        if self.kind == "numeric":
            v = self.values
            return int(len(v) and 1 + np.count_nonzero(v[1:] != v[:-1]))
        return len(self.values)

    @property
    def std(self) -> float:
        return float(np.std(self.values)) if self.kind == "numeric" and self.n else 0.0

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.values, q)) if self.n else float("nan")


def numeric_profile(name: str, finite_values: np.ndarray, n_missing: int) -> ColumnProfile:
    """The profile of a numeric column from its finite values (sorted here)."""
    values = np.sort(finite_values)
    return ColumnProfile(name, "numeric", len(values), n_missing, values,
                         error=None if len(values) else "the reference column is all missing")


def category_profile(name: str, labels: np.ndarray, counts: np.ndarray, n_missing: int) -> ColumnProfile:
    """The profile of a categorical column from :func:`sorted_label_counts`' output."""
    return ColumnProfile(name, "categorical", int(counts.sum()), n_missing, labels, counts,
                         error=None if len(labels) else "the reference column is all missing")


def _profile_column(name: str, col: pd.Series, kind: ColumnKind | None = None) -> ColumnProfile:
    kind = kind or infer_kind(col)
    if kind == "numeric":
        values, n_missing, error = numeric_values(col)
        if error:
            return ColumnProfile(name, "unknown", 0, len(col), np.empty(0), error=error)
        return numeric_profile(name, values, n_missing)
    if kind == "categorical":
        labels, counts, n_missing = category_counts(col)
        return category_profile(name, labels, counts, n_missing)
    if kind == "text":
        return text_profile(name, [None if v is None or v != v else v for v in col.tolist()])
    non_null = col.dropna()
    if non_null.empty:
        why = "the reference column is all missing"
    else:
        sample = sorted({type(v).__name__ for v in non_null.iloc[:1000]})
        why = (f"the reference column mixes value types ({', '.join(sample)}); make it all numbers "
               "or all text")
    return ColumnProfile(name, "unknown", int(non_null.size), int(col.isna().sum()), np.empty(0), error=why)


@dataclass(frozen=True)
class ReferenceProfile:
    """Statistics of a reference data set, per column."""

    columns: dict[str, ColumnProfile]
    n_rows: int
    source: str = ""  # file the profile was computed from, if any
    fingerprint: str = ""  # sha256 of that file, to know when to recompute

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, features: list[str] | None = None,
                   kinds: dict[str, ColumnKind] | None = None, source: str = "",
                   fingerprint: str = "", workers: int = 2) -> ReferenceProfile:
        names = list(features) if features is not None else [str(c) for c in df.columns]
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ValidationError(f"reference data has no column(s) {', '.join(map(repr, missing))}",
                                  hint=f"columns present: {', '.join(map(str, df.columns))}")
        kinds = kinds or {}

        def one(name: str) -> ColumnProfile:
            return _profile_column(name, df[name], kinds.get(name))

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            profiles = list(pool.map(one, names))
        return cls({p.name: p for p in profiles}, len(df), source, fingerprint)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {"format": FORMAT_VERSION, "n_rows": self.n_rows, "source": self.source,
                "fingerprint": self.fingerprint, "columns": []}
        arrays: dict[str, np.ndarray] = {}
        for i, p in enumerate(self.columns.values()):
            meta["columns"].append({"name": p.name, "kind": p.kind, "n": p.n, "n_missing": p.n_missing,
                                    "error": p.error, "has_counts": p.counts is not None,
                                    "descriptors": sorted(p.descriptors or {})})
            arrays[f"v{i}"] = p.values
            if p.counts is not None:
                arrays[f"c{i}"] = p.counts
            for k, v in (p.descriptors or {}).items():
                arrays[f"d{i}_{k}"] = v
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        with StoredProfile(path) as stored:
            cols = {name: stored.column(name) for name in stored.names}
        return cls(cols, stored.n_rows, stored.source, stored.fingerprint)


class StoredProfile:
    """A saved profile (``.npz``) read one column at a time, so a drift check over a large
    reference never holds every column's values at once. Thread-safe; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._data = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise self._error(exc) from exc
        try:
            meta = json.loads(bytes(self._data["meta"]).decode())
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {meta.get('format')} (expected {FORMAT_VERSION})")
            self._index = {c["name"]: (i, c) for i, c in enumerate(meta["columns"])}
            self.n_rows = int(meta["n_rows"])
        except (OSError, ValueError, KeyError) as exc:
            self._data.close()
            raise self._error(exc) from exc
        self.source: str = meta.get("source", "")
        self.fingerprint: str = meta.get("fingerprint", "")

    def _error(self, exc: Exception) -> ValidationError:
        return ValidationError(f"cannot read the reference profile {self.path}: {exc}",
                               hint="delete it; it is recomputed from the reference data")

    @property
    def names(self) -> list[str]:
        return list(self._index)

    def column(self, name: str) -> ColumnProfile:
        i, c = self._index[name]
        try:
            with self._lock:  # one zip member at a time: the archive's file handle is shared
                values = self._data[f"v{i}"]
                counts = self._data[f"c{i}"] if c["has_counts"] else None
                desc = {k: self._data[f"d{i}_{k}"] for k in c.get("descriptors", [])} or None
        except (OSError, ValueError, KeyError) as exc:
            raise self._error(exc) from exc
        return ColumnProfile(c["name"], c["kind"], c["n"], c["n_missing"], values, counts, c["error"], desc)

    def close(self) -> None:
        self._data.close()

    def __enter__(self) -> StoredProfile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise ValidationError(f"cannot read reference data {path}: {exc.strerror or exc}",
                              hint="check data.reference in model.yaml or --reference") from exc
    return h.hexdigest()


def read_table(path: str | Path) -> pd.DataFrame:
    """CSV or Parquet by extension; errors name the file."""
    import pandas as pd

    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}",
                              hint="give a readable CSV or Parquet file") from exc
    raise ValidationError(f"cannot read {path}: unknown format {path.suffix!r}",
                          hint="use a .csv or .parquet file")


def text_profile(name: str, texts: Sequence[Any]) -> ColumnProfile:
    """The reference profile of a text column: its vocabulary (token counts) and descriptors."""
    vocab_counts: Counter[str] = Counter()
    n = 0
    for t in texts:
        if isinstance(t, str):
            n += 1
            vocab_counts.update(tokens(t))
    labels, counts = sorted_label_counts(list(vocab_counts), np.fromiter(vocab_counts.values(), np.int64,
                                                                         len(vocab_counts)))
    desc = descriptors(texts, labels, counts)
    stored = {k: np.sort(v[np.isfinite(v)]) for k, v in desc.items()}
    return ColumnProfile(name, "text", n, len(texts) - n, labels, counts,
                         error=None if n else "the reference column is all missing", descriptors=stored)
