"""MLflow's scoring protocol: request bodies in, ``{"predictions": [...]}`` out.

Accepted like ``mlflow models serve``: JSON with exactly one of
``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``
(content type ``application/json``), or CSV (``text/csv``). A request becomes a
:class:`ParsedInput`: column names plus plain rows, so that many concurrent
requests with the same columns can be stacked into one DataFrame and one
``predict`` call (micro-batching) without changing any prediction.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

__all__ = ["FORMATS", "MAX_DEPTH", "BadRequest", "ParsedInput", "input_mismatch", "input_problem",
           "parse_request", "to_row_outputs"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: nesting a request may have: ``{"inputs": [[[x]]]}`` is 4 (a tensor of rank 3); deeper is refused
MAX_DEPTH = 32


class BadRequest(Exception):
    """The request cannot be scored as sent (HTTP 400); the message says why."""


@dataclass(frozen=True)
class ParsedInput:
    """``rows`` are lists of values in ``columns`` order; ``columns`` is None for bare arrays."""

    columns: tuple[str, ...] | None
    rows: list[list[Any]]

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def first_features(self) -> dict[str, Any]:
        """Features to log: the row itself for one row, else columns and rows."""
        if self.columns is not None and len(self.rows) == 1:
            return dict(zip(self.columns, self.rows[0], strict=False))
        return {"columns": list(self.columns) if self.columns else None, "data": self.rows}


def _records(records: Any, key: str) -> ParsedInput:
    if not isinstance(records, list) or not records:
        raise BadRequest(f"`{key}` must be a non-empty list of objects, e.g. [{{\"x\": 1.0}}]")
    first = records[0]
    if not isinstance(first, dict):
        raise BadRequest(f"`{key}` rows must be objects mapping column to value")
    columns = tuple(first)
    rows: list[list[Any]] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise BadRequest(f"`{key}`[{i}] is {type(rec).__name__}, expected an object")
        if tuple(rec) != columns:
            if set(rec) != set(columns):
                raise BadRequest(f"`{key}`[{i}] has columns {sorted(rec)}, row 0 has {sorted(columns)}")
            rows.append([rec[c] for c in columns])
        else:
            rows.append(list(rec.values()))
    return ParsedInput(columns, rows)


def _split(payload: Any) -> ParsedInput:
    if not isinstance(payload, dict) or "data" not in payload:
        raise BadRequest("`dataframe_split` must be an object with `columns` and `data`")
    data = payload["data"]
    columns = payload.get("columns")
    if not isinstance(data, list) or not data:
        raise BadRequest("`dataframe_split.data` must be a non-empty list of rows")
    if columns is not None and (not isinstance(columns, list)
                                or not all(isinstance(c, str | int) for c in columns)):
        raise BadRequest("`dataframe_split.columns` must be a list of column names")
    rows: list[list[Any]] = []
    width = len(columns) if columns is not None else None
    for i, row in enumerate(data):
        if not isinstance(row, list):
            row = [row]
        if width is None:
            width = len(row)
        if len(row) != width:
            raise BadRequest(f"`dataframe_split.data`[{i}] has {len(row)} values, expected {width} "
                             "(one per column)")
        rows.append(row)
    cols = tuple(str(c) for c in columns) if columns is not None else None
    return ParsedInput(cols, rows)


def _tensor_like(value: Any, key: str) -> ParsedInput:
    if isinstance(value, dict):  # columnar: {"x": [1, 2], "y": [3, 4]}
        columns = tuple(value)
        cols = [v if isinstance(v, list) else [v] for v in value.values()]
        lengths = {len(c) for c in cols}
        if len(lengths) != 1:
            raise BadRequest(f"`{key}` columns have different lengths {sorted(lengths)}")
        return ParsedInput(columns, [list(r) for r in zip(*cols, strict=True)])
    if not isinstance(value, list) or not value:
        raise BadRequest(f"`{key}` must be a non-empty list or an object of columns")
    if isinstance(value[0], dict):
        return _records(value, key)
    rows = [v if isinstance(v, list) else [v] for v in value]
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise BadRequest(f"`{key}` rows have different lengths {sorted(widths)}")
    return ParsedInput(None, rows)


def _csv(body: bytes) -> ParsedInput:
    try:
        text = body.decode("utf-8")
        frame = pd.read_csv(io.StringIO(text))
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise BadRequest(f"body is not valid CSV: {exc}") from None
    if frame.empty:
        raise BadRequest("CSV body has a header but no rows")
    return ParsedInput(tuple(str(c) for c in frame.columns), frame.astype(object).values.tolist())


def parse_request(body: bytes, content_type: str) -> ParsedInput:
    """Parse a scoring request; raise :class:`BadRequest` with the reason when it is malformed."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "text/csv":
        return _csv(body)
    if ctype not in ("application/json", ""):
        raise BadRequest(f"content type {ctype!r} is not supported: use application/json or text/csv")
    try:
        payload = orjson.loads(body)  # ~5x faster than json.loads; same values
    except orjson.JSONDecodeError:
        try:  # what orjson refuses but MLflow's server accepts: NaN/Infinity, huge integers
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
        except RecursionError:  # json.loads recurses per level (orjson stops at 1024)
            raise BadRequest(f"JSON nested too deeply: at most {MAX_DEPTH} levels") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"expected a JSON object with one of {', '.join(FORMATS)}")
    keys = [k for k in FORMATS if k in payload]
    if len(keys) != 1:
        raise BadRequest(f"expected exactly one of {', '.join(FORMATS)}; got keys {sorted(payload)}")
    key = keys[0]
    if key == "dataframe_split":
        parsed = _split(payload[key])
    elif key == "dataframe_records":
        parsed = _records(payload[key], key)
    else:
        parsed = _tensor_like(payload[key], key)
    # one bracket per row is the usual shape; walk the nesting only when there are many more
    # (a walk costs as much as the parse, so well-formed requests skip it)
    if body.count(b"[") + body.count(b"{") > len(parsed.rows) + 8:
        _check_depth(payload)
    return parsed


