"""Evidently 0.7.23's per-column drift scores on several data sets, for the compatibility tests.

Run with Evidently's interpreter (``benchmarks/.venv-evidently/bin/python``, made by
``benchmarks/bench_drift.py``):

    python make_evidently_fixture.py [OUT_DIR] [--seed N]

Without arguments it rewrites the recorded fixtures next to this file
(``evidently_<data>_{ref,cur}.csv`` and ``evidently_<case>.json``), which
``tests/monitoring/test_drift.py`` checks without Evidently installed. With
``OUT_DIR`` and ``--seed`` it writes fresh data and scores there: the live test
(``tests/monitoring/test_evidently_live.py``) compares those when Evidently's venv
exists. Evidently runs on the data as read back from the CSV files, so both sides
see the same numbers.

Each case is a data set and the preset's options; ``ours`` is the matching
``DriftOptions`` (``compat="evidently"`` is added by the tests).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
NAMES = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
         "K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z", "PSI": "psi"}
P_VALUES = ("ks", "chisquare", "z")


def basic(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: bool) -> pd.DataFrame:
        return pd.DataFrame({
            "num_same": rng.normal(0, 1, n),
            "num_shift": rng.normal(0.6 if shift else 0, 1, n),
            "num_small_shift": rng.normal(0.05 if shift else 0, 2, n),
            "num_few": rng.choice([0.5, 1.5, 2.5, 3.5], n, p=[0.1, 0.2, 0.3, 0.4] if shift else [0.25] * 4),
            "num_two": rng.choice([1.0, 2.0], n, p=[0.3, 0.7] if shift else [0.5, 0.5]),
            "int_cat": rng.integers(0, 4, n),
            "cat_same": rng.choice(["a", "b", "c"], n),
            "cat_shift": rng.choice(["a", "b", "c", "d"], n, p=[0.1, 0.2, 0.3, 0.4] if shift else [0.25] * 4),
            "cat_bin": rng.choice(["yes", "no"], n, p=[0.8, 0.2] if shift else [0.5, 0.5]),
        })

    return frame(n_ref, False), frame(n_cur, True)


def gaps(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Missing values and infinities, a numeric column of 6-20 values (per-value Jensen-Shannon
    under method=jensenshannon), one of many values (Sturges bins), integers with gaps, a rare
    category seen on both sides, a heavy tail, a column moved out of the reference's range and a
    category only one side has."""
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: bool) -> pd.DataFrame:
        x = rng.normal(0.3 if shift else 0, 1, n)
        x[rng.random(n) < 0.07] = np.nan
        x[rng.random(n) < 0.01] = np.inf
        ints = rng.integers(0, 60, n).astype(float)
        ints[rng.random(n) < 0.1] = np.nan
        shares = [0.4, 0.3, 0.28, 0.02] if shift else [0.3, 0.3, 0.38, 0.02]
        cats = rng.choice(["a", "b", "c", "rare"], n, p=shares)
        cats = np.where(rng.random(n) < 0.05, None, cats)
        return pd.DataFrame({
            "with_gaps": x,
            "levels": rng.integers(0, 12 if shift else 11, n) * 0.5,
            "int_gaps": ints,
            "tail": rng.pareto(2.5 if shift else 3.0, n),
            "cat_gaps": cats,
            "moved_out": rng.normal(4 if shift else 0, 1, n),  # empty bins on either side
            "cat_new": rng.choice(["p", "q", "new"] if shift else ["p", "q", "r"], n),
        })

    return frame(n_ref, False), frame(n_cur, True)


