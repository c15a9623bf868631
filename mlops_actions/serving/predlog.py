"""Prediction logging off the event loop, with group commit: a 200 means the row is stored.

Why group commit: a gateway that answers 200 before the prediction is written
loses every queued prediction when it is killed (SIGKILL, OOM, a power cut of
the container), and monitoring then silently misses them. Here a request hands
its record to the writer thread with :meth:`PredictionLogger.submit` and waits;
the thread writes everything queued meanwhile in ONE transaction and wakes all
of those requests when it commits. Under load a commit carries hundreds of rows,
so durability costs one commit per batch, not per request.

- ``submit`` never blocks: when the queue is full it returns False and the
  gateway answers 503 (counted), so no acknowledged prediction is dropped.
- A failed write fails the requests of that batch (they answer 503, nothing
  was acknowledged) and marks the logger *degraded* with the reason; the
  gateway then answers 503 at once and ``/readyz`` says why. The thread probes
  the store every ``probe_interval`` seconds and clears the state by itself
  when a write works again (disk space back, database reachable).
- ``offer`` is fire-and-forget for rows nobody was promised (shadow traffic,
  requests that failed anyway); they are written when the store works.
- ``close`` writes what is still queued (graceful shutdown, SIGTERM).

Sampling (:class:`LogSampling`, from each pin's ``prediction_log`` in
``environments/<env>.yaml``): a model logs the share ``sample_rate`` of its
requests, or none (``enabled: false``). Whether a request is logged is a hash of
its request id, not a coin toss: the same id always gets the same answer, so a
logged request's late label joins its row, a mirrored (``.shadow``) request is
logged exactly when its primary is, and stable and candidate are sampled alike.
A request that is not logged is answered at once (no wait for the commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mlops_actions.monitoring.interface import PredictionRecord, PredictionStore

__all__ = ["LogSampling", "PredictionLogger", "StoreUnavailable", "sample_point"]

log = logging.getLogger(__name__)

_Item = tuple[PredictionRecord, "asyncio.Future[None] | None"]


class StoreUnavailable(Exception):
    """The prediction store refused a write (disk full, I/O error, database down)."""


def sample_point(request_id: str) -> float:
    """Where a request id falls in [0, 1): the first 8 bytes of its BLAKE2b hash. Stable across
    processes and machines (not Python's salted ``hash``), uniform for any id format."""
    base = request_id.removesuffix(".shadow")  # a mirrored request goes with its primary
    digest = hashlib.blake2b(base.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class LogSampling:
    """Per-model share of requests to log (1.0 when a model is not named; 0.0 = off)."""

    def __init__(self, rates: Mapping[str, float] | None = None) -> None:
        self.rates = {model: float(rate) for model, rate in (rates or {}).items() if rate < 1.0}

    @classmethod
    def from_environment(cls, env: Any) -> LogSampling:
        """From an :class:`~mlops_actions.config.specs.EnvironmentSpec`'s pins."""
        return cls({key: pin.prediction_log.rate() for key, pin in env.models.items()})

    def keeps(self, model: str, request_id: str) -> bool:
        rate = self.rates.get(model)
        if rate is None:
            return True
        if rate <= 0.0:
            return False
        return sample_point(request_id) < rate

    def __bool__(self) -> bool:  # anything to sample out at all
        return bool(self.rates)


class PredictionLogger:
    def __init__(self, store: PredictionStore, *, max_queue: int = 50_000, batch_size: int = 1000,
                 flush_interval: float = 0.05, probe_interval: float = 0.5,
                 on_written: Callable[[list[PredictionRecord]], None] | None = None,
                 on_failure: Callable[[str], None] | None = None,
                 sampling: LogSampling | None = None) -> None:
        self.store = store
        self.sampling = sampling or LogSampling()
        #: records not logged because their model samples them out
        self.sampled_out = 0
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._probe_interval = probe_interval
        self._on_written = on_written
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-logger", daemon=True)
        self.written = 0
        self.rejected = 0
        self.write_failures = 0
        self.lost_unacknowledged = 0
        #: why the last write failed; None while the store works
        self.degraded: str | None = None
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def keeps(self, model: str, request_id: str) -> bool:
        """Whether this model logs this request (:class:`LogSampling`)."""
        return not self.sampling or self.sampling.keeps(model, request_id)

    def wants(self, model: str, request_id: str) -> bool:
        """:meth:`keeps`, counting the requests it turns away in ``sampled_out`` (the gateway asks
        before it builds the record, so a request that is not logged costs nothing)."""
        if self.keeps(model, request_id):
            return True
        self.sampled_out += 1
        return False

    def submit(self, record: PredictionRecord, done: asyncio.Future[None]) -> bool:
        """Queue a record whose ``done`` resolves once it is committed (or fails with
        :class:`StoreUnavailable`); False when the queue is full (answer 503). A record its model
        samples out is not queued and ``done`` resolves at once."""
        if not self.keeps(record.model, record.request_id):
            self.sampled_out += 1
            if not done.done():
                done.set_result(None)
            return True
        return self._put((record, done))

    def offer(self, record: PredictionRecord) -> bool:
        """Queue a record nobody waits for; False when the queue is full (True, unqueued, when
        its model samples it out)."""
        if not self.keeps(record.model, record.request_id):
            self.sampled_out += 1
            return True
        return self._put((record, None))

    def _put(self, item: _Item) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.rejected += 1
            return False
        return True

    def _take(self, timeout: float) -> list[_Item]:
        batch: list[_Item] = []
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

    def _write(self, batch: list[_Item]) -> None:
        records = [rec for rec, _ in batch]
        try:
            self.store.write(records)
        except Exception as exc:
            self.write_failures += 1
            reason = f"prediction store write failed: {exc}"
            if self.degraded is None:
                log.error("%s; answering 503 until it works again", reason)
            self.degraded = reason
            self.lost_unacknowledged += sum(1 for _, fut in batch if fut is None)
            if self._on_failure is not None:
                self._on_failure(reason)
            _resolve(batch, StoreUnavailable(reason))
            return
        if self.degraded is not None:
            log.warning("prediction store writes work again (was: %s)", self.degraded)
            self.degraded = None
        self.written += len(records)
        _resolve(batch, None)
        if self._on_written is not None:
            self._on_written(records)

    def _probe(self) -> None:
        """While degraded: does a write work again? (disk space back, database up)"""
        probe = getattr(self.store, "probe", None)
        if probe is None:  # a store without a probe recovers on the next real write
            self.degraded = None
            return
        try:
            probe()
        except Exception as exc:
            self.degraded = f"prediction store write failed: {exc}"
            return
        log.warning("prediction store writes work again (was: %s)", self.degraded)
        self.degraded = None

    def _run(self) -> None:
        last_probe = 0.0
        while not self._stop.is_set():
            batch = self._take(self._flush_interval)
            if batch:
                self._write(batch)
            elif self.degraded is not None and time.monotonic() - last_probe >= self._probe_interval:
                last_probe = time.monotonic()
                self._probe()
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


def _resolve(batch: list[_Item], error: BaseException | None) -> None:
    """Wake the waiting requests: one thread-safe call per event loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, fut in batch:
        if fut is not None:
            by_loop.setdefault(fut.get_loop(), []).append(fut)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if fut.done():  # the request gave up (timeout, client gone)
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
