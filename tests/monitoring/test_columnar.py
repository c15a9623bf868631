"""detect_drift_files: Parquet/CSV read column by column with Arrow gives exactly what
detect_drift gives on the loaded DataFrames, without pandas and at a fraction of the memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_actions.errors import ValidationError
from mlops_actions.monitoring.columnar import detect_drift_files, profile_file
from mlops_actions.monitoring.drift import DriftOptions, detect_drift
from mlops_actions.monitoring.profile import ReferenceProfile
from mlops_actions.monitoring.verdict import Verdict

REPO_ROOT = Path(__file__).resolve().parents[2]


def _frames(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every column kind drift knows, with NaN, inf, nulls, a shifted column, an unseen category,
    a column the current data lacks."""
    rng = np.random.default_rng(seed)
    with_gaps = rng.normal(0, 1, n)
    with_gaps[rng.random(n) < 0.1] = np.nan
    with_gaps[:3] = np.inf
    ref = pd.DataFrame({
        "num": rng.normal(0, 1, n), "gaps": with_gaps, "few_ints": rng.integers(0, 4, n),
        "many_ints": rng.integers(0, 1000, n), "cat": rng.choice(["a", "b", "c"], n),
        "ids": [f"id{i}" for i in range(n)], "flag": rng.random(n) < 0.3,
        "two": rng.choice(["x", "y"], n), "int_gaps": pd.array(
            np.where(rng.random(n) < 0.2, None, rng.integers(0, 50, n)), dtype="Int64")})
    cur = ref.copy()
    cur["num"] = rng.normal(0.4, 1, n)
    cur["cat"] = rng.choice(["a", "b", "c", "new"], n)
    return ref, cur.drop(columns=["two"])


def _write(df: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path)
    return str(path)


def _same(a: object, b: object) -> None:
    da, db = a.to_dict(), b.to_dict()  # type: ignore[attr-defined]
    assert da == db, {k: (v, db.get(k)) for k, v in da.items() if db.get(k) != v}


@pytest.mark.parametrize("n", [600, 3000])  # p-value tests (<= 1000 reference rows) and distances
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_files_column_by_column_equal_the_dataframe_path(tmp_path: Path, n: int, suffix: str) -> None:
    ref, cur = _frames(n)
    r, c = _write(ref, tmp_path / f"ref{suffix}"), _write(cur, tmp_path / f"cur{suffix}")
    reader = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    for options in (DriftOptions(), DriftOptions(correction="benjamini_hochberg"),
                    DriftOptions(method="psi", features=("num", "cat", "few_ints"))):
        expected = detect_drift(reader(r), reader(c), options)
        _same(expected, detect_drift_files(r, c, options))
    # a feature the reference lacks: an error verdict for it, the others still tested
    got = detect_drift_files(r, c, DriftOptions(features=("num", "absent")))
    assert [(col.column, col.verdict) for col in got.columns] == [("num", Verdict.FAILED),
                                                                  ("absent", Verdict.ERROR)]
    full = detect_drift_files(r, c)
    by = {col.column: col for col in full.columns}
    assert by["num"].drifted and by["ids"].kind == "text" and by["ids"].drifted is False
    assert [d.descriptor for d in by["ids"].descriptors] == ["length", "oov_share"]
    assert by["two"].verdict is Verdict.ERROR and "missing from the current data" in by["two"].message
    assert by["cat"].unseen_categories == ("new",)
    assert by["int_gaps"].kind == "numeric"  # an integer column with nulls reads as float, as in pandas


def test_a_stored_profile_is_read_one_column_at_a_time_with_the_same_result(tmp_path: Path) -> None:
    ref, cur = _frames(3000)
    r, c = _write(ref, tmp_path / "ref.parquet"), _write(cur, tmp_path / "cur.parquet")
    profile = profile_file(r)
    path = profile.save(tmp_path / "ref.npz")
    _same(detect_drift_files(r, c), detect_drift_files(path, c))
    _same(detect_drift_files(r, c), detect_drift_files(profile, c))
    assert profile.n_rows == 3000 and ReferenceProfile.load(path).columns.keys() == profile.columns.keys()


def test_bad_files_and_columns_are_clear_errors(tmp_path: Path) -> None:
    ref, cur = _frames(1500)
    ref["when"] = pd.date_range("2026-01-01", periods=len(ref), freq="min")
    cur["when"] = ref["when"]
    cur["num"] = cur["num"].astype(str)
    cur.loc[5, "num"] = "oops"
    r, c = _write(ref, tmp_path / "ref.parquet"), _write(cur, tmp_path / "cur.parquet")
    by = {col.column: col for col in detect_drift_files(r, c).columns}
    assert by["when"].verdict is Verdict.ERROR and "not supported for drift" in by["when"].message
    assert by["num"].verdict is Verdict.ERROR and "not numbers" in by["num"].message
    assert by["cat"].verdict is not Verdict.ERROR  # one bad column never stops the others
    with pytest.raises(ValidationError, match=r"cannot read .*missing\.parquet"):
        detect_drift_files(tmp_path / "missing.parquet", c)
    (tmp_path / "notes.json").write_text("{}")
    with pytest.raises(ValidationError, match=r"unknown format '\.json'"):
        detect_drift_files(r, tmp_path / "notes.json")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValidationError, match=r"broken\.parquet"):
        detect_drift_files(tmp_path / "broken.parquet", c)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValidationError, match="reference profile"):
        detect_drift_files(tmp_path / "bad.npz", c)


