"""benchmarks/run and the rounds protocol, on tiny sizes (the full run takes tens of minutes and
needs the peers' venvs; `benchmarks/run --quick` is the manual smoke run)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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
