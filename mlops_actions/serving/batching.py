"""Micro-batching: concurrent requests for one model version share one ``predict``.

While a batch is predicting on the worker thread, new requests queue up; the
next batch takes them all (up to ``max_batch`` rows). Requests are grouped by
column names, stacked into one DataFrame, predicted, and the output split back
per request. Row-wise models (scikit-learn and most tabular pyfunc models)
give the same predictions as one call per request. If a batch raises, each of
its requests is retried alone, so one bad request fails alone (HTTP 500).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from typing import Any

import pandas as pd

from mlops_actions.serving.fastpath import FastPath
from mlops_actions.serving.interface import Backend
from mlops_actions.serving.protocol import ParsedInput, to_row_outputs

__all__ = ["INLINE_MAX_ROWS", "MicroBatcher", "predict_one"]


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
        outputs = to_row_outputs(fast.predict(fast.frame(ready)), n_rows)
    except Exception as exc:
        if len(converted) == 1:
            results[converted[0]] = exc
        else:  # one bad request fails alone
            for i in converted:
                results[i] = _predict_group(backend, [items[i]])[0]
        return results
    start = 0
    for i in converted:
        results[i] = outputs[start:start + items[i].n_rows]
        start += items[i].n_rows
    return results


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
    results: list[list[Any] | BaseException] = []
    start = 0
    for item in items:
        results.append(outputs[start:start + item.n_rows])
        start += item.n_rows
    return results


def _predict_batch(backend: Backend, items: list[ParsedInput]) -> list[list[Any] | BaseException]:
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.columns, []).append(i)
    results: list[list[Any] | BaseException] = [ValueError("not predicted")] * len(items)
    for indexes in groups.values():
        for i, res in zip(indexes, _predict_group(backend, [items[i] for i in indexes]), strict=True):
            results[i] = res
    return results


#: requests of at most this many rows may be predicted on the event loop (:meth:`MicroBatcher.submit`)
INLINE_MAX_ROWS = 16


def _timed_batch(backend: Backend, items: list[ParsedInput]) -> tuple[list[list[Any] | BaseException], float]:
    """:func:`_predict_batch` and the CPU seconds it took on this thread (not wall time, which a
    loaded machine stretches)."""
    started = time.thread_time()
    results = _predict_batch(backend, items)
    return results, time.thread_time() - started


class MicroBatcher:
    """Per-backend queue drained by one task; ``predict`` runs on ``executor``.

    A lone request (``alone``: nothing else in progress on the gateway, nothing queued here)
    for a model of a flavour the fast path handles (pure CPU work, no I/O) whose small
    predictions take at most ``inline_seconds`` of CPU is predicted on the event loop itself: the two thread hand-offs of the executor cost more than such a
    predict, and on a loaded machine each waits for the scheduler. Under concurrency requests
    are never alone, so they batch on the executor as before.
    """

    def __init__(self, backend: Backend, executor: Executor, max_batch: int = 128,
                 inline_seconds: float = 0.0) -> None:
        self.backend = backend
        self._executor = executor
        self._max_batch = max_batch
        self._inline_seconds = inline_seconds
        # only models known to predict on the CPU alone (the fast path's flavours): a pyfunc model
        # may wait on I/O with little CPU time, and must not hold the event loop meanwhile
        self._cpu_bound = getattr(backend, "fast", None) is not None
        self._pending: list[tuple[ParsedInput, asyncio.Future[list[Any]]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.requests = 0
        self.inline = 0
        #: moving average of the CPU seconds of one small request's predict; None until measured
        self.small_predict_seconds: float | None = None

    def _note(self, items: list[ParsedInput], seconds: float) -> None:
        if len(items) == 1 and items[0].n_rows <= INLINE_MAX_ROWS:
            last = self.small_predict_seconds
            self.small_predict_seconds = seconds if last is None else 0.8 * last + 0.2 * seconds

    def inlines(self, parsed: ParsedInput) -> bool:
        """Whether a lone request like ``parsed`` is predicted on the event loop."""
        cost = self.small_predict_seconds
        return self._cpu_bound and cost is not None and cost <= self._inline_seconds \
            and parsed.n_rows <= INLINE_MAX_ROWS and not self._draining and not self._pending

    async def submit(self, parsed: ParsedInput, alone: bool = False) -> list[Any]:
        if alone and self.inlines(parsed):
            results, seconds = _timed_batch(self.backend, [parsed])
            self._note([parsed], seconds)
            self.batches += 1
            self.requests += 1
            self.inline += 1
            if isinstance(results[0], BaseException):
                raise results[0]
            return results[0]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._pending.append((parsed, future))
        if not self._draining:
            self._draining = True
            self._task = loop.create_task(self._drain())
        return await future

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
                try:
                    results, seconds = await loop.run_in_executor(self._executor, _timed_batch,
                                                                  self.backend, items)
                    self._note(items, seconds)
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
