from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mlops_actions.deploy.interface import Route
from mlops_actions.serving.routing import WeightedCounter, choose, sticky_bucket

BASE = Route(model="m", stable="1.0.0", stable_uri="u1", candidate="1.1.0", candidate_uri="u2")


@given(st.integers(min_value=0, max_value=100))
def test_weighted_split_is_exact_per_hundred_requests(weight: int) -> None:
    route = Route(**{**BASE.to_dict(), "mode": "canary", "weight": weight})
    counter = WeightedCounter()
    seen = Counter(choose(route, {}, counter).variant for _ in range(1000))
    assert seen["canary"] == weight * 10


def test_sticky_ab_same_key_same_variant_and_split_close_to_declared() -> None:
    route = Route(**{**BASE.to_dict(), "mode": "ab_test", "weight": 30, "sticky_header": "X-User-Id"})
    counter = WeightedCounter()
    first = {f"user-{i}": choose(route, {"x-user-id": f"user-{i}"}, counter).variant for i in range(5000)}
    again = {k: choose(route, {"x-user-id": k}, counter).variant for k in first}
    assert first == again
    share_b = sum(v == "b" for v in first.values()) / len(first)
    assert abs(share_b - 0.30) < 0.03
    assert sticky_bucket("user-1") == sticky_bucket("user-1")


def test_blue_green_preview_only_with_header() -> None:
    route = Route(**{**BASE.to_dict(), "mode": "blue_green", "preview_header": "X-Preview"})
    counter = WeightedCounter()
    assert choose(route, {}, counter).variant == "stable"
    assert choose(route, {"x-preview": "1"}, counter).variant == "preview"
    assert choose(route, {"x-preview": "false"}, counter).variant == "stable"


def test_candidate_not_loaded_means_stable() -> None:
    route = Route(**{**BASE.to_dict(), "mode": "canary", "weight": 100})
    assert choose(route, {}, WeightedCounter(), candidate_ready=False).variant == "stable"
    assert choose(route, {}, WeightedCounter()).version == "1.1.0"
