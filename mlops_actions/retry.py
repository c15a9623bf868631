"""The one retry policy of every HTTP client (GitHub, MLflow, alert sinks), on tenacity.

A client says what one try does and how it failed; this module decides whether and when
to try again, the same way for everyone:

* a try that may succeed later raises :class:`TryAgain` (a connection error, a 5xx, a 429,
  a rate limit), optionally with the wait the server asked for (``Retry-After``);
* the wait is that ``Retry-After`` when there is one, else exponential backoff
  (``backoff``, ``2 x backoff``, ... capped at ``max_backoff``) plus up to ``jitter``
  random seconds (off by default: the documented figures, 0.5/1/2 s, are exact);
* a ``Retry-After`` longer than ``retry_after_cap`` is cut to it (the alert sinks: 5 s), and
  one longer than ``max_wait`` is refused at once (:class:`WaitTooLong`), never slept: an
  hour-long wait is a failure to report, not to sit through (the GitHub client: 60 s);
* at most ``retries`` resends, and never past ``deadline`` seconds from the first try;
* anything else a try raises is final and propagates untouched.

When the tries run out the last :class:`TryAgain` is raised, so each client words its own
error (naming its request, never its secrets) from what the last try saw.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

__all__ = ["RetryPolicy", "TryAgain", "WaitTooLong"]

T = TypeVar("T")


class TryAgain(Exception):
    """One try failed in a way a later one may not. ``retry_after``: the seconds the server
    asked to wait (None: use the backoff); ``detail``: what the try saw, for the final error."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class WaitTooLong(Exception):
    """The server asked to wait longer than the policy's ``max_wait``: given up at once."""

    def __init__(self, last: TryAgain, wait: float, max_wait: float) -> None:
        super().__init__(f"asked to wait {wait:.0f}s, more than {max_wait:.0f}s: {last.detail}")
        self.last = last
        self.wait = wait
        self.max_wait = max_wait


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, how long apart, and for how long in all, a client tries again."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = float("inf")
    max_wait: float = float("inf")
    retry_after_cap: float | None = None
    jitter: float = 0.0
    deadline: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def backoff_for(self, retry: int) -> float:
        """The backoff before resend number ``retry`` (1-based), jitter included."""
        wait = min(self.max_backoff, self.backoff * 2.0 ** (retry - 1))
        return wait + (random.uniform(0.0, self.jitter) if self.jitter else 0.0)

    def wait_for(self, error: TryAgain, retry: int) -> float:
        """The wait before resend number ``retry`` after ``error``; WaitTooLong when the
        server asked for more than ``max_wait``."""
        if error.retry_after is None:
            return self.backoff_for(retry)
        wait = max(0.0, error.retry_after)
        if self.retry_after_cap is not None:
            wait = min(wait, self.retry_after_cap)
        if wait > self.max_wait:
            raise WaitTooLong(error, wait, self.max_wait)
        return wait

    def call(self, attempt: Callable[[int], T], *,
             before_resend: Callable[[int], T | None] | None = None) -> T:
        """``attempt(n)`` (n = 0 for the first try) until it returns, raises something other
        than :class:`TryAgain`, or the policy gives up (then the last TryAgain is raised, or
        WaitTooLong). ``before_resend(n)``, after the wait and before resend ``n``, may return
        the result instead (a write whose lost answer hid a success, found by a lookup)."""
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self.retries + 1)
        if self.deadline is not None:
            stop = stop | tenacity.stop_after_delay(self.deadline)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            if not isinstance(error, TryAgain):  # only TryAgain is retried
                return 0.0
            return self.wait_for(error, state.attempt_number)

        retrying = tenacity.Retrying(stop=stop, wait=wait, sleep=self.sleep, reraise=True,
                                     retry=tenacity.retry_if_exception_type(TryAgain))
        tries = [0]

        def one() -> T:
            n = tries[0]
            tries[0] += 1
            if n and before_resend is not None:
                result = before_resend(n)
                if result is not None:
                    return result
            return attempt(n)

        return retrying(one)
