"""Regenerate evidently_*.json: run with benchmarks/.venv-evidently/bin/python (Evidently 0.7.23).

Writes the data as CSV and Evidently's per-column method, value and decision,
so tests/monitoring/test_drift.py checks compatibility without Evidently installed.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

HERE = Path(__file__).parent
NAMES = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
         "K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z", "PSI": "psi"}


def make(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
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


for name, n_ref, n_cur in (("small", 400, 300), ("large", 3000, 2000)):
    ref, cur = make(n_ref, n_cur, seed=11 if name == "small" else 12)
    ref.to_csv(HERE / f"evidently_{name}_ref.csv", index=False)
    cur.to_csv(HERE / f"evidently_{name}_cur.csv", index=False)
    snap = Report([DataDriftPreset()]).run(cur, ref)
    cols = {}
    for m in snap.dict()["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            method = NAMES[cfg["method"]]
            v, thr = float(m["value"]), float(cfg["threshold"])
            drifted = v <= thr if method == "ks" else (v < thr if method in ("chisquare", "z") else v >= thr)
            cols[cfg["column"]] = {"method": method, "value": v, "threshold": thr, "drifted": drifted}
        elif cfg["type"].endswith("DriftedColumnsCount"):
            share = m["value"]["share"]
    (HERE / f"evidently_{name}.json").write_text(json.dumps(
        {"evidently": "0.7.23", "share": share, "columns": cols}, indent=1))
    print(name, json.dumps(cols), file=sys.stderr)
