"""Our drift check vs Evidently's DataDriftPreset, same data, one run.

Sizes: 100,000 x 50 and 1,000,000 x 20 (reference and current each that many
rows), 60 % numeric / 40 % categorical columns, a quarter of the columns shifted.
Evidently 0.7.23 pins numpy<2, pyarrow<18, pandas<3, so it runs in its own venv
(``benchmarks/.venv-evidently``, created by this script on first use, then
cached). Each side runs in its own fresh subprocess on the same Parquet files
and reports its whole-process peak RSS (VmHWM: interpreter, libraries,
data and the test, all in the one process):

- Evidently loads both files with pandas and runs ``DataDriftPreset`` (time
  excludes loading).
- Ours, the file path: ``detect_drift_files(ref.parquet, cur.parquet)`` reads
  both files column by column with pyarrow (no pandas, no whole table); its time
  includes reading the files and profiling the reference. Then, in a process of
  its own, the monitoring path: a stored reference profile (``.npz``, read one
  column at a time) + the current Parquet file.
- Ours, the DataFrame API (``detect_drift`` on two loaded DataFrames), for
  comparison: what a caller that already holds the data in pandas pays.

Compared per column: the method chosen, the drift decision, and with
``DriftOptions(compat="evidently")`` every score (must agree to 1e-9). Our
default Jensen-Shannon is in base 2 (Evidently: natural log); the default's
decisions are compared too.

Each size runs ``--rounds`` rounds (default 3), ours and Evidently in alternating
order, and prints min / median / max of the per-round ratios (a shared machine's
load moves single figures a lot; the ratio of two runs made back to back much less).

    .venv/bin/python benchmarks/bench_drift.py [--sizes 100000x50,1000000x20] [--rounds 3]
        [--json results.json] [--keep]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peer_venv import ensure_peer_venv

HERE = Path(__file__).resolve().parent
EVIDENTLY_PINS = ["evidently==0.7.23", "numpy<2", "pyarrow<18", "pandas<3"]

def peak_rss_kb() -> int:
    """This process's peak RSS: VmHWM from /proc/self/status, the high-water mark of this
    process image. Not ``ru_maxrss``: Linux carries it over fork + exec, so a worker started
    by a parent that holds the generated data would report the parent's size."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


EVIDENTLY_WORKER = inspect.getsource(peak_rss_kb) + r'''
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
rss_loaded = peak_rss_kb()
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
print(json.dumps({"seconds": seconds, "maxrss_kb": peak_rss_kb(),
                  "rss_loaded_kb": rss_loaded, "share": share, "columns": cols}))
'''


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


def _columns(report: object, e_report: object) -> dict[str, object]:
    e_cols = {c.column: c for c in e_report.columns}  # type: ignore[attr-defined]
    return {c.column: {"method": c.method, "value": c.statistic, "drifted": c.drifted,
                       "value_base_e": e_cols[c.column].statistic,
                       "drifted_base_e": e_cols[c.column].drifted}
            for c in report.columns}  # type: ignore[attr-defined]


def _maxrss_kb() -> int:
    return peak_rss_kb()


def run_ours(ref: str, cur: str) -> dict[str, object]:
    """The file path, in a fresh process: read, profile and test column by column.
    ``maxrss_kb`` is the whole process's peak right after the check (what a user pays);
    the comparison run in base e and the saved profile come after it."""
    sys.path.insert(0, str(HERE.parent))
    from mlops_actions.monitoring.columnar import detect_drift_files, profile_file
    from mlops_actions.monitoring.drift import DriftOptions

    rss_start = _maxrss_kb()
    t0 = time.perf_counter()
    report = detect_drift_files(ref, cur)
    seconds = time.perf_counter() - t0
    peak = _maxrss_kb()
    pandas_loaded = "pandas" in sys.modules
    e_report = detect_drift_files(ref, cur, DriftOptions(compat="evidently"))
    profile_file(ref).save(Path(cur).parent / "ref.npz")  # for the monitoring-path process
    return {"seconds": seconds, "maxrss_kb": peak, "rss_start_kb": rss_start, "share": report.share,
            "pandas_loaded": pandas_loaded, "columns": _columns(report, e_report)}


def run_ours_warm(profile_path: str, cur: str) -> dict[str, object]:
    """The monitoring path, in a fresh process: a stored profile + the current file."""
    sys.path.insert(0, str(HERE.parent))
    from mlops_actions.monitoring.columnar import detect_drift_files

    t0 = time.perf_counter()
    report = detect_drift_files(profile_path, cur)
    return {"seconds": time.perf_counter() - t0, "maxrss_kb": _maxrss_kb(), "share": report.share}


