"""benchmarks/run and the rounds protocol, on tiny sizes (the full run takes tens of minutes and
needs the peers' venvs; `benchmarks/run --quick` is the manual smoke run)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

from rounds import order, ratio_row, spread  # noqa: E402


def test_rounds_alternate_and_ratios_are_summarised() -> None:
    assert [order(r, ["ours", "peer"]) for r in range(3)] == [["ours", "peer"], ["peer", "ours"],
                                                             ["ours", "peer"]]
    assert spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0}
    row = ratio_row("b", "c", "peer time / ours", "p", [30.0, 10.0, 25.0], same_work=True, goal=20)
    assert (row["median"], row["goal_met"], row["rounds"]) == (25.0, True, 3)
    low = ratio_row("b", "c", "peak / peer's", "p", [0.3, 0.2, 0.4], same_work=True, goal=0.25,
                    lower_is_better=True)
    assert low["goal_met"] is False


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_every_benchmark_module_imports(script: str) -> None:
    spec = importlib.util.spec_from_file_location(script[:-3], BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main)


def test_one_tiny_round_of_the_store_benchmark_feeds_run(tmp_path: Path) -> None:
    """bench_store --quick: 3 rounds in alternating order against a same-work (batched) peer and the
    naive one; `run --from` turns its rows into results.md and results.png."""
    proc = subprocess.run([sys.executable, str(BENCH / "bench_store.py"), "--quick", "--json",
                           str(tmp_path / "store.json"), "--dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=BENCH, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "store.json").read_text())
    assert [(r["peer"], r["same_work"], r["rounds"]) for r in rows] == [
        ("sqlite3 batched by hand", True, 3), ("sqlite3 row by row (naive)", False, 3)]
    assert all(r["min"] <= r["median"] <= r["max"] and r["min"] > 0 for r in rows)
    assert "round 2: " in proc.stdout  # every round is printed

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(BENCH / "run"), "--from", str(tmp_path), "--only", "store",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (out / "results.md").read_text()
    assert "| prediction logging | 5,000 rows | our rows/s / theirs | sqlite3 batched by hand | " \
           "**same work** | 3 |" in md
    assert "sqlite3 row by row (naive) | tool users pick" in md
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_refuses_unknown_benchmarks_and_too_few_rounds() -> None:
    for args, message in ((["--only", "nope"], "unknown benchmark"), (["--rounds", "2"], "at least 3")):
        proc = subprocess.run([sys.executable, str(BENCH / "run"), *args], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2 and message in proc.stderr


# ------------------------------------------------------------------ serving (bench_serving.py)

import bench_serving  # noqa: E402
from rounds import rotate  # noqa: E402

#: ``wrk --latency`` output in wrk 4.x's format (as in wrk's README, plus the seconds unit wrk
#: prints for slow requests and the error lines it adds only when there are errors).
WRK_OUT = """Running 6s test @ http://127.0.0.1:8080/invocations
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    41.14ms   12.92ms   1.20s    93.69%
    Req/Sec   188.20     20.07   220.00     86.54%
  Latency Distribution
     50%  250.00us
     75%   41.00ms
     90%   70.00ms
     99%    1.20s
  2254 requests in 6.00s, 0.50MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    375.66
