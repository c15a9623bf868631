"""Micro-batching: concurrent requests for one model version share one ``predict``.

A compiled model (:mod:`.compiled`) predicts a small batch on the event loop itself when it
takes under half a millisecond (quicker than handing it to a thread); otherwise, while a batch
is predicting on the worker thread, new requests queue up; the
next batch takes them all (up to ``max_batch`` rows). Requests are grouped by
column names, stacked into one DataFrame, predicted, and the output split back
per request. Row-wise models (scikit-learn and most tabular pyfunc models)
give the same predictions as one call per request. If a batch raises, each of
its requests is retried alone, so one bad request fails alone (HTTP 500).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

import pandas as pd

from mlops_actions.serving.fastpath import FastPath
from mlops_actions.serving.interface import Backend
from mlops_actions.serving.protocol import ParsedInput, to_row_outputs

__all__ = ["MicroBatcher", "predict_one"]


def _frame(columns: tuple[str, ...] | None, rows: list[list[Any]], backend: Backend) -> pd.DataFrame:
    if columns is None and backend.input_columns is not None \
            and rows and len(rows[0]) == len(backend.input_columns):
        columns = backend.input_columns
    return pd.DataFrame(rows, columns=list(columns) if columns is not None else None)


def predict_one(backend: Backend, parsed: ParsedInput) -> list[Any]:
    """Predict one request on its own; returns one output per row."""
    result = _predict_group(backend, [parsed])[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _predict_slow(backend: Backend, parsed: ParsedInput) -> list[Any]:
    output = backend.predict(_frame(parsed.columns, parsed.rows, backend))
    return to_row_outputs(output, parsed.n_rows)


def _fast(backend: Backend) -> FastPath | None:
    fast: FastPath | None = getattr(backend, "fast", None)  # only PyfuncBackend has one
    return fast if fast is not None and fast.names is not None else None


def _predict_group(backend: Backend, items: list[ParsedInput]) -> list[list[Any] | BaseException]:
    fast = _fast(backend)
    if fast is None:
        return _predict_stacked(backend, items)
    # each request converted on its own (exactly what pyfunc would do with it alone), then the
    # converted ones predicted together; the others go through pyfunc.predict one by one
    arrays = [fast.array(item.columns, item.rows) for item in items]
    results: list[list[Any] | BaseException] = [ValueError("not predicted")] * len(items)
    converted = [i for i, values in enumerate(arrays) if values is not None]
    ready = [values for values in arrays if values is not None]
    for i, values in enumerate(arrays):
        if values is None:
            try:
                results[i] = _predict_slow(backend, items[i])
            except Exception as exc:
                results[i] = exc
    if not converted:
        return results
    n_rows = sum(items[i].n_rows for i in converted)
    try:
        outputs = to_row_outputs(fast.run(ready), n_rows)
    except Exception as exc:
        if len(converted) == 1:
            results[converted[0]] = exc
        else:  # one bad request fails alone
            for i in converted:
                results[i] = _predict_group(backend, [items[i]])[0]
        return results
    for i, output in zip(converted, _split(outputs, [items[i] for i in converted]), strict=True):
        results[i] = output
    return results


def _split(outputs: list[Any], items: list[ParsedInput]) -> list[list[Any] | BaseException]:
    """One batch's outputs back to its requests, in order."""
    results: list[list[Any] | BaseException] = []
    start = 0
    for item in items:
        results.append(outputs[start:start + item.n_rows])
        start += item.n_rows
    return results


def _predict_compiled(fast: FastPath, items: list[ParsedInput]) -> list[list[Any] | BaseException] | None:
    """The batch predicted by the compiled model alone (every request converts and it takes them
    all, whatever their column order: converted arrays are in the signature's order), else None."""
    arrays = []
    for item in items:
        values = fast.array(item.columns, item.rows)
        if values is None:
            return None
        arrays.append(values)
    try:
        output = fast.run_compiled(arrays)
        if output is None:
            return None
        outputs = to_row_outputs(output, sum(item.n_rows for item in items))
    except Exception:  # not expected: the thread path answers each request
        return None
    return _split(outputs, items)


def _predict_stacked(backend: Backend, items: list[ParsedInput]) -> list[list[Any] | BaseException]:
    if len(items) == 1:
        try:
            return [_predict_slow(backend, items[0])]
        except Exception as exc:
            return [exc]
    rows = [row for item in items for row in item.rows]
    try:
        outputs = to_row_outputs(backend.predict(_frame(items[0].columns, rows, backend)), len(rows))
    except Exception:
        return [r for item in items for r in _predict_stacked(backend, [item])]
    return _split(outputs, items)


def _predict_batch(backend: Backend, items: list[ParsedInput]) -> list[list[Any] | BaseException]:
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.columns, []).append(i)
    results: list[list[Any] | BaseException] = [ValueError("not predicted")] * len(items)
    for indexes in groups.values():
        for i, res in zip(indexes, _predict_group(backend, [items[i] for i in indexes]), strict=True):
            results[i] = res
    return results


class MicroBatcher:
    """Per-backend queue drained by one task; ``predict`` runs on ``executor``."""

    def __init__(self, backend: Backend, executor: Executor, max_batch: int = 128) -> None:
        self.backend = backend
        self._executor = executor
        self._max_batch = max_batch
        self._pending: list[tuple[ParsedInput, asyncio.Future[list[Any]]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.requests = 0
        self._fast = _fast(backend)

    async def submit(self, parsed: ParsedInput) -> list[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._pending.append((parsed, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

    def _on_loop(self, items: list[ParsedInput], rows: int) -> list[list[Any] | BaseException] | None:
        """A compiled model's small batch, predicted here: quicker than a hand-off to the thread."""
        fast = self._fast
        if fast is None or fast.compiled is None or not fast.compiled.quick(rows):
            return None
        return _predict_compiled(fast, items)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch: list[tuple[ParsedInput, asyncio.Future[list[Any]]]] = []
                rows = 0
                while self._pending and (not batch or rows + self._pending[0][0].n_rows <= self._max_batch):
                    item = self._pending.pop(0)
                    batch.append(item)
                    rows += item[0].n_rows
                items = [p for p, _ in batch]
                results = self._on_loop(items, rows)
                if results is None:
                    try:
                        results = await loop.run_in_executor(
                            self._executor, _predict_batch, self.backend, items)
                    except BaseException as exc:  # the executor itself failed
                        results = [exc] * len(batch)
                self.batches += 1
                self.requests += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False
