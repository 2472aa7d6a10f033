"""How the hub waits before trying again: one back-off and one retry policy for every caller.

    Backoff      exponential and capped, with jitter: after the n-th failure in a row (n from 0)
                 the wait is min(cap_s, base_s · 2ⁿ), times a factor drawn from [1 − jitter, 1]
                 (jitter 1: "full jitter", anywhere from nothing to the ceiling; 0.5: at least
                 half of it; 0: exactly the ceiling)
    RetryPolicy  how many tries in all, and the wait between two: its Backoff, or a fixed schedule
                 where the waits must come from a closed set (each of the broker's retry queues
                 holds one TTL)

The callers: the transports (a failed message tried again, then parked; a lost broker connection),
the calls to the source systems (hub.messaging.resilience), the enricher (a job waiting for a
source that is down) and the back-office pollers.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff", "RetryPolicy"]

_MAX_EXPONENT = 62   # 2**62 s is already past any cap; the power itself must not overflow a float


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.2
    cap_s: float = 10.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0 or not 0.0 <= self.jitter <= 1.0:
            raise ValueError("a back-off needs base_s >= 0, cap_s >= 0 and a jitter between 0 and 1")

    def ceiling(self, failures: int) -> float:
        """The longest wait after `failures` failures in a row (0: the first failure)."""
        return min(self.cap_s, self.base_s * 2 ** min(max(failures, 0), _MAX_EXPONENT))

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """A wait drawn from [ (1 − jitter) · ceiling, ceiling ]."""
        top = self.ceiling(failures)
        return (rng or random).uniform((1.0 - self.jitter) * top, top)


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` tries (the first included). The wait after failed attempt n (from 1)
    is drawn from `backoff` when there is one, else read from `delays_ms` (the last one repeats)."""

    max_attempts: int = 5
    delays_ms: tuple[int, ...] = (1000, 5000, 30000, 120000)
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or not self.delays_ms or min(self.delays_ms) < 0:
            raise ValueError("retry policy needs max_attempts >= 1 and non-negative delays")

    def exhausted(self, attempt: int) -> bool:
        """Attempt n (from 1) was the last one allowed."""
        return attempt >= self.max_attempts

    def delay_ms(self, attempt: int) -> int:
        """The scheduled wait after failed attempt n (from 1): delays_ms[min(n − 1, len − 1)]."""
        return self.delays_ms[min(max(attempt, 1) - 1, len(self.delays_ms) - 1)]

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt n (from 1), in seconds."""
        if self.backoff is not None:
            return self.backoff.delay(attempt - 1, rng)
        return self.delay_ms(attempt) / 1000.0