def rare(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shares below 1e-4 beside empty bins: Evidently's PSI fills an empty bin with the smallest
    share / 1e6 then, not 1e-4."""
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"label": np.append(rng.choice(["p", "q", "r"], n_ref - 1), "once"),
                        "value": np.append(rng.normal(0, 1, n_ref - 1), 9.0)})
    cur = pd.DataFrame({"label": np.append(rng.choice(["p", "q", "new"], n_cur - 1), "once"),
                        "value": np.append(rng.normal(1.5, 1, n_cur - 1), -7.0)})
    return ref, cur


DATA = {"small": (basic, 400, 300, 11), "large": (basic, 3000, 2000, 12), "gaps": (gaps, 2500, 1800, 13),
        "rare": (rare, 12000, 11000, 14)}
NUMERIC = {"basic": ["num_same", "num_shift", "num_small_shift", "num_few", "num_two"],
           "gaps": ["with_gaps", "levels", "int_gaps", "tail", "moved_out"]}
CATEGORICAL = {"basic": ["int_cat", "cat_same", "cat_shift", "cat_bin"], "gaps": ["cat_gaps", "cat_new"]}

# case name -> (data, Evidently preset options, our DriftOptions fields)
CASES: dict[str, tuple[str, dict[str, object], dict[str, object]]] = {
    "small": ("small", {}, {}),
    "large": ("large", {}, {}),
    "gaps": ("gaps", {}, {}),
    "large_js": ("large", {"method": "jensenshannon"}, {"method": "jensenshannon"}),
    "gaps_js": ("gaps", {"method": "jensenshannon"}, {"method": "jensenshannon"}),
    "large_psi": ("large", {"method": "psi"}, {"method": "psi"}),
    "gaps_psi": ("gaps", {"method": "psi"}, {"method": "psi"}),
    "rare_psi": ("rare", {"method": "psi"}, {"method": "psi"}),
    "rare": ("rare", {}, {}),
    "gaps_ks": ("gaps", {"columns": NUMERIC["gaps"], "method": "ks"},
                {"features": NUMERIC["gaps"], "method": "ks"}),
    "large_wasserstein": ("large", {"columns": NUMERIC["basic"], "method": "wasserstein"},
                          {"features": NUMERIC["basic"], "method": "wasserstein"}),
    "large_chisquare": ("large", {"columns": CATEGORICAL["basic"], "method": "chisquare"},
                        {"features": CATEGORICAL["basic"], "method": "chisquare"}),
}


def write_data(out: Path, seed_offset: int) -> dict[str, tuple[Path, Path]]:
    files = {}
    for name, (make, n_ref, n_cur, seed) in DATA.items():
        ref, cur = make(n_ref, n_cur, seed + seed_offset)
        paths = out / f"evidently_{name}_ref.csv", out / f"evidently_{name}_cur.csv"
        ref.to_csv(paths[0], index=False)
        cur.to_csv(paths[1], index=False)
        files[name] = paths
    return files


def scores(ref: pd.DataFrame, cur: pd.DataFrame, preset: dict[str, object]) -> dict[str, object]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snap = Report([DataDriftPreset(**preset)]).run(cur, ref)  # type: ignore[arg-type]
    cols: dict[str, object] = {}
    share = None
    for m in snap.dict()["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            method = NAMES.get(cfg["method"], cfg["method"])
            v, thr = float(m["value"]), float(cfg["threshold"])
            drifted = v <= thr if method == "ks" else (v < thr if method in P_VALUES else v >= thr)
            cols[cfg["column"]] = {"method": method, "value": v, "threshold": thr, "drifted": drifted}
        elif cfg["type"].endswith("DriftedColumnsCount"):
            share = m["value"]["share"]
    return {"share": share, "columns": cols}


def main() -> None:
    import evidently

    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=str(HERE))
    ap.add_argument("--seed", type=int, default=0, help="added to every data set's seed")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = write_data(out, args.seed)
    for case, (data, preset, ours) in CASES.items():
        ref, cur = (pd.read_csv(p) for p in files[data])  # as the tests will read them
        result = {"evidently": evidently.__version__, "data": data, "preset": preset, "ours": ours,
                  **scores(ref, cur, preset)}
        (out / f"evidently_{case}.json").write_text(json.dumps(result, indent=1))
        print(case, json.dumps(result["columns"]), file=sys.stderr)


if __name__ == "__main__":
    main()
