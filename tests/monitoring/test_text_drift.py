"""Text columns: drift of their descriptors (length, out-of-vocabulary share), each tested by
the numeric policy; the same through DataFrames, files and a stored profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_actions.monitoring.columnar import detect_drift_files
from mlops_actions.monitoring.drift import DriftOptions, detect_drift
from mlops_actions.monitoring.profile import ColumnProfile, ReferenceProfile, text_profile
from mlops_actions.monitoring.text import descriptors, tokens

WORDS = [f"word{i}" for i in range(300)]
NEW_WORDS = [f"novel{i}" for i in range(300)]


def _reviews(n: int, seed: int, *, words: list[str] = WORDS, length: tuple[int, int] = (4, 12),
             new_share: float = 0.0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(*length))
        picked = [str(rng.choice(NEW_WORDS)) if rng.random() < new_share else str(rng.choice(words))
                  for _ in range(k)]
        out.append(" ".join(picked).capitalize() + ".")
    return out


def test_descriptors_count_characters_and_rare_or_unseen_words() -> None:
    prof = text_profile("review", ["Good food, good price.", "Bad food.", None, "Food!"])
    assert prof.kind == "text" and prof.n == 3 and prof.n_missing == 1
    assert tokens("Good food, good price.") == ["good", "food", "good", "price"]
    assert prof.counts is not None
    d = descriptors(["good food", "price tag", None, "???"], prof.values, prof.counts)
    assert d["length"].tolist()[:2] == [9.0, 9.0] and np.isnan(d["length"][2])
    # vocabulary = words seen at least twice in the reference: good, food
    assert d["oov_share"][0] == 0.0 and d["oov_share"][1] == 1.0 and np.isnan(d["oov_share"][3])


@pytest.mark.parametrize("n", [800, 3000])  # KS (<= 1000 reference rows) and Wasserstein
def test_text_drift_through_length_and_vocabulary(n: int) -> None:
    ref = pd.DataFrame({"review": _reviews(n, 1)})
    same = pd.DataFrame({"review": _reviews(n, 2)})
    longer = pd.DataFrame({"review": _reviews(n, 3, length=(10, 25))})
    new_vocab = pd.DataFrame({"review": _reviews(n, 4, new_share=0.5)})
    profile = ReferenceProfile.from_frame(ref)
    method = "ks" if n <= 1000 else "wasserstein"

    col = detect_drift(profile, same).columns[0]
    assert col.kind == "text" and col.drifted is False and col.method == method
    assert {d.descriptor: d.drifted for d in col.descriptors} == {"length": False, "oov_share": False}

    col = detect_drift(profile, longer).columns[0]
    assert col.drifted and col.descriptor == "length" and col.message.startswith("text length:")
    col = detect_drift(profile, new_vocab).columns[0]
    assert col.drifted and {d.descriptor: d.drifted for d in col.descriptors}["oov_share"]
    assert col.to_dict()["descriptors"][1]["descriptor"] == "oov_share"


def test_text_descriptors_survive_the_stored_profile_and_the_file_path(tmp_path: Path) -> None:
    ref = pd.DataFrame({"review": _reviews(2000, 1), "x": np.arange(2000.0)})
    cur = pd.DataFrame({"review": _reviews(2000, 4, new_share=0.5), "x": np.arange(2000.0)})
    ref.loc[5, "review"] = None
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    expected = detect_drift(ref, cur)
    saved = ReferenceProfile.from_frame(ref).save(tmp_path / "ref.npz")
    for reference in (str(tmp_path / "ref.parquet"), saved):
        got = detect_drift_files(reference, tmp_path / "cur.parquet")
        assert got.to_dict() == expected.to_dict()
    assert expected.columns[0].drifted and expected.columns[0].missing_share_reference == 1 / 2000
    # an older profile without descriptors: inconclusive, with what to do
    stored = ReferenceProfile.load(saved).columns["review"]
    old = ReferenceProfile({"review": ColumnProfile("review", "text", stored.n, 1, stored.values)}, 2000)
    col = detect_drift(old, cur, DriftOptions(features=("review",))).columns[0]
    assert col.drifted is None and "recompute the reference profile" in col.message