def _check_depth(payload: Any) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"JSON nested too deeply: at most {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))


def _describe_cell(value: Any) -> str | None:
    """Why a cell cannot be a model input value, or None when it is a plain scalar."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if value is None:
        return "null (a missing value)"
    if isinstance(value, dict):
        return "an object where a single value is expected"
    if isinstance(value, list):
        return "a list where a single value is expected"
    return None


#: what numpy, pandas and scikit-learn say when a value has the wrong type for a numeric model
_CONVERSION = re.compile(r"convert|cast|dtype|invalid literal|could not|not supported between|"
                         r"unsupported operand|must be real number|with a sequence|dimension|shape",
                         re.IGNORECASE)


def input_problem(parsed: ParsedInput, exc: BaseException | None = None, limit: int = 3) -> str | None:
    """What in the request a model cannot score (NaN or Infinity, null, nested values, a column
    mixing text with numbers, or text where the model's error says it wanted a number), when the
    model raised ``exc`` on it: the client's fault (HTTP 400, not counted against a canary), not
    the model's. None when the request looks well-formed (then it is a 500). Only called after a
    failure, so the hot path pays nothing."""
    found: list[str] = []
    wants_numbers = exc is not None and isinstance(exc, ValueError | TypeError) and \
        bool(_CONVERSION.search(str(exc)))
    names = parsed.columns
    kinds: dict[int, set[str]] = {}
    for i, row in enumerate(parsed.rows):
        if names is None:  # a bare tensor: its shape and values
            problem = _tensor_problem(row)
            if problem is None and wants_numbers and any(isinstance(v, list) for v in row):
                problem = "nested lists where the model expects one value per column"
            if problem is not None and len(found) < limit:
                found.append(f"row {i}: {problem}")
                continue
        for j, value in enumerate(row):
            where = f"row {i}, column {names[j]!r}" if names is not None and j < len(names) else \
                f"row {i}, value {j}"
            problem = _describe_cell(value) if names is not None else None
            if problem is None and wants_numbers and isinstance(value, str):
                problem = f"text {value[:20]!r} where the model expects a number"
            if problem is not None and len(found) < limit:
                found.append(f"{where}: {problem}")
            if isinstance(value, str):
                kinds.setdefault(j, set()).add("text")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                kinds.setdefault(j, set()).add("number")
    for j, seen in sorted(kinds.items()):
        if len(seen) > 1 and len(found) < limit:
            column = repr(names[j]) if names is not None and j < len(names) else str(j)
            found.append(f"column {column} mixes text and numbers")
    return "; ".join(found) or None


def _tensor_problem(value: list[Any]) -> str | None:
    """A tensor cell (bare ``inputs``/``instances``): empty or ragged lists, objects, null or
    non-finite numbers inside are what a model cannot score."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            if not item:
                return "an empty list inside a tensor"
            shapes = {len(x) if isinstance(x, list) else -1 for x in item}
            if len(shapes) > 1:
                return "a ragged tensor (lists of different lengths, or lists beside values)"
            stack.extend(item)
        elif isinstance(item, dict):
            return "an object inside a tensor"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a finite number"
        elif item is None:
            return "null (a missing value) inside a tensor"
    return None


def input_mismatch(exc: BaseException) -> str | None:
    """Why the input does not fit the model's signature, when ``exc`` says so (MLflow's schema
    enforcement: HTTP 400, the client's fault), else None (the model itself failed: 500).

    Found by schemathesis: ``{"inputs": [null, null]}`` was answered 500 MODEL_ERROR.
    """
    if type(exc).__name__ == "MlflowException" and \
            getattr(exc, "error_code", None) in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
        return str(getattr(exc, "message", exc)).split(". Error: ", 1)[-1]
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


def to_row_outputs(output: Any, n_rows: int) -> list[Any]:
    """Turn a pyfunc output into one JSON-ready item per input row (what MLflow would emit)."""
    if isinstance(output, pd.DataFrame):
        items: Sequence[Any] = output.to_dict(orient="records")
    elif isinstance(output, pd.Series | np.ndarray):
        items = output.tolist()
    elif isinstance(output, list):
        items = output
    else:
        raise ValueError(f"model output of type {type(output).__name__} cannot be split per row")
    if len(items) != n_rows:
        raise ValueError(f"model returned {len(items)} outputs for {n_rows} rows")
    return [_jsonable(v) if not isinstance(v, dict | list) else v for v in items]
