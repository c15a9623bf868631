"""Prediction logging off the response path: bounded queue, batched writes.

``offer`` never blocks: when the queue is full it returns False and the gateway
answers 503 (counted), so no acknowledged prediction is silently dropped. A
background thread writes batches to the PredictionStore; ``close`` drains the
queue and writes what is left (graceful shutdown). A failed write is retried
with back-off; the rows stay in memory meanwhile.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from mlops_actions.monitoring.interface import PredictionRecord, PredictionStore

__all__ = ["PredictionLogger"]

log = logging.getLogger(__name__)


class PredictionLogger:
    def __init__(self, store: PredictionStore, *, max_queue: int = 50_000, batch_size: int = 1000,
                 flush_interval: float = 0.05) -> None:
        self.store = store
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-logger", daemon=True)
        self.written = 0
        self.rejected = 0
        self.write_failures = 0
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def offer(self, record: PredictionRecord) -> bool:
        """Queue a record; False when the queue is full (answer 503)."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.rejected += 1
            return False
        return True

    def _take(self, timeout: float) -> list[PredictionRecord]:
        batch: list[PredictionRecord] = []
        try:
            batch.append(self._queue.get(timeout=timeout))
        except queue.Empty:
            return batch
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[PredictionRecord]) -> None:
        delay = 0.05
        while True:
            try:
                self.store.write(batch)
                self.written += len(batch)
                return
            except Exception as exc:
                self.write_failures += 1
                log.warning("prediction store write of %d rows failed (%s); retrying", len(batch), exc)
                if self._stop.is_set() and delay > 1.0:
                    log.error("giving up on %d prediction rows at shutdown", len(batch))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take(self._flush_interval)
            if batch:
                self._write(batch)
        while True:  # drain at shutdown
            batch = self._take(0.0)
            if not batch:
                break
            self._write(batch)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is written (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while self._queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._queue.qsize() == 0

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
