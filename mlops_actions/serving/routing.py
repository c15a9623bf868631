"""Choosing the version that answers a request: pure functions over a Route.

- canary: a deterministic weighted split (of every 100 requests, exactly
  ``weight`` go to the canary, spread evenly), so the observed share matches
  the declared weight without sampling noise;
- ab_test: sticky by a key header (same key, same variant, always), hashing the
  key into 10,000 buckets; requests without the key use the weighted split;
- blue_green: the preview header (any value but "0"/"false") reaches the new
  version; everything else the active one until the atomic switch.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_actions.deploy.interface import Route

__all__ = ["Choice", "WeightedCounter", "ab_variant", "choose", "sticky_bucket"]


@dataclass(frozen=True)
class Choice:
    variant: str  # stable, canary, b, preview
    version: str
    uri: str


class WeightedCounter:
    """Request n goes to the candidate when floor(n*w/100) steps up: exact shares."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def take(self, weight: int) -> bool:
        if weight <= 0:
            return False
        if weight >= 100:
            return True
        n = next(self._n)
        return (n * weight) // 100 != ((n - 1) * weight) // 100


def sticky_bucket(key: str) -> int:
    """A stable bucket in [0, 10000) for a key."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % 10_000


def ab_variant(key: str, weight: int) -> str:
    """The A/B variant of a sticky key: ``"b"`` for ``weight`` percent of keys, else ``"a"``.

    The one assignment function: the local gateway routes with it, and on Kubernetes each
    serving pod uses it to forward the other variant's keys (:mod:`.sticky`), so a key gets
    the same variant on both targets.
    """
    return "b" if sticky_bucket(key) < weight * 100 else "a"


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no")


def choose(route: Route, headers: Mapping[str, str], counter: WeightedCounter,
           candidate_ready: bool = True) -> Choice:
    """Pick the variant for one request; the stable version when the candidate is not loaded."""
    stable = Choice("stable", route.stable, route.stable_uri)
    if route.candidate is None or route.candidate_uri is None or not candidate_ready:
        return stable
    candidate_variant = {"canary": "canary", "ab_test": "b", "blue_green": "preview"}.get(route.mode)
    if candidate_variant is None:
        return stable
    candidate = Choice(candidate_variant, route.candidate, route.candidate_uri)
    if route.mode == "blue_green":
        preview = headers.get(route.preview_header.lower())
        return candidate if preview is not None and _truthy(preview) else stable
    if route.mode == "ab_test":
        key = headers.get(route.sticky_header.lower())
        if key:
            return candidate if ab_variant(key, route.weight) == "b" else stable
    return candidate if counter.take(route.weight) else stable
