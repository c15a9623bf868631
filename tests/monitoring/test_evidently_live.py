"""``--compat evidently`` against Evidently itself on fresh data, when Evidently's venv exists.

``benchmarks/bench_drift.py`` creates ``benchmarks/.venv-evidently`` (Evidently 0.7.23 pins
numpy<2, so it cannot share our venv). Where it exists, Evidently scores new data sets (other
seeds than the recorded fixtures) in that interpreter and every case is compared to 1e-9;
elsewhere the recorded fixtures (tests/monitoring/test_drift.py) stand in.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.monitoring.evidently_compat import check_case

ROOT = Path(__file__).resolve().parents[2]
EVIDENTLY_PY = ROOT / "benchmarks" / ".venv-evidently" / "bin" / "python"
SCRIPT = ROOT / "tests" / "assets" / "monitoring" / "make_evidently_fixture.py"


@pytest.mark.skipif(not EVIDENTLY_PY.exists(),
                    reason="no benchmarks/.venv-evidently (run benchmarks/bench_drift.py once to create it)")
@pytest.mark.parametrize("seed", [101, 202])
def test_compat_evidently_matches_evidently_on_fresh_data(tmp_path: Path, seed: int) -> None:
    proc = subprocess.run([str(EVIDENTLY_PY), str(SCRIPT), str(tmp_path), "--seed", str(seed)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cases = sorted(p.stem.removeprefix("evidently_") for p in tmp_path.glob("evidently_*.json"))
    assert len(cases) >= 10
    assert sum(check_case(tmp_path, case) for case in cases) > 50
