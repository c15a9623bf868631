"""The PostgreSQL prediction store behind the fault proxy: resets and cut answers mid-batch.

Real server on 127.0.0.1:5432, a database of this module's own, the gateway's
:class:`BatchWriter` in front of :class:`PostgresStore`, the proxy in between. Proven: no
duplicate and no lost prediction whichever round trip of a batch fails (``BEGIN``, an
``INSERT`` page, ``COMMIT`` — including a commit whose answer was lost), a clear
``StoreError`` after the bound, and the password never in a message or a log line.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator

import pytest

from mlops_actions.cli import exit_code_for
from mlops_actions.errors import EXIT_EXTERNAL
from mlops_actions.monitoring.store import BatchWriter, PredictionRecord, StoreError
from mlops_actions.monitoring.store.postgres import PostgresStore
from tests.conftest import postgres_database
from tests.reliability.faultproxy import FaultKind, FaultProxy
from tests.reliability.figures import record

pytestmark = pytest.mark.postgres

PASSWORD = "s3cret-Pw-never-printed"  # trust auth ignores it; it must still never be printed
BATCH = 2500  # rows per flush: 3 INSERT pages of 1000 (execute_values' page size)
ROUND_TRIPS_PER_WRITE = 6  # BEGIN, 3 INSERT pages, the pending-labels probe, COMMIT


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_database("mlops_faults") as name:
        yield name


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy(5432) as p:
        yield p


def url(proxy: FaultProxy, database: str) -> str:
    return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{proxy.port}/{database}?sslmode=disable"


def rec(model: str, i: int) -> PredictionRecord:
    return PredictionRecord(f"{model}-{i:06d}", model, "1.0.0", 1_000_000.0 + i, {"x": i}, output=i % 2)


def stored(database: str, model: str) -> tuple[int, int]:
    """(rows, distinct request ids) of ``model``, read on a direct connection (no proxy)."""
    import psycopg2

    conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT request_id) FROM predictions WHERE model = %s",
                        (model,))
            rows, distinct = cur.fetchone()
    finally:
        conn.close()
    return int(rows), int(distinct)


def test_batches_through_resets_and_cuts_lose_nothing_and_duplicate_nothing(
        proxy: FaultProxy, database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(9)
    store = PostgresStore(url(proxy, database), retry_wait=0.05)
    model = f"m_{uuid.uuid4().hex[:8]}"
    writer = BatchWriter(store, batch_size=BATCH, interval=3600)  # flushed by the test, not the timer
    kinds: list[FaultKind] = ["reset", "cut", "refuse"]
    batches = 24
    start = proxy.exchanges
    store.write([rec(f"{model}-probe", i) for i in range(BATCH)])  # a clean write: its round trips
    assert proxy.exchanges - start == ROUND_TRIPS_PER_WRITE
    connections = proxy.connections
    started = time.monotonic()
    for b in range(batches):
        for i in range(b * BATCH, (b + 1) * BATCH):
            assert writer.submit(rec(model, i))
        kind = kinds[b % len(kinds)]
        # aim at one round trip of this write: BEGIN, an INSERT page, the probe or the COMMIT
        proxy.inject(kind, after=rng.randrange(ROUND_TRIPS_PER_WRITE), nbytes=3)
        if b % 6 == 5:  # and now and then a second fault while it reconnects
            proxy.inject("refuse")
        writer.flush()
        proxy.clear()
    final = writer.close()
    elapsed = time.monotonic() - started
    rows, distinct = stored(database, model)
    submitted = batches * BATCH
    assert (rows, distinct) == (submitted, submitted)  # nothing lost, nothing twice
    assert final.pending == 0 and final.dropped == 0
    faults = proxy.total_faults()
    reconnects = proxy.connections - connections
    assert faults >= batches and reconnects >= batches
    messages = [r.getMessage() for r in caplog.records]
    assert all(PASSWORD not in m for m in messages)
    store.close()
    record("postgres-batches-under-faults", "faults",
           f"PostgreSQL store: {batches} batches of {BATCH} predictions with {faults} resets, cut answers "
           f"and refused reconnects aimed at BEGIN, INSERT pages and COMMIT: {rows}/{submitted} rows "
           f"stored, 0 duplicates, 0 lost ({reconnects} reconnects by the store, {final.failures} batches "
           "left to the writer's next flush)",
           batches=batches, rows_submitted=submitted, rows_stored=rows, distinct=distinct,
           faults_injected=faults, by_kind=dict(proxy.injected), writer_failures=final.failures,
           reconnects=reconnects,
           seconds=round(elapsed, 2))


def test_outage_gives_a_clear_store_error_and_the_writer_keeps_the_batch(
        proxy: FaultProxy, database: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    store = PostgresStore(url(proxy, database), retry_wait=0.05, connect_timeout=2)
    model = f"m_{uuid.uuid4().hex[:8]}"
    proxy.inject("refuse", times=10_000)  # the server is gone: the query and every reconnect refused
    before = proxy.exchanges
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        store.write([rec(model, i) for i in range(10)])
    elapsed = time.monotonic() - started
    attempts = proxy.exchanges - before
    message = str(err.value)
    assert exit_code_for(err.value) == EXIT_EXTERNAL
    assert message.startswith("prediction store postgresql://postgres:***@127.0.0.1:")
    assert "connection lost during write after 3 attempts" in message
    assert PASSWORD not in message and "Traceback" not in message
    assert attempts == 3 and elapsed < 10  # the write, then 2 reconnects
    print(message)
    # the gateway's writer keeps what it could not write, then writes it when the server is back
    writer = BatchWriter(store, batch_size=100, interval=3600)
    for i in range(250):
        writer.submit(rec(model, i))
    assert writer.flush() == 0
    assert writer.stats().pending == 250 and writer.stats().failures == 1
    proxy.clear()
    final = writer.close()
    assert final.pending == 0 and stored(database, model) == (250, 250)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)
    store.close()
    record("postgres-gives-up-bounded", "faults",
           f"PostgreSQL store down: StoreError after {attempts} attempts in {elapsed:.2f} s naming the URL "
           "with the password as ***; the gateway's writer kept the 250 queued predictions and wrote "
           "them all when the server was back", attempts=attempts, seconds=round(elapsed, 2),
           queued=250, written_after=250)


def test_latency_only_slows_writes(proxy: FaultProxy, database: str) -> None:
    store = PostgresStore(url(proxy, database), retry_wait=0.05)
    model = f"m_{uuid.uuid4().hex[:8]}"
    proxy.latency, proxy.chunk_latency = 0.2, 0.02
    proxy.drop_connections()
    started = time.monotonic()
    assert store.write([rec(model, i) for i in range(BATCH)]) == BATCH
    slow = time.monotonic() - started
    proxy.clear()
    assert stored(database, model) == (BATCH, BATCH)
    store.close()
    record("postgres-latency", "faults",
           f"PostgreSQL store through +0.2 s per connection and +20 ms per chunk: a {BATCH}-row batch "
           f"written in {slow:.2f} s, no error, no duplicate", seconds=round(slow, 2), rows=BATCH)


def test_a_server_that_never_answers_is_bounded(proxy: FaultProxy, database: str) -> None:
    """libpq has no read timeout: without the store's watchdog this write would hang forever."""
    store = PostgresStore(url(proxy, database), retry_wait=0.05, connect_timeout=1, op_timeout=1.0)
    model = f"m_{uuid.uuid4().hex[:8]}"
    proxy.inject("blackhole", times=10_000)  # every query and every reconnect swallowed
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        store.write([rec(model, i) for i in range(10)])
    elapsed = time.monotonic() - started
    message = str(err.value)
    assert exit_code_for(err.value) == EXIT_EXTERNAL and PASSWORD not in message
    assert "connection lost during write after 3 attempts" in message
    # one write (1 s deadline), two reconnects (1 s connect timeout each), the waits between
    assert elapsed < 15, elapsed
    proxy.clear()
    proxy.drop_connections()
    assert store.write([rec(model, i) for i in range(10)]) == 10  # and it recovers by itself
    assert stored(database, model) == (10, 10)
    store.close()
    record("postgres-hung-server-bounded", "faults",
           f"PostgreSQL server that accepts and never answers (queries and reconnects swallowed): "
           f"StoreError after 3 attempts in {elapsed:.1f} s (1 s per-transaction deadline, 1 s connect "
           "timeout), then writes again once it answers", seconds=round(elapsed, 2))
