"""Prediction logging throughput into the SQLite store (target: >= 50,000 rows/s, nothing lost).

Writes N records (10 features each, stored as JSON text) in batches through the
BatchWriter (the gateway's path) and through ``store.write`` directly, then
counts the rows. The peer in the same run is the naive logger: one INSERT and
one commit per prediction (sqlite3, WAL), on a smaller sample.

Wall-clock rates depend on what else runs on the machine (the shared 2-core
box runs other test suites); the cpu-seconds figure is what the store costs.

Then ``--rounds`` rounds (default 3) in alternating order of the gateway's path
(``BatchWriter``, time-ordered ids) against two peers on the same records: the
naive logger (row by row) and a **batched** one doing the same work by hand
(sqlite3 WAL, ``executemany`` of JSON-encoded rows, one transaction per batch,
primary key on the request id): min / median / max of our rate / theirs.

    .venv/bin/python benchmarks/bench_store.py [--rows 200000] [--batch 1000] [--rounds 3]
        [--json rows.json] [--quick]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import order, ratio_row, write_rows

from mlops_actions.monitoring.store import (
    BatchWriter,
    PredictionRecord,
    new_request_id,
    open_store,
)


def records(n: int, ids: str = "uuid4") -> list[PredictionRecord]:
    now = time.time()
    make = new_request_id if ids == "uuid7" else (lambda: str(uuid.uuid4()))
    return [PredictionRecord(
        request_id=make(), model="churn", version="1.2.0", timestamp=now + i * 1e-3,
        features={f"f{j}": (i * 7 + j) % 1000 / 10.0 for j in range(8)} | {"city": "paris", "plan": "pro"},
        output=i % 2, latency_ms=3.5, environment="production", variant="stable") for i in range(n)]


def _ours(recs: list[PredictionRecord], path: Path) -> float:
    store = open_store(f"sqlite:///{path}")
    t0 = time.perf_counter()
    writer = BatchWriter(store)
    for r in recs:
        writer.submit(r)
    stats = writer.close()
    rate = len(recs) / (time.perf_counter() - t0)
    assert stats.written == len(recs) == store.count() and stats.dropped == 0, stats
    store.close()
    return rate


def _peer(recs: list[PredictionRecord], path: Path, batch: int) -> float:
    """By hand, same work: JSON-encode each row, executemany + commit per batch (WAL)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE p (request_id TEXT PRIMARY KEY, model TEXT, version TEXT, ts REAL, "
                 "features TEXT, output TEXT, latency_ms REAL, status INT, environment TEXT, variant TEXT)")
    t0 = time.perf_counter()
    for i in range(0, len(recs), batch):
        conn.executemany("INSERT OR IGNORE INTO p VALUES (?,?,?,?,?,?,?,?,?,?)", [
            (r.request_id, r.model, r.version, r.timestamp, json.dumps(dict(r.features)),
             json.dumps(r.output), r.latency_ms, r.status, r.environment, r.variant)
            for r in recs[i:i + batch]])
        conn.commit()
    rate = len(recs) / (time.perf_counter() - t0)
    assert conn.execute("SELECT count(*) FROM p").fetchone()[0] == len(recs)
    conn.close()
    return rate


def _naive(recs: list[PredictionRecord], path: Path) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE p (request_id TEXT PRIMARY KEY, model TEXT, version TEXT, ts REAL, "
                 "features TEXT, output TEXT, latency_ms REAL)")
    t0 = time.perf_counter()
    for r in recs:
        conn.execute("INSERT INTO p VALUES (?,?,?,?,?,?,?)", (r.request_id, r.model, r.version, r.timestamp,
                     json.dumps(dict(r.features)), json.dumps(r.output), r.latency_ms))
        conn.commit()
    rate = len(recs) / (time.perf_counter() - t0)
    conn.close()
    return rate


