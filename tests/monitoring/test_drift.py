"""Drift: Evidently-compatible choices and values, our fixes, and bad input never stopping the run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mlops_actions.monitoring.drift import (
    DriftOptions,
    choose_method,
    detect_drift,
    detect_prediction_drift,
    wasserstein_sorted,
)
from mlops_actions.monitoring.profile import ReferenceProfile, infer_kind
from mlops_actions.monitoring.verdict import Verdict
from tests.monitoring.evidently_compat import check_case

ASSETS = Path(__file__).parent.parent / "assets" / "monitoring"


def _evidently(name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    ref = pd.read_csv(ASSETS / f"evidently_{name}_ref.csv")
    cur = pd.read_csv(ASSETS / f"evidently_{name}_cur.csv")
    return ref, cur, json.loads((ASSETS / f"evidently_{name}.json").read_text())


def test_large_reference_matches_evidently_method_value_and_decision() -> None:
    """Recorded from Evidently 0.7.23 (tests/assets/monitoring/make_evidently_fixture.py)."""
    ref, cur, expected = _evidently("large")
    ours = {c.column: c for c in detect_drift(ref, cur, DriftOptions(js_base=math.e)).columns}
    for name, exp in expected["columns"].items():
        col = ours[name]
        assert col.method == exp["method"], name
        assert col.drifted == exp["drifted"], name
        assert col.statistic == pytest.approx(exp["value"], abs=1e-9), name
    report = detect_drift(ref, cur)  # default: JS in base 2 -> same decisions here, values x 1/sqrt(ln 2)
    assert report.share == pytest.approx(expected["share"])
    js = {c.column: c.statistic for c in report.columns if c.method == "jensenshannon"}
    for name, value in js.items():
        assert value == pytest.approx(expected["columns"][name]["value"] / math.sqrt(math.log(2)), rel=1e-9)


CASES = sorted(p.stem.removeprefix("evidently_") for p in ASSETS.glob("evidently_*.json"))


@pytest.mark.parametrize("case", CASES)
def test_compat_evidently_reproduces_every_score(case: str) -> None:
    """drift --compat evidently: Evidently 0.7.23's method, score (to 1e-9) and decision for each
    column, default and explicit methods, with missing values and infinities
    (tests/assets/monitoring/make_evidently_fixture.py recorded them from Evidently itself)."""
    assert check_case(ASSETS, case) > 0


def test_compat_evidently_cases_cover_every_method() -> None:
    methods = {c["method"] for case in CASES
               for c in json.loads((ASSETS / f"evidently_{case}.json").read_text())["columns"].values()}
    assert methods == {"ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"}


def test_compat_evidently_differs_from_the_default_where_documented() -> None:
    ref, cur, _ = _evidently("large")
    default = {c.column: c for c in detect_drift(ref, cur).columns}
    compat = {c.column: c for c in detect_drift(ref, cur, DriftOptions(compat="evidently")).columns}
    for name, col in compat.items():
        if col.method == "jensenshannon":  # base e vs base 2
            assert default[name].statistic == pytest.approx(col.statistic / math.sqrt(math.log(2)), rel=1e-12)
        else:
            assert default[name].statistic == col.statistic
    with pytest.raises(ValueError, match="compat 'bogus'"):
        DriftOptions(compat="bogus")  # type: ignore[arg-type]


def test_small_reference_matches_evidently_tests() -> None:
    ref, cur, expected = _evidently("small")
    compat = {c.column: c for c in detect_drift(ref, cur, DriftOptions(chisquare="evidently")).columns}
    for name, exp in expected["columns"].items():
        assert compat[name].method == exp["method"], name
        assert compat[name].statistic == pytest.approx(exp["value"], rel=1e-6, abs=1e-12), name
        assert compat[name].drifted == exp["drifted"], name
    ours = {c.column: c for c in detect_drift(ref, cur).columns}  # contingency chi-square
    for name in ("num_shift", "num_few", "cat_shift", "num_same", "int_cat"):
        assert ours[name].drifted == expected["columns"][name]["drifted"], name


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=80),
       st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=80))
def test_wasserstein_equals_scipy(a: list[float], b: list[float]) -> None:
    ours = wasserstein_sorted(np.sort(a), np.sort(b))
    assert ours == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)


def test_wasserstein_with_ties_and_unequal_sizes() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 30, 5000).astype(float), rng.normal(10, 5, 777).round(1)
    assert wasserstein_sorted(np.sort(a), np.sort(b)) == pytest.approx(stats.wasserstein_distance(a, b),
                                                                       abs=1e-9)


@pytest.mark.parametrize(("kind", "n", "k", "method"), [
    ("numeric", 1000, 6, "ks"), ("numeric", 1000, 5, "chisquare"), ("numeric", 500, 2, "z"),
    ("categorical", 10, 3, "chisquare"), ("categorical", 10, 2, "z"), ("categorical", 10, 1, "z"),
    ("numeric", 1001, 6, "wasserstein"), ("numeric", 1001, 5, "jensenshannon"),
    ("categorical", 5000, 2, "jensenshannon"),
])
def test_method_choice_follows_evidently(kind: str, n: int, k: int, method: str) -> None:
    assert choose_method(kind, n, k) == method


def test_kind_inference_follows_evidently() -> None:
    assert infer_kind(pd.Series([1.0, 2.0])) == "numeric"
    assert infer_kind(pd.Series(list(range(10)) * 3)) == "categorical"
    assert infer_kind(pd.Series(list(range(11)) * 3)) == "numeric"
    assert infer_kind(pd.Series(["a", "b"] * 10)) == "categorical"
    assert infer_kind(pd.Series([f"id{i}" for i in range(20)])) == "text"
    assert infer_kind(pd.Series([True, False])) == "categorical"
    assert infer_kind(pd.Series([1, "a", 2.5], dtype=object)) == "unknown"


def test_js_base_2_is_bounded_by_one() -> None:
    ref = pd.DataFrame({"c": ["a"] * 2000})
    cur = pd.DataFrame({"c": ["b"] * 2000})
    col = detect_drift(ref, cur).columns[0]
    assert col.method == "jensenshannon" and col.statistic == pytest.approx(1.0)
    assert col.unseen_categories == ("b",) and col.unseen_share == 1.0


def test_contingency_chisquare_survives_unseen_and_rare_categories() -> None:
    ref = pd.DataFrame({"c": ["a"] * 300 + ["b"] * 300 + ["rare"] * 2})
    cur = pd.DataFrame({"c": ["a"] * 150 + ["b"] * 150 + ["new"] * 3})
    ours = detect_drift(ref, cur).columns[0]
    assert ours.method == "chisquare" and 0 < ours.statistic <= 1 and ours.drifted is False
    compat = detect_drift(ref, cur, DriftOptions(chisquare="evidently")).columns[0]
    # Evidently's goodness-of-fit divides by a zero expected count for "new"
    assert compat.verdict is Verdict.ERROR or compat.drifted is True


def test_psi_is_reported_beside_and_grows_with_shift() -> None:
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 5000)})
    near = detect_drift(ref, pd.DataFrame({"x": rng.normal(0, 1, 5000)})).columns[0]
    far = detect_drift(ref, pd.DataFrame({"x": rng.normal(1, 1, 5000)})).columns[0]
    assert near.psi is not None and far.psi is not None and near.psi < 0.02 < 0.25 < far.psi


def test_corrections_adjust_p_values() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({f"x{i}": rng.normal(0, 1, 300) for i in range(10)})
    cur = pd.DataFrame({f"x{i}": rng.normal(0.25 if i == 0 else 0, 1, 300) for i in range(10)})
    raw = {c.column: c.statistic for c in detect_drift(ref, cur).columns}
    bonf = {c.column: c for c in detect_drift(ref, cur, DriftOptions(correction="bonferroni")).columns}
    bh = {c.column: c for c in detect_drift(ref, cur, DriftOptions(correction="benjamini_hochberg")).columns}
    for name, p in raw.items():
        assert bonf[name].p_adjusted == pytest.approx(min(1.0, p * 10))
        assert raw[name] <= bh[name].p_adjusted <= bonf[name].p_adjusted  # type: ignore[operator]
    ps = np.array(sorted(raw.values()))
    assert min(c.p_adjusted for c in bh.values()) == pytest.approx(  # type: ignore[type-var]
        min(np.minimum.accumulate((ps * 10 / np.arange(1, 11))[::-1])[::-1]))


def test_dataset_drift_share_is_configurable() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({f"x{i}": rng.normal(0, 1, 2000) for i in range(4)})
    cur = ref.copy()
    cur["x0"] = cur["x0"] + 1
    assert detect_drift(ref, cur).dataset_drift is False  # 1/4 < 0.5
    report = detect_drift(ref, cur, DriftOptions(drift_share=0.25))
    assert report.dataset_drift is True and report.verdict is Verdict.FAILED
    assert report.worst_first()[0].column == "x0"


def test_bad_columns_get_a_verdict_and_never_stop_the_others() -> None:
    rng = np.random.default_rng(5)
    n = 1500
    ref = pd.DataFrame({
        "ok": rng.normal(0, 1, n), "all_nan_ref": [np.nan] * n, "constant": [3.0] * n,
        "single": ["x"] * n, "mixed_cur": rng.normal(0, 1, n), "gone": rng.normal(0, 1, n),
        "nan_cur": rng.normal(0, 1, n), "ids": [f"id{i}" for i in range(n)],
        "mixed_ref": pd.Series([1, "a"] * (n // 2), dtype=object)})
    cur = pd.DataFrame({
        "ok": rng.normal(2, 1, n), "all_nan_ref": rng.normal(0, 1, n), "constant": [3.0] * n,
        "single": ["x"] * n, "mixed_cur": pd.Series(["oops"] + [0.1] * (n - 1), dtype=object),
        "nan_cur": [np.nan] * n, "ids": [f"id{i}" for i in range(n)],
        "mixed_ref": pd.Series([1, "a"] * (n // 2), dtype=object)})
    cols = {c.column: c for c in detect_drift(ref, cur).columns}
    assert cols["ok"].verdict is Verdict.FAILED
    assert cols["all_nan_ref"].verdict is Verdict.ERROR and "all missing" in cols["all_nan_ref"].message
    assert cols["constant"].verdict is Verdict.PASSED and cols["constant"].statistic == 0.0
    assert cols["single"].verdict is Verdict.PASSED and cols["single"].drifted is False
    assert cols["mixed_cur"].verdict is Verdict.ERROR and "'oops'" in cols["mixed_cur"].message
    assert cols["gone"].verdict is Verdict.ERROR and "missing from the current data" in cols["gone"].message
    assert cols["nan_cur"].verdict is Verdict.INCONCLUSIVE and cols["nan_cur"].missing_share_current == 1.0
    assert cols["ids"].kind == "text" and cols["ids"].drifted is False  # tested through its descriptors
    assert cols["mixed_ref"].verdict is Verdict.ERROR and "mixes value types" in cols["mixed_ref"].message


def test_empty_current_window_is_inconclusive() -> None:
    ref = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    report = detect_drift(ref, pd.DataFrame({"x": pd.Series(dtype=float), "c": pd.Series(dtype=object)}))
    assert report.verdict is Verdict.INCONCLUSIVE
    assert all(c.verdict is Verdict.INCONCLUSIVE for c in report.columns)


def test_unknown_method_is_a_column_error_naming_valid_ones() -> None:
    ref = pd.DataFrame({"x": np.arange(100.0)})
    col = detect_drift(ref, ref, DriftOptions(method="bogus")).columns[0]
    assert col.verdict is Verdict.ERROR and "valid: auto, ks" in col.message
    cat = detect_drift(pd.DataFrame({"c": ["a", "b"] * 9}), pd.DataFrame({"c": ["a"] * 9}),
                       DriftOptions(method="wasserstein")).columns[0]
    assert cat.verdict is Verdict.ERROR and "needs a numeric column" in cat.message


def test_profile_round_trip_gives_identical_results(tmp_path: Path) -> None:
    ref, cur, _ = _evidently("large")
    profile = ReferenceProfile.from_frame(ref)
    path = profile.save(tmp_path / "p.npz")
    loaded = ReferenceProfile.load(path)
    a = [c.to_dict() for c in detect_drift(profile, cur).columns]
    b = [c.to_dict() for c in detect_drift(loaded, cur).columns]
    assert a == b and loaded.n_rows == len(ref)


def test_cached_profile_is_reused_until_the_file_changes(tmp_path: Path) -> None:
    data = tmp_path / "ref.csv"
    pd.DataFrame({"x": np.arange(50.0)}).to_csv(data, index=False)
    calls: list[Path] = []
    from mlops_actions.monitoring.columnar import cached_profile

    def reader(p: Path) -> pd.DataFrame:
        calls.append(p)
        return pd.read_csv(p)

    cached_profile(data, tmp_path / "cache", reader=reader)
    cached_profile(data, tmp_path / "cache", reader=reader)
    assert len(calls) == 1
    pd.DataFrame({"x": np.arange(60.0)}).to_csv(data, index=False)
    assert cached_profile(data, tmp_path / "cache", reader=reader).n_rows == 60
    assert len(calls) == 2


def test_corrupt_profile_says_how_to_fix(tmp_path: Path) -> None:
    from mlops_actions.errors import ValidationError

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match="delete it"):
        ReferenceProfile.load(bad)


def test_prediction_drift_on_labels_scores_and_logged_outputs() -> None:
    rng = np.random.default_rng(6)
    labels = detect_prediction_drift(rng.integers(0, 2, 3000).tolist(),
                                     (rng.random(3000) < 0.8).astype(int).tolist())
    assert labels.kind == "categorical" and labels.method == "jensenshannon" and labels.drifted
    scores = detect_prediction_drift(rng.random(500).tolist(), rng.random(500).tolist())
    assert scores.method == "ks" and scores.drifted is False
    probs = detect_prediction_drift([[0.9, 0.1]] * 50 + [[0.2, 0.8]] * 50, [{"prediction": 1}] * 100)
    assert probs.drifted is True
    assert detect_prediction_drift([], [1, 2]).verdict is Verdict.INCONCLUSIVE


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=60),
       st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_sorted_quantiles_equal_numpy_bit_for_bit(values: list[float], q: list[float]) -> None:
    from mlops_actions.monitoring.drift import sorted_quantiles

    qs = np.array([*q, 0.0, 0.25, 0.5, 0.75, 1.0])
    assert np.array_equal(sorted_quantiles(np.sort(values), qs), np.quantile(values, qs))
