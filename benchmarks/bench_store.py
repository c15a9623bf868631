"""Prediction logging throughput into the SQLite store (target: >= 50,000 rows/s, nothing lost).

Writes N records (10 features each, stored as JSON text) in batches through the
BatchWriter (the gateway's path) and through ``store.write`` directly, then
counts the rows. The peer in the same run is the naive logger: one INSERT and
one commit per prediction (sqlite3, WAL), on a smaller sample.

    /work/venv/bin/python benchmarks/bench_store.py [--rows 200000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mlops_actions.monitoring.store import BatchWriter, PredictionRecord, open_store


def records(n: int, seed: int = 0) -> list[PredictionRecord]:
    now = time.time()
    return [PredictionRecord(
        request_id=uuid.uuid4().hex, model="churn", version="1.2.0", timestamp=now + i * 1e-3,
        features={f"f{j}": (i * 7 + j) % 1000 / 10.0 for j in range(8)} | {"city": "paris", "plan": "pro"},
        output=i % 2, latency_ms=3.5, environment="production", variant="stable") for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--naive-rows", type=int, default=5_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    recs = records(args.rows)

    store = open_store(f"sqlite:///{tmp / 'direct.db'}")
    t0 = time.perf_counter()
    new = sum(store.write(recs[i:i + args.batch]) for i in range(0, len(recs), args.batch))
    direct = time.perf_counter() - t0
    assert new == args.rows == store.count(), (new, store.count())
    store.close()

    store = open_store(f"sqlite:///{tmp / 'writer.db'}")
    t0 = time.perf_counter()
    writer = BatchWriter(store, batch_size=args.batch, interval=0.05)
    for r in recs:
        writer.submit(r)
    stats = writer.close()
    via_writer = time.perf_counter() - t0
    assert stats.written == args.rows == store.count() and stats.dropped == 0, stats
    store.close()

    # peer: one INSERT + commit per prediction
    conn = sqlite3.connect(tmp / "naive.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE p (request_id TEXT PRIMARY KEY, model TEXT, version TEXT, ts REAL, "
                 "features TEXT, output TEXT, latency_ms REAL)")
    sample = recs[: args.naive_rows]
    t0 = time.perf_counter()
    for r in sample:
        conn.execute("INSERT INTO p VALUES (?,?,?,?,?,?,?)", (r.request_id, r.model, r.version, r.timestamp,
                     json.dumps(dict(r.features)), json.dumps(r.output), r.latency_ms))
        conn.commit()
    naive = time.perf_counter() - t0
    conn.close()

    d_rate, w_rate, n_rate = args.rows / direct, args.rows / via_writer, len(sample) / naive
    print(f"rows={args.rows} batch={args.batch} (10 features as JSON text, SQLite WAL, synchronous=NORMAL)")
    print(f"store.write batches : {d_rate:>10,.0f} rows/s  ({direct:.2f} s), lost 0")
    print(f"BatchWriter (thread): {w_rate:>10,.0f} rows/s  ({via_writer:.2f} s), lost 0, dropped 0")
    print(f"naive row-by-row    : {n_rate:>10,.0f} rows/s  ({naive:.2f} s for {len(sample)} rows)")
    print(f"ratio batched/naive : {d_rate / n_rate:.1f}x; target 50,000 rows/s: "
          f"{'met' if min(d_rate, w_rate) >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