def run_ours_frames(ref: str, cur: str) -> dict[str, object]:
    """The DataFrame API, in a fresh process: pandas loads both tables, then detect_drift."""
    import pandas as pd

    sys.path.insert(0, str(HERE.parent))
    from mlops_actions.monitoring.drift import detect_drift

    ref_df, cur_df = pd.read_parquet(ref), pd.read_parquet(cur)
    rss_loaded = _maxrss_kb()
    t0 = time.perf_counter()
    report = detect_drift(ref_df, cur_df)
    return {"seconds": time.perf_counter() - t0, "maxrss_kb": _maxrss_kb(), "rss_loaded_kb": rss_loaded,
            "share": report.share}


def worker(cmd: list[str]) -> dict[str, object]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed: {' '.join(cmd[:3])}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict[str, float]:
    import statistics

    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def compare(size: str, rows: int, cols: int, evidently_py: Path, keep: bool,
            rounds: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    runs: list[dict[str, dict[str, object]]] = []
    try:
        kinds = make_data(rows, cols, tmp)
        ref, cur = str(tmp / "ref.parquet"), str(tmp / "cur.parquet")
        env_script = tmp / "evidently_worker.py"
        env_script.write_text(EVIDENTLY_WORKER)
        for r in range(rounds):
            sides = {"ours": [sys.executable, __file__, "--worker", ref, cur],
                     "evidently": [str(evidently_py), str(env_script), ref, cur]}
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            run = {side: worker(sides[side]) for side in order}
            run["warm"] = worker([sys.executable, __file__, "--worker-warm", str(tmp / "ref.npz"), cur])
            runs.append(run)
            o, t = run["ours"], run["evidently"]
            print(f"  {size} round {r + 1} ({' then '.join(order)}): ours {o['seconds']:.2f} s "
                  f"{o['maxrss_kb'] / 1024:.0f} MB, Evidently {t['seconds']:.1f} s "  # type: ignore[operator]
                  f"{t['maxrss_kb'] / 1024:.0f} MB -> {t['seconds'] / o['seconds']:.1f}x", flush=True)  # type: ignore[operator]
        frames = worker([sys.executable, __file__, "--worker-frames", ref, cur])
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    ours, theirs = runs[-1]["ours"], runs[-1]["evidently"]
    oc, tc = ours["columns"], theirs["columns"]
    assert isinstance(oc, dict) and isinstance(tc, dict)
    same_method = sum(oc[c]["method"] == tc[c]["method"] for c in tc)
    same_decision = sum(oc[c]["drifted"] == tc[c]["drifted"] for c in tc)
    same_decision_e = sum(oc[c]["drifted_base_e"] == tc[c]["drifted"] for c in tc)
    score_diff = max(abs(oc[c]["value_base_e"] - tc[c]["value"]) for c in tc)
    for c in tc:
        if oc[c]["method"] != tc[c]["method"] or oc[c]["drifted"] != tc[c]["drifted"]:
            print(f"  differs: {c} {kinds[c]}: ours {oc[c]} evidently {tc[c]}"
                  + (" (JS base 2 vs base e: same decision with --compat evidently)"
                     if oc[c]["drifted_base_e"] == tc[c]["drifted"] else ""))
    mb = 1024.0
    speed = [float(x["evidently"]["seconds"]) / float(x["ours"]["seconds"]) for x in runs]  # type: ignore[arg-type]
    speed_warm = [float(x["evidently"]["seconds"]) / float(x["warm"]["seconds"]) for x in runs]  # type: ignore[arg-type]
    peak = [float(x["ours"]["maxrss_kb"]) / float(x["evidently"]["maxrss_kb"]) for x in runs]  # type: ignore[arg-type]
    peak_warm = [float(x["warm"]["maxrss_kb"]) / float(x["evidently"]["maxrss_kb"]) for x in runs]  # type: ignore[arg-type]
    t_peak = float(theirs["maxrss_kb"]) / mb  # type: ignore[arg-type]
    f_peak = float(frames["maxrss_kb"]) / mb  # type: ignore[arg-type]
    row = {"size": size, "rounds": rounds,
           "ours_s": spread([float(x["ours"]["seconds"]) for x in runs]),  # type: ignore[arg-type]
           "ours_warm_s": spread([float(x["warm"]["seconds"]) for x in runs]),  # type: ignore[arg-type]
           "evidently_s": spread([float(x["evidently"]["seconds"]) for x in runs]),  # type: ignore[arg-type]
           "ours_frames_s": frames["seconds"],
           "speedup": spread(speed), "speedup_warm": spread(speed_warm), "speedup_ratios": speed,
           "peak_ratios": peak,
           "ours_peak_mb": spread([float(x["ours"]["maxrss_kb"]) / mb for x in runs]),  # type: ignore[arg-type]
           "evidently_peak_mb": spread([float(x["evidently"]["maxrss_kb"]) / mb for x in runs]),  # type: ignore[arg-type]
           "peak_ratio": spread(peak), "warm_peak_ratio": spread(peak_warm),
           "ours_frames_peak_mb": f_peak, "frames_peak_ratio": f_peak / t_peak,
           "pandas_loaded": ours["pandas_loaded"],
           "same_method": f"{same_method}/{len(tc)}", "same_decision": f"{same_decision}/{len(tc)}",
           "same_decision_compat": f"{same_decision_e}/{len(tc)}", "max_score_diff_compat": score_diff,
           "drift_share_ours": ours["share"], "drift_share_evidently": theirs["share"],
           "load_average": os.getloadavg()[0]}
    sp, pr = row["speedup"], row["peak_ratio"]
    print(f"{size}: Evidently / ours (files read, reference profiled and tested), {rounds} rounds: "
          f"min {sp['min']:.1f}x, median {sp['median']:.1f}x, max {sp['max']:.1f}x "  # type: ignore[index]
          f"(stored profile: median {row['speedup_warm']['median']:.1f}x)")  # type: ignore[index]
    print(f"  whole-process peak RSS ours / Evidently: min {pr['min']:.2f}, median {pr['median']:.2f}, "  # type: ignore[index]
          f"max {pr['max']:.2f} (goal <= 0.25); pandas loaded: {ours['pandas_loaded']}")  # type: ignore[index]
    print(f"  DataFrame API for comparison: {frames['seconds']:.2f} s, peak {f_peak:.0f} MB "
          f"(ratio {f_peak / t_peak:.2f})")
    print(f"  same method {row['same_method']}, same decision {row['same_decision']} "
          f"({row['same_decision_compat']} with --compat evidently), max |score diff| with "
          f"--compat evidently {score_diff:.2e}, drift share {ours['share']:.3f} vs {theirs['share']:.3f}",
          flush=True)
    if score_diff > 1e-9 or same_method != len(tc) or same_decision_e != len(tc):
        raise SystemExit("--compat evidently differs from Evidently's scores")
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000x50,1000000x20")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None, metavar="PATH", help="write the ratio rows here")
    ap.add_argument("--quick", action="store_true", help="20,000 x 10, 3 rounds (a smoke run)")
    ap.add_argument("--worker", nargs=2, metavar=("REF", "CUR"))
    ap.add_argument("--worker-warm", nargs=2, metavar=("PROFILE", "CUR"))
    ap.add_argument("--worker-frames", nargs=2, metavar=("REF", "CUR"))
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run_ours(*args.worker)))
        return
    if args.worker_warm:
        print(json.dumps(run_ours_warm(*args.worker_warm)))
        return
    if args.worker_frames:
        print(json.dumps(run_ours_frames(*args.worker_frames)))
        return
    if args.quick:
        args.sizes, args.rounds = "20000x10", 3
    evidently_py = ensure_peer_venv("evidently", "evidently", EVIDENTLY_PINS)
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for size in args.sizes.split(","):
        r, c = (int(x) for x in size.split("x"))
        rows.append(compare(size, r, c, evidently_py, args.keep, args.rounds))
    print(json.dumps(rows, indent=1))
    from rounds import ratio_row, write_rows

    out = []
    for row in rows:
        size = str(row["size"]).replace("x", " x ")
        out.append(ratio_row("drift", f"{size} (files)", "peer time / ours", "Evidently 0.7 DataDriftPreset",
                             row["speedup_ratios"], same_work=True, goal=20,  # type: ignore[arg-type]
                             note=f"same decisions {row['same_decision']} (default), "
                                  f"{row['same_decision_compat']} (--compat evidently); "
                                  f"max score diff {row['max_score_diff_compat']:.1e}"))
        out.append(ratio_row("drift", f"{size} (files)", "our peak RSS / peer's",
                             "Evidently 0.7 DataDriftPreset", row["peak_ratios"],  # type: ignore[arg-type]
                             same_work=True, goal=0.25, lower_is_better=True))
    write_rows(args.json, out)


if __name__ == "__main__":
    main()
