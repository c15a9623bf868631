"""The one retry policy (mlops_actions.retry) every HTTP client uses."""

from __future__ import annotations

import pytest

from mlops_actions.retry import RetryPolicy, TryAgain, WaitTooLong


def _failing(calls: list[int], retry_after: float | None = None, succeed_at: int | None = None):  # type: ignore[no-untyped-def]
    def attempt(n: int) -> str:
        calls.append(n)
        if n == succeed_at:
            return f"ok after {n}"
        raise TryAgain(f"try {n} failed", retry_after=retry_after)
    return attempt


def test_exponential_backoff_then_the_last_failure_is_raised() -> None:
    waits: list[float] = []
    calls: list[int] = []
    with pytest.raises(TryAgain, match="try 3 failed"):
        RetryPolicy(retries=3, backoff=0.5, sleep=waits.append).call(_failing(calls))
    assert calls == [0, 1, 2, 3] and waits == [0.5, 1.0, 2.0]
    capped: list[float] = []
    with pytest.raises(TryAgain):
        RetryPolicy(retries=4, backoff=2.0, max_backoff=5.0, sleep=capped.append).call(_failing([]))
    assert capped == [2.0, 4.0, 5.0, 5.0]


def test_retry_after_is_honoured_capped_or_refused() -> None:
    waits: list[float] = []
    assert RetryPolicy(retries=3, sleep=waits.append).call(_failing([], 2.0, succeed_at=2)) == "ok after 2"
    assert waits == [2.0, 2.0]
    waits.clear()
    with pytest.raises(TryAgain):
        RetryPolicy(retries=2, retry_after_cap=5.0, sleep=waits.append).call(_failing([], 3600.0))
    assert waits == [5.0, 5.0]
    waits.clear()
    calls: list[int] = []
    with pytest.raises(WaitTooLong, match="asked to wait 3600s, more than 60s"):
        RetryPolicy(retries=3, max_wait=60.0, sleep=waits.append).call(_failing(calls, 3600.0))
    assert calls == [0] and waits == []  # refused at once, never slept


def test_jitter_stays_within_its_bound_and_a_deadline_stops_early() -> None:
    policy = RetryPolicy(backoff=1.0, jitter=0.25)
    draws = [policy.backoff_for(2) for _ in range(200)]
    assert all(2.0 <= w <= 2.25 for w in draws) and len(set(draws)) > 1
    clock = [0.0]
    calls: list[int] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    import time
    real = time.monotonic
    try:
        time.monotonic = lambda: real() + clock[0]  # type: ignore[assignment]
        with pytest.raises(TryAgain):
            RetryPolicy(retries=10, backoff=1.0, deadline=5.0, sleep=sleep).call(_failing(calls))
    finally:
        time.monotonic = real  # type: ignore[assignment]
    assert len(calls) < 11 and clock[0] <= 8.0  # 1 + 2 + 4 s: the next try would pass the deadline


def test_a_lookup_before_each_resend_can_end_the_retries() -> None:
    calls: list[int] = []
    looked: list[int] = []

    def look_up(n: int) -> str | None:
        looked.append(n)
        return "found" if n == 2 else None

    assert RetryPolicy(retries=5, backoff=0.0).call(_failing(calls), before_resend=look_up) == "found"
    assert calls == [0, 1] and looked == [1, 2]
    with pytest.raises(ValueError, match="final"):  # anything but TryAgain is final
        RetryPolicy(retries=5).call(lambda n: (_ for _ in ()).throw(ValueError("final")))