def rounds(args: argparse.Namespace, tmp: Path) -> list[dict[str, object]]:
    recs = records(args.rows, "uuid7")
    naive_recs = recs[:args.naive_rows]
    batched, naive = [], []
    for r in range(args.rounds):
        rates: dict[str, float] = {}
        for side in order(r, ["ours", "batched", "naive"]):
            db = tmp / f"round{r}-{side}.db"
            if side == "ours":
                rates[side] = _ours(recs, db)
            elif side == "batched":
                rates[side] = _peer(recs, db, args.batch)
            else:
                rates[side] = _naive(naive_recs, db)
        print(f"round {r + 1}: BatchWriter {rates['ours']:,.0f} rows/s, batched by hand "
              f"{rates['batched']:,.0f}, naive {rates['naive']:,.0f}", flush=True)
        batched.append(rates["ours"] / rates["batched"])
        naive.append(rates["ours"] / rates["naive"])
    case = f"{args.rows:,} rows"
    return [ratio_row("prediction logging", case, "our rows/s / theirs", "sqlite3 batched by hand",
                      batched, same_work=True),
            ratio_row("prediction logging", case, "our rows/s / theirs", "sqlite3 row by row (naive)",
                      naive, same_work=False)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--naive-rows", type=int, default=3_000)
    ap.add_argument("--dir", default=None, help="where the databases go (default: a temp dir)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None, metavar="PATH", help="write the ratio rows here")
    ap.add_argument("--quick", action="store_true", help="small sizes, rounds only (a smoke run)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(dir=args.dir))
    if args.quick:
        args.rows, args.naive_rows = 5_000, 300
        write_rows(args.json, rounds(args, tmp))
        return
    write_rows(args.json, rounds(args, tmp))
    results: dict[str, float] = {}
    for ids in ("uuid4", "uuid7"):
        recs = records(args.rows, ids)
        for batch in (args.batch, 10_000):
            store = open_store(f"sqlite:///{tmp / f'direct-{ids}-{batch}.db'}")
            t0, c0 = time.perf_counter(), time.process_time()
            new = sum(store.write(recs[i:i + batch]) for i in range(0, len(recs), batch))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert new == args.rows == store.count(), (new, store.count())
            store.close()
            results[f"write {ids} batch={batch}"] = args.rows / wall
            print(f"store.write, {ids} ids, batches of {batch:>6}: {args.rows / wall:>9,.0f} rows/s "
                  f"(wall {wall:.2f} s, cpu {cpu:.2f} s = {args.rows / cpu:,.0f} rows/cpu-s), lost 0")
        store = open_store(f"sqlite:///{tmp / f'writer-{ids}.db'}")
        t0, c0 = time.perf_counter(), time.process_time()
        writer = BatchWriter(store)
        for r in recs:
            writer.submit(r)
        stats = writer.close()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert stats.written == args.rows == store.count() and stats.dropped == 0, stats
        store.close()
        results[f"writer {ids}"] = args.rows / wall
        print(f"BatchWriter (gateway path), {ids} ids   : {args.rows / wall:>9,.0f} rows/s "
              f"(wall {wall:.2f} s incl. submit, cpu {cpu:.2f} s), lost 0, dropped 0")

    # peer: one INSERT + commit per prediction
    conn = sqlite3.connect(tmp / "naive.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE p (request_id TEXT PRIMARY KEY, model TEXT, version TEXT, ts REAL, "
                 "features TEXT, output TEXT, latency_ms REAL)")
    sample = records(args.naive_rows)
    t0 = time.perf_counter()
    for r in sample:
        conn.execute("INSERT INTO p VALUES (?,?,?,?,?,?,?)", (r.request_id, r.model, r.version, r.timestamp,
                     json.dumps(dict(r.features)), json.dumps(r.output), r.latency_ms))
        conn.commit()
    naive = len(sample) / (time.perf_counter() - t0)
    conn.close()
    print(f"peer: naive row-by-row commit, uuid4     : {naive:>9,.0f} rows/s ({len(sample)} rows)")
    best4 = max(v for k, v in results.items() if "uuid4" in k)
    print(f"ratio BatchWriter/naive: {results['writer uuid4'] / naive:.1f}x (uuid4), "
          f"{results['writer uuid7'] / naive:.1f}x (uuid7)")
    verdict = {k: "met" if v >= 50_000 else "NOT met" for k, v in results.items()}
    print(f"target 50,000 rows/s: gateway path uuid7 {verdict['writer uuid7']}, "
          f"uuid4 {verdict['writer uuid4']} (best uuid4 {best4:,.0f})")


if __name__ == "__main__":
    main()
