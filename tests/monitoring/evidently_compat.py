"""Compare ``DriftOptions(compat="evidently")`` with Evidently's own scores written by
``tests/assets/monitoring/make_evidently_fixture.py`` (recorded, or fresh in the live test)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlops_actions.monitoring.columnar import detect_drift_files
from mlops_actions.monitoring.drift import DriftOptions, DriftReport, detect_drift

TOLERANCE = 1e-9


def options(case: dict[str, object]) -> DriftOptions:
    ours = dict(case["ours"])  # type: ignore[call-overload]
    if "features" in ours:
        ours["features"] = tuple(ours["features"])
    return DriftOptions(compat="evidently", **ours)


def check_case(directory: Path, case_name: str) -> int:
    """Every column's method, score (to 1e-9) and decision, and the drift share, through the
    DataFrame API and the file path; returns the number of columns compared."""
    case = json.loads((directory / f"evidently_{case_name}.json").read_text())
    ref_path = directory / f"evidently_{case['data']}_ref.csv"
    cur_path = directory / f"evidently_{case['data']}_cur.csv"
    opts = options(case)
    reports: dict[str, DriftReport] = {
        "frames": detect_drift(pd.read_csv(ref_path), pd.read_csv(cur_path), opts),
        "files": detect_drift_files(ref_path, cur_path, opts),
    }
    expected = case["columns"]
    assert expected, case_name
    for path, report in reports.items():
        ours = {c.column: c for c in report.columns}
        assert set(ours) == set(expected), (case_name, path)
        for name, exp in expected.items():
            col = ours[name]
            where = f"{case_name} {path} {name}"
            assert col.method == exp["method"], where
            assert col.statistic == pytest.approx(exp["value"], abs=TOLERANCE, rel=0), where
            assert col.threshold == pytest.approx(exp["threshold"]), where
            assert col.drifted == exp["drifted"], where
        assert report.share == pytest.approx(case["share"]), (case_name, path)
    return len(expected)