PEAK_SCRIPT = r"""
import json, sys
def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
mode, ref, cur = sys.argv[1:]
if mode == "files":
    from mlops_actions.monitoring.columnar import detect_drift_files
    report = detect_drift_files(ref, cur)
else:
    import pandas as pd
    from mlops_actions.monitoring.drift import detect_drift
    report = detect_drift(pd.read_parquet(ref), pd.read_parquet(cur))
print(json.dumps({"peak_kb": peak_kb(), "share": report.share, "pandas": "pandas" in sys.modules,
                  "scipy_stats": "scipy.stats" in sys.modules}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_the_file_path_loads_neither_pandas_nor_whole_tables(tmp_path: Path) -> None:
    """Peak memory (VmHWM, unaffected by machine load) of the two paths in fresh processes."""
    rng = np.random.default_rng(2)
    n = 300_000
    cols = {f"x{i}": rng.normal(0, 1, n) for i in range(12)} | {
        f"c{i}": rng.choice(["alpha", "beta", "gamma", "delta"], n) for i in range(4)}
    ref = pd.DataFrame(cols)
    cur = ref.sample(frac=1.0, random_state=3).reset_index(drop=True)
    cur["x0"] = cur["x0"] + 0.5
    r, c = _write(ref, tmp_path / "ref.parquet"), _write(cur, tmp_path / "cur.parquet")
    del ref, cur, cols

    def run(mode: str) -> dict[str, object]:
        env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin"}
        proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, mode, r, c], capture_output=True,
                              text=True, cwd=REPO_ROOT, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    files, frames = run("files"), run("frames")
    assert files["share"] == frames["share"] == 1 / 16
    assert files["pandas"] is False and files["scipy_stats"] is False
    ratio = int(str(files["peak_kb"])) / int(str(frames["peak_kb"]))
    assert ratio < 0.75, (files, frames)


def test_drift_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_actions.cli import main

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    ref, cur = _frames(3000)
    cur["few_ints"] = 3  # one more drifted column
    r, c = _write(ref, tmp_path / "ref.parquet"), _write(cur, tmp_path / "cur.parquet")
    profile = tmp_path / "ref.npz"
    args = ["drift", "--reference", r, "--current", c, "--features", "num,cat,few_ints"]
    assert main([*args, "--save-profile", str(profile)]) == 1
    md = capsys.readouterr().out
    assert "### Data drift — ❌ 3 of 3 column(s) drifted" in md and "| `num` | numeric | wasserstein |" in md
    assert main(["drift", "--reference", str(profile), "--current", c, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["dataset_drift"] is True and {col["column"] for col in data["columns"]} == {
        "num", "cat", "few_ints"}
    assert main(["drift", "--reference", r, "--current", c, "--exclude", "num", "--exclude", "ids",
                 "--json"]) == 0  # few_ints and cat of 6 tested columns: share 0.33 < 0.5
    assert "num" not in {col["column"] for col in json.loads(capsys.readouterr().out)["columns"]}
    assert main(["drift", "--reference", r, "--current", str(tmp_path / "nope.parquet")]) == 2
    assert main(["drift", "--reference", r, "--current", c, "--method", "kl"]) == 2
    assert "valid: auto, ks" in capsys.readouterr().err


def test_drift_command_compat_evidently_prints_evidentlys_scores(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--compat evidently: the values Evidently 0.7.23 recorded for the same files (base-e
    Jensen-Shannon, goodness-of-fit chi-square), where the default prints ours."""
    from mlops_actions.cli import main

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assets = REPO_ROOT / "tests" / "assets" / "monitoring"
    for case in ("large", "small"):
        expected = json.loads((assets / f"evidently_{case}.json").read_text())["columns"]
        args = ["drift", "--reference", str(assets / f"evidently_{case}_ref.csv"),
                "--current", str(assets / f"evidently_{case}_cur.csv"), "--json"]
        main([*args, "--compat", "evidently"])
        compat = {c["column"]: c["statistic"] for c in json.loads(capsys.readouterr().out)["columns"]}
        main(args)
        default = {c["column"]: c["statistic"] for c in json.loads(capsys.readouterr().out)["columns"]}
        for name, exp in expected.items():
            assert compat[name] == pytest.approx(exp["value"], abs=1e-9, rel=0), (case, name)
        assert any(default[n] != pytest.approx(e["value"], abs=1e-9) for n, e in expected.items()), case
    assert main(["drift", "--reference", "a.csv", "--current", "b.csv", "--compat", "nope"]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_dictionary_read_strings_with_nulls_over_row_groups_equal_the_dataframe_path(tmp_path: Path) -> None:
    """Parquet string columns are counted from their dictionary indices, chunk by chunk (each row
    group has its own dictionary); nulls, a label only some groups hold and text columns too."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    n = 5000

    def frame(shift: bool) -> pd.DataFrame:
        cat = rng.choice(["a", "b", "c", "late"] if shift else ["a", "b", "c"], n).astype(object)
        cat[rng.random(n) < 0.1] = None
        return pd.DataFrame({"cat": cat, "ids": [f"id{i}" for i in rng.permutation(n)]})

    ref, cur = frame(False), frame(True)
    paths = []
    for name, df in (("ref", ref), ("cur", cur)):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=700)
        assert pq.ParquetFile(path).metadata.num_row_groups > 1
        paths.append(path)
    files = detect_drift_files(*paths)
    _same(files, detect_drift(ref, cur))
    cat = next(c for c in files.columns if c.column == "cat")
    assert cat.kind == "categorical" and cat.unseen_categories == ("late",) and cat.drifted
    assert next(c for c in files.columns if c.column == "ids").kind == "text"
