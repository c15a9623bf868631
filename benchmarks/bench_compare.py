"""Our two-proportion comparison vs GrowthBook's gbstats on the same counts, one run.

Scenarios: 400 pairs of counts (rows per arm from 100 to 1,000,000, rates from 0.5% to
60%, a third with a real difference), plus one sample-ratio check per scenario. Each side
runs in its own fresh subprocess on the same JSON file and times only its own loop (imports
and reading excluded):

- gbstats 0.8.0 (PyPI; its own venv ``benchmarks/.venv-gbstats``, created on first use since
  it pins numpy<2 and pandas<2): ``ProportionStatistic`` per arm, ``TwoSidedTTest`` and
  ``SequentialTwoSidedTTest`` with ``difference_type="absolute"``, ``check_srm``.
- ours, per scenario (like for like): ``proportion_test`` fixed and sequential and
  ``srm_check`` called once per scenario; and vectorised: ``proportion_test`` once over
  all 400 scenarios (what a simulation or a many-metric report does).

Agreement printed: the largest differences of p-values and CI bounds, and how many
significance decisions (p < 0.05) differ. The sequential test is the same normal mixture
(tuning 5,000), so it agrees to rounding; the fixed-horizon test differs by design:
gbstats uses Welch's t where we use z (statsmodels' Wald test), which matters only at
small n. Rounds alternate which side runs first; the time ratio (gbstats / ours) is
printed as min / median / max.

With ``--confidence``, also Spotify's spotify-confidence 4.1.0 (PyPI; its own venv
``benchmarks/.venv-confidence``, created on first use: it pulls chartify and bokeh, several
minutes): one ``ZTest(...).difference(level_1="A", level_2="B", groupby="scenario")`` over all
scenarios (the way it is meant to be called, every comparison in one DataFrame; a call per
scenario would measure pandas set-up 400 times), fixed horizon only (its sequential test is a
group-sequential design with a planned sample size, not the mSPRT), timed against our
vectorised ``proportion_test`` (which does fixed and sequential: more work than it); agreement
on the estimate, the unadjusted CI and p-value.

    .venv/bin/python benchmarks/bench_compare.py [--rounds 5] [--scenarios 400] [--confidence]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from peer_venv import ensure_peer_venv

HERE = Path(__file__).resolve().parent
GBSTATS_PINS = ["gbstats==0.8.0"]
CONFIDENCE_PINS = ["spotify-confidence==4.1.0"]

CONFIDENCE_WORKER = r'''
import json, sys, time, warnings
warnings.simplefilter("ignore")  # pandas FutureWarnings from inside spotify-confidence
import pandas as pd
import spotify_confidence as sc
scenarios = json.load(open(sys.argv[1]))
rows = [{"scenario": i, "variant": v, "x": x, "n": n}
        for i, (xa, na, xb, nb) in enumerate(scenarios) for v, x, n in (("A", xa, na), ("B", xb, nb))]
t0 = time.perf_counter()
df = pd.DataFrame(rows)
z = sc.ZTest(df, numerator_column="x", numerator_sum_squares_column="x", denominator_column="n",
             categorical_group_columns=["variant", "scenario"], interval_size=0.95)
d = z.difference(level_1="A", level_2="B", groupby="scenario", absolute=True).sort_values("scenario")
seconds = time.perf_counter() - t0
out = d[["difference", "ci_lower", "ci_upper", "p-value"]].astype(float).values.tolist()
print(json.dumps({"seconds": seconds, "results": out}))
'''

GBSTATS_WORKER = r'''
import json, sys, time
from gbstats.frequentist.tests import (FrequentistConfig, SequentialConfig, SequentialTwoSidedTTest,
                                       TwoSidedTTest)
from gbstats.models.statistics import ProportionStatistic
from gbstats.utils import check_srm
scenarios = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
out = []
for xa, na, xb, nb in scenarios:
    a, b = ProportionStatistic(n=na, sum=xa), ProportionStatistic(n=nb, sum=xb)
    fixed = TwoSidedTTest(a, b, FrequentistConfig(alpha=0.05, difference_type="absolute")).compute_result()
    seq = SequentialTwoSidedTTest(a, b, SequentialConfig(alpha=0.05, difference_type="absolute",
                                                         sequential_tuning_parameter=5000)).compute_result()
    srm = check_srm([na, nb], [0.5, 0.5])
    out.append([fixed.expected, fixed.ci[0], fixed.ci[1], fixed.p_value,
                seq.ci[0], seq.ci[1], seq.p_value, float(srm)])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "results": out}))
'''

OURS_WORKER = r'''
import json, sys, time
import numpy as np
from mlops_actions.stats.compare import proportion_test
from mlops_actions.stats.srm import srm_check
scenarios = json.load(open(sys.argv[1]))
proportion_test(1, 10, 2, 10)  # warm up statsmodels' lazy imports, as gbstats' are at import
t0 = time.perf_counter()
out = []
for xa, na, xb, nb in scenarios:
    est, lo, hi, p, _ = proportion_test(xa, na, xb, nb)
    _, slo, shi, sp, _ = proportion_test(xa, na, xb, nb, sequential=True)
    srm = srm_check(na, nb, 0.5)
    out.append([float(est), float(lo), float(hi), float(p), float(slo), float(shi), float(sp), srm.p_value])
seconds = time.perf_counter() - t0
x = np.array(scenarios, dtype=float).T
t1 = time.perf_counter()
proportion_test(x[0], x[1], x[2], x[3])
proportion_test(x[0], x[1], x[2], x[3], sequential=True)
vectorised = time.perf_counter() - t1
print(json.dumps({"seconds": seconds, "vectorised_seconds": vectorised, "results": out}))
'''

FIELDS = ["estimate", "ci low", "ci high", "p-value", "seq ci low", "seq ci high", "seq p-value",
          "srm p-value"]


def make_scenarios(count: int, seed: int = 18) -> list[list[int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[list[int]] = []
    while len(out) < count:
        n_a = int(10 ** rng.uniform(2, 6))
        n_b = int(n_a * rng.uniform(0.8, 1.2))
        rate = float(10 ** rng.uniform(np.log10(0.005), np.log10(0.6)))
        lift = float(rng.choice([1.0, 1.0, rng.uniform(0.8, 1.25)]))
        x_a, x_b = int(rng.binomial(n_a, rate)), int(rng.binomial(n_b, min(rate * lift, 0.99)))
        if 0 < x_a < n_a and 0 < x_b < n_b:  # gbstats answers a zero baseline with a placeholder
            out.append([x_a, n_a, x_b, n_b])
    return out


def run_worker(python: str, code: str, data: Path) -> dict:
    done = subprocess.run([python, "-c", code, str(data)], capture_output=True, text=True, check=True,
                          cwd=HERE.parent)
    return json.loads(done.stdout)


def agreement(ours: list[list[float]], theirs: list[list[float]], scenarios: list[list[int]]) -> None:
    import numpy as np

    a, b = np.array(ours), np.array(theirs)
    big = np.array([min(s[1], s[3]) >= 1000 for s in scenarios])
    print(f"\nagreement on {len(scenarios)} scenarios ({int(big.sum())} with >= 1,000 rows per arm):")
    print(f"{'field':<14} {'max |diff| all':>16} {'max |diff| n>=1000':>20} {'max rel (>1e-6)':>14}")
    for j, name in enumerate(FIELDS):
        diff = np.abs(a[:, j] - b[:, j])
        sizable = np.abs(b[:, j]) > 1e-6  # relative differences of p-values like 1e-300 mean nothing
        rel = (diff[sizable] / np.abs(b[sizable, j])).max() if sizable.any() else 0.0
        print(f"{name:<14} {diff.max():>16.3g} {diff[big].max():>20.3g} {rel:>14.3g}")
    for label, j in (("fixed", 3), ("sequential", 6)):
        flips = int(((a[:, j] < 0.05) != (b[:, j] < 0.05)).sum())
        print(f"{label} decisions (p < 0.05) that differ: {flips} of {len(scenarios)} "
              f"({int((b[:, j] < 0.05).sum())} significant for gbstats)")


def confidence_agreement(ours: list[list[float]], theirs: list[list[float]]) -> None:
    import numpy as np

    a, b = np.array(ours)[:, :4], np.array(theirs)
    print(f"\nagreement with spotify-confidence on {len(a)} scenarios (fixed horizon):")
    print(f"{'field':<14} {'max |diff|':>12} {'max rel (>1e-6)':>16}")
    for j, name in enumerate(FIELDS[:4]):
        diff = np.abs(a[:, j] - b[:, j])
        sizable = np.abs(b[:, j]) > 1e-6
        rel = (diff[sizable] / np.abs(b[sizable, j])).max() if sizable.any() else 0.0
        print(f"{name:<14} {diff.max():>12.3g} {rel:>16.3g}")
    flips = int(((a[:, 3] < 0.05) != (b[:, 3] < 0.05)).sum())
    print(f"decisions (p < 0.05) that differ: {flips} of {len(a)} "
          f"({int((b[:, 3] < 0.05).sum())} significant for spotify-confidence)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenarios", type=int, default=400)
    parser.add_argument("--json", default=None, metavar="PATH", help="write the ratio rows here")
    parser.add_argument("--quick", action="store_true", help="40 scenarios, 3 rounds (a smoke run)")
    parser.add_argument("--confidence", action="store_true",
                        help="also spotify-confidence 4.1.0 (its venv is created on first use: minutes)")
    args = parser.parse_args()
    if args.quick:
        args.scenarios, args.rounds = 40, 3
    gb_python = str(ensure_peer_venv("gbstats", "gbstats", GBSTATS_PINS))
    sc_python = (str(ensure_peer_venv("confidence", "spotify_confidence", CONFIDENCE_PINS))
                 if args.confidence else None)
    scenarios = make_scenarios(args.scenarios)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "scenarios.json"
        data.write_text(json.dumps(scenarios))
        ratios, ours_s, theirs_s, vec_s, sc_ratios = [], [], [], [], []
        ours = theirs = spotify = None
        for i in range(args.rounds):
            order = ("gbstats", "ours") if i % 2 == 0 else ("ours", "gbstats")
            for side in order:
                if side == "gbstats":
                    theirs = run_worker(gb_python, GBSTATS_WORKER, data)
                else:
                    ours = run_worker(sys.executable, OURS_WORKER, data)
            assert ours is not None and theirs is not None
            ours_s.append(ours["seconds"])
            theirs_s.append(theirs["seconds"])
            vec_s.append(ours["vectorised_seconds"])
            ratios.append(theirs["seconds"] / ours["seconds"])
            print(f"round {i + 1} ({order[0]} first): gbstats {theirs['seconds'] * 1e3:.1f} ms, "
                  f"ours {ours['seconds'] * 1e3:.1f} ms per scenario loop, "
                  f"{ours['vectorised_seconds'] * 1e3:.2f} ms vectorised; ratio {ratios[-1]:.2f}x")
            if sc_python is not None:
                spotify = run_worker(sc_python, CONFIDENCE_WORKER, data)
                sc_ratios.append(spotify["seconds"] / ours["vectorised_seconds"])
                print(f"  spotify-confidence {spotify['seconds'] * 1e3:.1f} ms for all {args.scenarios} "
                      f"(one grouped ZTest); ratio to ours vectorised {sc_ratios[-1]:.0f}x")
    assert ours is not None and theirs is not None
    print(f"\ntime ratio gbstats / ours (loop, {args.scenarios} scenarios x fixed + sequential + SRM): "
          f"min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x")
    vec = [t / v for t, v in zip(theirs_s, vec_s, strict=True)]
    print(f"time ratio gbstats / ours vectorised (no SRM): min {min(vec):.0f}x, "
          f"median {statistics.median(vec):.0f}x, max {max(vec):.0f}x")
    agreement(ours["results"], theirs["results"], scenarios)
    if spotify is not None:
        print(f"\ntime ratio spotify-confidence / ours vectorised (fixed horizon, {args.scenarios} "
              f"comparisons): min {min(sc_ratios):.0f}x, median {statistics.median(sc_ratios):.0f}x, "
              f"max {max(sc_ratios):.0f}x")
        confidence_agreement(ours["results"], spotify["results"])
    from rounds import ratio_row, write_rows

    case = f"{args.scenarios} scenarios"
    write_rows(args.json, [
        ratio_row("A/B comparison", case, "peer time / ours (per-scenario loop)", "gbstats 0.8",
                  ratios, same_work=True),
        ratio_row("A/B comparison", f"{case}, vectorised", "peer time / ours", "gbstats 0.8 (its loop)",
                  vec, same_work=False),
        *([ratio_row("A/B comparison", f"{case}, one grouped call", "peer time / ours (vectorised)",
                     "spotify-confidence 4.1", sc_ratios, same_work=False)] if sc_ratios else [])])


if __name__ == "__main__":
    main()
