"""``mlops-actions compare`` through the CLI: JSON shape, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_actions.cli import main


def _log(path: Path, n: int, *, accuracy: float = 0.85, error: float = 0.02, latency: float = 40.0,
         labelled: float = 0.6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    prediction = np.where(rng.random(n) < accuracy, label, 1 - label)
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2026-12-01", periods=n, freq="s"),
        "prediction": prediction,
        "label": pd.array(np.where(rng.random(n) < labelled, label, -1), dtype="Int64"),
        "latency_ms": rng.lognormal(np.log(latency), 0.4, n).round(3),
        "error": (rng.random(n) < error).astype(int),
    })
    frame.loc[frame["label"] == -1, "label"] = pd.NA
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["compare", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_has_exactly_the_documented_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _log(tmp_path / "a.csv", 3000, accuracy=0.82, seed=1)
    b = _log(tmp_path / "b.parquet", 3000, accuracy=0.90, seed=2)
    code, out = _json(capsys, str(a), str(b), "--metric", "accuracy", "--expected-split", "0.5")
    assert code == 0
    assert list(out) == ["metric", "a", "b", "difference", "srm", "verdict", "rows_needed", "alpha",
                         "sequential", "method"]
    assert out["metric"] == "accuracy" and out["verdict"] == "b_better"
    assert set(out["a"]) == set(out["b"]) == {"n", "value"}
    assert set(out["difference"]) == {"estimate", "ci", "p_value"}
    assert set(out["srm"]) == {"p_value", "mismatch"} and out["srm"]["mismatch"] is False
    assert 1500 < out["a"]["n"] < 2100  # only the labelled rows (60%) count for accuracy
    lo, hi = out["difference"]["ci"]
    assert lo < out["difference"]["estimate"] < hi and lo > 0
    assert out["rows_needed"] is None and out["sequential"] is False


def test_srm_is_left_out_without_expected_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _log(tmp_path / "a.csv", 500, seed=1), _log(tmp_path / "b.csv", 500, seed=2)
    code, out = _json(capsys, str(a), str(b), "--metric", "error_rate")
    assert code == 0 and "srm" not in out and out["verdict"] == "no_difference"


def test_b_significantly_worse_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _log(tmp_path / "a.csv", 2000, latency=40, seed=1)
    b = _log(tmp_path / "b.csv", 2000, latency=48, seed=2)
    code, out = _json(capsys, str(a), str(b), "--metric", "latency_ms")
    assert code == 1 and out["verdict"] == "a_better"
    assert out["difference"]["estimate"] > 0  # B - A in ms: slower
    assert out["b"]["value"] == pytest.approx(float(pd.read_csv(b)["latency_ms"].median()))
    code, out = _json(capsys, str(b), str(a), "--metric", "latency_ms")  # the other way round
    assert code == 0 and out["verdict"] == "b_better"


def test_sample_ratio_mismatch_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _log(tmp_path / "a.csv", 5300, seed=1), _log(tmp_path / "b.csv", 4700, seed=2)
    code, out = _json(capsys, str(a), str(b), "--metric", "error_rate", "--expected-split", "0.5")
    assert code == 1
    assert out["srm"]["mismatch"] is True and out["srm"]["p_value"] < 1e-8
    assert out["verdict"] == "inconclusive"


def test_too_few_rows_is_inconclusive_with_rows_needed(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _log(tmp_path / "a.csv", 400, seed=1), _log(tmp_path / "b.csv", 40, labelled=0.5, seed=2)
    code, out = _json(capsys, str(a), str(b), "--metric", "accuracy", "--min-rows", "50")
    assert code == 0 and out["verdict"] == "inconclusive"
    assert out["rows_needed"] == {"a": 0, "b": 50 - out["b"]["n"]}
    assert out["difference"]["ci"] is None and out["difference"]["p_value"] is None


def test_sequential_is_wider_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _log(tmp_path / "a.csv", 2000, seed=1), _log(tmp_path / "b.csv", 2000, error=0.03, seed=2)
    _, fixed = _json(capsys, str(a), str(b), "--metric", "error_rate")
    _, seq = _json(capsys, str(a), str(b), "--metric", "error_rate", "--sequential")
    assert seq["sequential"] is True and "mSPRT" in seq["method"]
    assert seq["difference"]["p_value"] > fixed["difference"]["p_value"]
    assert np.ptp(seq["difference"]["ci"]) > np.ptp(fixed["difference"]["ci"])


def test_readable_output_is_a_sentence_and_a_table(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    a = _log(tmp_path / "a.csv", 3000, error=0.05, seed=1)
    b = _log(tmp_path / "b.csv", 3000, error=0.02, seed=2)
    assert main(["compare", str(a), str(b), "--metric", "error_rate"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("error_rate: B is better than A (B - A = -0.0")
    assert "95% CI" in first and "| A | 3000 |" in out and "verdict: b_better" in out


@pytest.mark.parametrize("content,metric,expected", [
    ("prediction,label,error\n1,1,0\n", "latency_ms", "has no column 'latency_ms'"),
    ("prediction,latency_ms,error\n1,3,0\n", "accuracy", "has no column 'label'"),
    ("prediction,label,latency_ms,error\n1,1,fast,0\n1,0,12,0\n", "latency_ms",
     "column 'latency_ms' must be numeric; found 'fast'"),
    ("prediction,label,latency_ms,error\n1,1,3,2\n", "error_rate", "column 'error' must be 0 or 1; found 2"),
    ("prediction,label,latency_ms,error\n1,1,-3,0\n", "latency_ms", "must be a non-negative number"),
    ("prediction,label,latency_ms,error\n", "error_rate", "has no rows"),
    ("", "error_rate", "cannot read"),
])
def test_bad_input_exits_2_naming_file_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  content: str, metric: str, expected: str) -> None:
    good = _log(tmp_path / "good.csv", 100)
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    assert main(["compare", str(good), str(bad), "--metric", metric]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(bad) in err and "hint:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flags,expected", [
    (["--alpha", "1.5"], "--alpha 1.5 is not in (0, 1)"),
    (["--expected-split", "50"], "--expected-split 50.0 is not in (0, 1)"),
    (["--min-rows", "0"], "--min-rows 0 is below 2"),
])
def test_bad_flags_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                          expected: str) -> None:
    good = _log(tmp_path / "good.csv", 100)
    assert main(["compare", str(good), str(good), "--metric", "accuracy", *flags]) == 2
    assert expected in capsys.readouterr().err


def test_missing_file_and_unknown_format_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _log(tmp_path / "good.csv", 100)
    assert main(["compare", str(good), str(tmp_path / "nope.csv"), "--metric", "accuracy"]) == 2
    assert "no such file" in capsys.readouterr().err
    odd = tmp_path / "b.xlsx"
    odd.write_text("x")
    assert main(["compare", str(good), str(odd), "--metric", "accuracy"]) == 2
    assert "unknown format" in capsys.readouterr().err


def test_subprocess_prints_json_on_stdout_only(tmp_path: Path) -> None:
    a, b = _log(tmp_path / "a.csv", 300, seed=1), _log(tmp_path / "b.csv", 300, seed=2)
    done = subprocess.run([sys.executable, "-m", "mlops_actions", "compare", str(a), str(b),
                           "--metric", "latency_ms", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["metric"] == "latency_ms"
