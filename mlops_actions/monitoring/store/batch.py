"""A background writer for the gateway: submit records from request handlers, one thread batches them.

``submit`` never touches the database: it appends to a buffer. A daemon thread
writes the buffer every ``interval`` seconds or as soon as ``batch_size``
records wait. A failed batch is kept and retried on the next flush (writes are
idempotent, so a retry never duplicates). Past ``max_pending`` records waiting
(database down for long), new records are dropped and counted in ``dropped``
instead of growing memory without bound.

Batches grow with the load (a flush takes everything queued, up to
``batch_size``): large batches are what keep SQLite above 50,000 rows/s with
random request ids.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from mlops_actions.monitoring.interface import PredictionRecord, PredictionStore

__all__ = ["BatchWriter", "WriterStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterStats:
    submitted: int
    written: int  # rows new in the store
    pending: int
    dropped: int
    failures: int
    last_error: str | None


class BatchWriter:
    def __init__(self, store: PredictionStore, *, batch_size: int = 10_000, interval: float = 0.2,
                 max_pending: int = 1_000_000) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self._buf: deque[PredictionRecord] = deque()
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._stop = False
        self._submitted = self._written = self._dropped = self._failures = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-writer", daemon=True)
        self._thread.start()

    def submit(self, record: PredictionRecord) -> bool:
        """Queue one record; False when dropped (too many pending)."""
        with self._cond:
            if len(self._buf) >= self.max_pending:
                self._dropped += 1
                return False
            self._buf.append(record)
            self._submitted += 1
            if len(self._buf) >= self.batch_size:
                self._cond.notify()
        return True

    def flush(self) -> int:
        """Write everything queued now, in this thread; returns rows new."""
        total = 0
        with self._write_lock:
            while True:
                with self._cond:
                    batch = [self._buf.popleft() for _ in range(min(self.batch_size, len(self._buf)))]
                if not batch:
                    return total
                try:
                    new = self.store.write(batch)
                except Exception as exc:  # keep the batch for the next try
                    with self._cond:
                        self._buf.extendleft(reversed(batch))
                        self._failures += 1
                        self._last_error = str(exc)
                    log.warning("prediction store write failed (will retry): %s", exc)
                    return total
                total += new
                with self._cond:
                    self._written += new

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stop and len(self._buf) < self.batch_size:
                    self._cond.wait(self.interval)
                stop = self._stop
            self.flush()
            if stop:
                return

    def stats(self) -> WriterStats:
        with self._cond:
            return WriterStats(self._submitted, self._written, len(self._buf), self._dropped,
                               self._failures, self._last_error)

    def close(self, timeout: float = 10.0) -> WriterStats:
        """Stop the thread after a last flush (bounded by ``timeout``)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)
        self.flush()
        return self.stats()
