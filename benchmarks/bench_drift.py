"""Our drift check vs Evidently's DataDriftPreset, same data, one run.

Sizes: 100,000 x 50 and 1,000,000 x 20 (reference and current each that many
rows), 60 % numeric / 40 % categorical columns, a quarter of the columns shifted.
Evidently 0.7.23 pins numpy<2, pyarrow<18, pandas<3, so it runs in its own venv
(``benchmarks/.venv-evidently``, created by this script on first use, then
cached). Each side runs in its own subprocess that loads the same Parquet
files and reports its time (data loading excluded) and its peak RSS
(``ru_maxrss``), minus the RSS after loading the data.

Compared per column: the method chosen, the drift decision, and for
Wasserstein the normalised distance (must agree to 1e-9). Our Jensen-Shannon
is in base 2 (Evidently: natural log), so its value is compared after
converting; the decision uses each side's own value.

    /work/venv/bin/python benchmarks/bench_drift.py [--sizes 100000x50,1000000x20] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-evidently"
EVIDENTLY_PINS = ["evidently==0.7.23", "numpy<2", "pyarrow<18", "pandas<3"]

EVIDENTLY_WORKER = r'''
import json, resource, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
snap = Report([DataDriftPreset()]).run(cur, ref)
seconds = time.perf_counter() - t0
names = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
         "K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z", "PSI": "psi"}
cols, share = {}, None
for m in snap.dict()["metrics"]:
    cfg = m["config"]
    if cfg["type"].endswith("ValueDrift"):
        method = names.get(cfg["method"], cfg["method"])
        v, thr = float(m["value"]), float(cfg["threshold"])
        drifted = v <= thr if method == "ks" else (v < thr if method in ("chisquare", "z") else v >= thr)
        cols[cfg["column"]] = {"method": method, "value": v, "drifted": bool(drifted)}
    elif cfg["type"].endswith("DriftedColumnsCount"):
        share = m["value"]["share"]
print(json.dumps({"seconds": seconds, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rss_loaded_kb": rss_loaded, "share": share, "columns": cols}))
'''


def ensure_evidently() -> Path:
    py = VENV / "bin" / "python"
    if py.exists():
        probe = subprocess.run([str(py), "-c", "import evidently"], capture_output=True)
        if probe.returncode == 0:
            return py
    base = Path(sys.base_prefix) / "bin" / "python3"
    print(f"creating {VENV} with {' '.join(EVIDENTLY_PINS)} (once; cached afterwards)", flush=True)
    subprocess.run([str(base), "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *EVIDENTLY_PINS], check=True)
    return py


def make_data(rows: int, cols: int, out: Path, seed: int = 7) -> dict[str, str]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_num = round(cols * 0.6)
    shifted = set(rng.choice(cols, size=cols // 4, replace=False).tolist())
    ref, cur, kinds = {}, {}, {}
    for j in range(cols):
        name = f"f{j:02d}"
        if j < n_num:
            loc, scale = rng.normal(0, 5), rng.uniform(0.5, 3)
            ref[name] = rng.normal(loc, scale, rows)
            cur[name] = rng.normal(loc + (0.5 * scale if j in shifted else 0), scale, rows)
            kinds[name] = "numeric" + (" (shifted)" if j in shifted else "")
        else:
            k = int(rng.integers(3, 9))
            labels = np.array([f"c{i}" for i in range(k)])
            p = rng.dirichlet(np.ones(k) * 5)
            q = rng.dirichlet(np.ones(k) * 5) if j in shifted else p
            ref[name] = rng.choice(labels, rows, p=p)
            cur[name] = rng.choice(labels, rows, p=q)
            kinds[name] = "categorical" + (" (shifted)" if j in shifted else "")
    pd.DataFrame(ref).to_parquet(out / "ref.parquet")
    pd.DataFrame(cur).to_parquet(out / "cur.parquet")
    return kinds


def run_ours(ref: str, cur: str) -> dict[str, object]:
    """The worker: cold (profile + test) and warm (stored profile loaded + test)."""
    import pandas as pd

    sys.path.insert(0, str(HERE.parent))
    from mlops_actions.monitoring.drift import DriftOptions, detect_drift
    from mlops_actions.monitoring.profile import ReferenceProfile

    ref_df, cur_df = pd.read_parquet(ref), pd.read_parquet(cur)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    profile = ReferenceProfile.from_frame(ref_df)
    report = detect_drift(profile, cur_df)
    cold = time.perf_counter() - t0
    path = Path(cur).parent / "ref.npz"  # kept for the warm-process run
    profile.save(path)
    del profile
    t0 = time.perf_counter()
    report = detect_drift(ReferenceProfile.load(path), cur_df)
    warm = time.perf_counter() - t0
    e_report = detect_drift(ReferenceProfile.load(path), cur_df, DriftOptions(js_base=math.e))
    e_cols = {c.column: c for c in e_report.columns}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": cold, "warm_seconds": warm, "maxrss_kb": peak,
            "rss_loaded_kb": rss_loaded, "share": report.share,
            "columns": {c.column: {"method": c.method, "value": c.statistic, "drifted": c.drifted,
                                   "value_base_e": e_cols[c.column].statistic,
                                   "drifted_base_e": e_cols[c.column].drifted} for c in report.columns}}


def run_ours_warm(profile_path: str, cur: str) -> dict[str, object]:
    """The monitoring path: a stored profile and the current data only (no reference DataFrame)."""
    import pandas as pd

    sys.path.insert(0, str(HERE.parent))
    from mlops_actions.monitoring.drift import detect_drift
    from mlops_actions.monitoring.profile import ReferenceProfile

    cur_df = pd.read_parquet(cur)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    report = detect_drift(ReferenceProfile.load(profile_path), cur_df)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "rss_loaded_kb": rss_loaded, "share": report.share}


def worker(cmd: list[str]) -> dict[str, object]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed: {' '.join(cmd[:3])}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(size: str, rows: int, cols: int, evidently_py: Path, keep: bool) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    try:
        kinds = make_data(rows, cols, tmp)
        ref, cur = str(tmp / "ref.parquet"), str(tmp / "cur.parquet")
        ours = worker([sys.executable, __file__, "--worker", ref, cur])
        warm = worker([sys.executable, __file__, "--worker-warm", str(tmp / "ref.npz"), cur])
        env_script = tmp / "evidently_worker.py"
        env_script.write_text(EVIDENTLY_WORKER)
        theirs = worker([str(evidently_py), str(env_script), ref, cur])
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    oc, tc = ours["columns"], theirs["columns"]
    assert isinstance(oc, dict) and isinstance(tc, dict)
    same_method = sum(oc[c]["method"] == tc[c]["method"] for c in tc)
    same_decision = sum(oc[c]["drifted"] == tc[c]["drifted"] for c in tc)
    same_decision_e = sum(oc[c]["drifted_base_e"] == tc[c]["drifted"] for c in tc)
    w_diff = max((abs(oc[c]["value"] - tc[c]["value"]) for c in tc if tc[c]["method"] == "wasserstein"),
                 default=0.0)
    js_diff = max((abs(oc[c]["value_base_e"] - tc[c]["value"]) for c in tc
                   if tc[c]["method"] == "jensenshannon"), default=0.0)
    for c in tc:
        if oc[c]["method"] != tc[c]["method"] or oc[c]["drifted"] != tc[c]["drifted"]:
            print(f"  differs: {c} {kinds[c]}: ours {oc[c]} evidently {tc[c]}"
                  + (" (JS base 2 vs base e: same decision with js_base=e)"
                     if oc[c]["drifted_base_e"] == tc[c]["drifted"] else ""))
    o_mem = (ours["maxrss_kb"] - ours["rss_loaded_kb"]) / 1024  # type: ignore[operator]
    t_mem = (theirs["maxrss_kb"] - theirs["rss_loaded_kb"]) / 1024  # type: ignore[operator]
    o_peak, t_peak = ours["maxrss_kb"] / 1024, theirs["maxrss_kb"] / 1024  # type: ignore[operator]
    row = {"size": size, "ours_s": ours["seconds"], "ours_warm_s": ours["warm_seconds"],
           "evidently_s": theirs["seconds"], "speedup": theirs["seconds"] / ours["seconds"],  # type: ignore[operator]
           "speedup_warm": theirs["seconds"] / ours["warm_seconds"],  # type: ignore[operator]
           "ours_peak_mb": o_peak, "evidently_peak_mb": t_peak, "ours_extra_mb": o_mem,
           "evidently_extra_mb": t_mem, "same_method": f"{same_method}/{len(tc)}",
           "same_decision": f"{same_decision}/{len(tc)}",
           "same_decision_js_base_e": f"{same_decision_e}/{len(tc)}", "max_wasserstein_diff": w_diff,
           "max_js_diff_base_e": js_diff, "drift_share_ours": ours["share"],
           "drift_share_evidently": theirs["share"]}
    print(f"{size}: ours {row['ours_s']:.2f} s cold / {row['ours_warm_s']:.2f} s warm, "
          f"Evidently {row['evidently_s']:.1f} s -> {row['speedup']:.1f}x cold, "
          f"{row['speedup_warm']:.1f}x warm")
    print(f"  peak RSS ours {o_peak:.0f} MB vs Evidently {t_peak:.0f} MB (ratio {o_peak / t_peak:.2f}); "
          f"above the loaded data: ours {o_mem:.0f} MB vs {t_mem:.0f} MB (ratio {o_mem / max(t_mem, 1):.2f})")
    w_peak = warm["maxrss_kb"] / 1024  # type: ignore[operator]
    row.update(warm_process_s=warm["seconds"], warm_process_peak_mb=w_peak,
               warm_process_peak_ratio=w_peak / t_peak)
    print(f"  monitoring path (stored profile + current data only): {warm['seconds']:.2f} s, "
          f"peak RSS {w_peak:.0f} MB (ratio to Evidently's peak {w_peak / t_peak:.2f})")
    print(f"  same method {row['same_method']}, same decision {row['same_decision']} "
          f"({row['same_decision_js_base_e']} with JS in base e), "
          f"max |Wasserstein diff| {w_diff:.2e}, max |JS diff| (base e) {js_diff:.2e}, "
          f"drift share {ours['share']:.3f} vs {theirs['share']:.3f}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000x50,1000000x20")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("REF", "CUR"))
    ap.add_argument("--worker-warm", nargs=2, metavar=("PROFILE", "CUR"))
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run_ours(*args.worker)))
        return
    if args.worker_warm:
        print(json.dumps(run_ours_warm(*args.worker_warm)))
        return
    evidently_py = ensure_evidently()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for size in args.sizes.split(","):
        r, c = (int(x) for x in size.split("x"))
        rows.append(compare(size, r, c, evidently_py, args.keep))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
