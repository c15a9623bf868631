"""A CSV or Parquet file read one column at a time: the reader that drift, profiles and
``compare`` share (at the bottom layer, so ``stats`` reads files without ``monitoring``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_actions.errors import ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CSV_SUFFIXES", "PARQUET_SUFFIXES", "ColumnFile", "is_string"]

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt")


def is_string(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


class ColumnFile:
    """A CSV or Parquet file read one column at a time (Parquet: only that column's pages are
    read; CSV: Arrow reads the file once, columnar). Safe to read from several threads: each
    thread opens the Parquet file once and reuses it (not memory-mapped: mapped pages would count
    in the resident memory); :meth:`close` closes them.

    ``strings_as_dictionary``: Parquet string columns come back dictionary-encoded (as they are
    stored), so counting categories is a ``bincount`` of the indices instead of hashing every
    string; :attr:`types` keeps the file's own type of each column."""

    def __init__(self, path: str | Path, *, strings_as_dictionary: bool = False) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in PARQUET_SUFFIXES + CSV_SUFFIXES:
            raise ValidationError(
                f"cannot read {self.path}: unknown format {suffix!r}",
                hint="use a .parquet or .csv file (or a stored .npz profile as reference)",
            )
        self._table: pa.Table | None = None
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._dictionary: list[str] = []
        try:
            if suffix in PARQUET_SUFFIXES:
                import pyarrow.parquet as pq

                schema = pq.read_schema(self.path)
                self.names = [n for n in schema.names if not n.startswith("__index_level_")]
                self.types = {n: schema.field(n).type for n in self.names}
                self.n_rows = self._parquet().metadata.num_rows
                if strings_as_dictionary:
                    self._dictionary = [n for n in self.names if is_string(self.types[n])]
                    self.close()  # reopened per thread with the dictionary columns
            else:
                import pyarrow.csv as pcsv

                self._table = pcsv.read_csv(
                    self.path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True)
                )
                self.names = list(self._table.column_names)
                self.types = {n: self._table.schema.field(n).type for n in self.names}
                self.n_rows = self._table.num_rows
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise ValidationError(
                f"cannot read {self.path}: {exc}", hint="give a readable CSV or Parquet file"
            ) from exc

    def _parquet(self) -> Any:
        """This thread's reader (a ParquetFile is not shared between threads)."""
        import pyarrow.parquet as pq

        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = pq.ParquetFile(self.path, read_dictionary=self._dictionary or None)
            self._local.reader = reader
            with self._lock:
                self._opened.append(reader)
        return reader

    def read(self, name: str) -> pa.ChunkedArray:
        if self._table is not None:
            return self._table.column(name)
        try:
            return self._parquet().read(columns=[name], use_threads=False).column(0)
        except (OSError, ValueError) as exc:
            raise ValidationError(
                f"cannot read column {name!r} of {self.path}: {exc}",
                hint="the file may be truncated; rewrite it",
            ) from exc

    def close(self) -> None:
        """Close every thread's reader (reading again reopens)."""
        with self._lock:
            opened, self._opened = self._opened, []
            self._local = threading.local()
        for reader in opened:
            reader.close()

    def __enter__(self) -> ColumnFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