Transfer/sec:     85.33KB
"""


def test_rotate_puts_each_side_first_in_turn() -> None:
    assert [rotate("abcd", r)[0] for r in range(5)] == ["a", "b", "c", "d", "a"]
    assert rotate(["x", "y", "z"], 1) == ["y", "z", "x"]


def test_wrk_output_is_parsed_in_milliseconds() -> None:
    got = bench_serving.parse_wrk(WRK_OUT)
    assert got == {"rps": 375.66, "p50": 0.25, "p99": 1200.0, "non2xx": 3.0,
                   "errors": "connect 0, read 0, write 0, timeout 2"}
    with pytest.raises(SystemExit, match="cannot parse wrk output"):
        bench_serving.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def _round(ours_rps: dict[int, float], p99_16: float, peer_p50_16: float, bare_s: float) -> dict[str, object]:
    wrk = {}
    for key in bench_serving.SERVERS:
        endpoint = "v2" if key == "mlserver-adaptive" else "invocations"
        for conns in bench_serving.CONNECTIONS:
            wrk[f"{key}/{endpoint}/{conns}"] = {"rps": 10.0, "p50": peer_p50_16, "p99": 2 * peer_p50_16}
    wrk["mlserver/v2/1"] = {"rps": 20.0, "p50": 5.0, "p99": 9.0}  # MLServer's best mode at 1 conn
    for conns, rps in ours_rps.items():
        wrk[f"ours/invocations/{conns}"] = {"rps": rps, "p50": 1.0, "p99": p99_16 if conns == 16 else 1.0}
    return {"wrk": wrk, "bare_s": bare_s, "cold": dict.fromkeys(bench_serving.SERVERS, 2.0),
            "mem_mb": dict.fromkeys(bench_serving.SERVERS, 100.0)}


def test_serving_rows_follow_the_goals_of_issue_19() -> None:
    """Best mode is the fastest MLServer endpoint; the tail goal holds only if every round is below
    the peer's p50 (a median above 1 is not enough); the p99 spread is max / min over rounds; time
    per request at one connection is 1 / requests/s over the bare predict."""
    rounds = [_round({1: 40.0, 16: 300.0, 64: 600.0}, p99_16=50.0, peer_p50_16=100.0, bare_s=0.01),
              _round({1: 40.0, 16: 300.0, 64: 600.0}, p99_16=150.0, peer_p50_16=100.0, bare_s=0.01),
              _round({1: 40.0, 16: 300.0, 64: 600.0}, p99_16=60.0, peer_p50_16=100.0, bare_s=0.01)]
    rows = {(r["case"], r["peer"]): r for r in bench_serving.rows_for("lr", rounds)}
    assert rows[("LR pipeline, 1 conn", "mlflow models serve (1 worker)")]["median"] == 4.0
    best = rows[("LR pipeline, 1 conn", "MLServer 1.7.1, best mode")]
    assert (best["median"], best["goal"], best["goal_met"]) == (2.0, 2, True)
    adaptive = rows[("LR pipeline, 64 conn", "MLServer 1.7.1, adaptive batching (V2)")]
    assert (adaptive["median"], adaptive["goal_met"]) == (60.0, True)
    tail = rows[("LR pipeline, 16 conn, tail", "mlflow models serve (1 worker)")]
    assert tail["median"] == 100 / 60 and tail["goal_met"] is False  # round 2: p99 150 > p50 100
    spread_row = rows[("LR pipeline, 16 conn, our p99 over rounds", "(ours across rounds)")]
    assert (spread_row["median"], spread_row["rounds"], spread_row["goal_met"]) == (3.0, 3, False)
    per_request = rows[("LR pipeline, 1 conn, time per request",
                        "the model's own predict (one-row DataFrame)")]
    assert per_request["median"] == pytest.approx(2.5) and per_request["goal_met"] is False
    assert per_request["same_work"] is True


def test_tree_memory_sums_the_children(tmp_path: Path) -> None:
    """A parent that starts a child holding 200 MB: the tree's peak includes the child."""
    child = "x = bytearray(200 * 1024 * 1024); import time; time.sleep(60)"
    parent = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
              "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    memory = bench_serving.TreeMemory(every=0.05)
    try:
        memory.watch("tree", proc.pid)
        deadline = time.monotonic() + 60
        while memory.peak_kb["tree"] < 200 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert memory.peak_kb["tree"] >= 200 * 1024
        assert bench_serving._rss_kb(proc.pid) < 100 * 1024  # the parent alone is small
    finally:
        memory.close()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_cpu_of_a_run_goes_to_the_server_tree_and_not_to_others() -> None:
    """A parent whose child spins for a second: the CPU lands on the server's tree (children
    included), not on "others", which is what the serving benchmark prints beside a slow round."""
    child = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass\ntime.sleep(60)"
    parent = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
              "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    try:
        before = bench_serving._cpu_snapshot(proc.pid)
        time.sleep(2.0)
        used = bench_serving._cpu_used(before, bench_serving._cpu_snapshot(proc.pid))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # about 1 s of CPU in 2 s; the parent alone takes ~0.02 (a busy machine gives the child less)
    assert 0.1 <= used["server_cores"] <= 0.8
    assert used["others_cores"] < used["server_cores"]
