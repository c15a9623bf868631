"""Text columns: drift of text descriptors, each tested like a numeric feature.

A column is text when more than half its values are distinct strings (free text,
ids). Comparing such values as categories says nothing, so each row is reduced
to descriptors that have a distribution:

- ``length``: the number of characters;
- ``oov_share``: the share of the row's word tokens (``\\w+``, lower-cased) that are
  out of the reference vocabulary, i.e. seen fewer than ``MIN_VOCAB_COUNT`` (2)
  times in the reference. Counting words seen once in the reference as
  out-of-vocabulary too gives the reference itself a non-degenerate share
  (its rare words), so reference and current are measured the same way.

Each descriptor gets the column's drift test by the same policy as a numeric
feature (KS for references of 1,000 rows or fewer, else Wasserstein / std >= 0.1,
or the forced method); the column drifts when a descriptor does, and reports the
most severe one. Evidently instead trains a domain classifier (reference vs
current rows, bag of words) and calls drift when its ROC AUC beats a random
classifier's; that catches any change of wording a linear model can separate,
but is costlier and says only "different", not how. Descriptors miss a change
that keeps lengths and the vocabulary (e.g. the same words in another order or
sense). The reference vocabulary and descriptor values are stored in the profile.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DESCRIPTORS", "MIN_VOCAB_COUNT", "descriptors", "tokens"]

DESCRIPTORS = ("length", "oov_share")
MIN_VOCAB_COUNT = 2
_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def descriptors(texts: Sequence[Any], vocab: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: its length and its out-of-vocabulary share (NaN when missing or without words)."""
    known = set(vocab[counts >= MIN_VOCAB_COUNT].tolist())
    length = np.full(len(texts), np.nan)
    oov = np.full(len(texts), np.nan)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            continue
        length[i] = len(t)
        toks = tokens(t)
        if toks:
            oov[i] = sum(tok not in known for tok in toks) / len(toks)
    return {"length": length, "oov_share": oov}
