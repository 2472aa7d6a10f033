"""How the hub calls a source system: a timeout (in the adapter's client), bounded retries with
back-off (hub.domain.retry), and a circuit breaker per source. A source that is down makes the
call fail fast with `SourceUnavailable`; the caller keeps the work and tries again later.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from hub.domain.retry import Backoff, RetryPolicy
from hub.ports import Enricher, EnrichmentRecord, SourceRefused, SourceUnavailable, Subject

__all__ = ["CircuitBreaker", "CircuitOpen", "Resilient", "SOURCE_RETRY"]

# three tries; between them full jitter up to 50 ms, 100 ms (…, at most 1 s)
SOURCE_RETRY = RetryPolicy(max_attempts=3, backoff=Backoff(base_s=0.05, cap_s=1.0, jitter=1.0))


class CircuitOpen(SourceUnavailable):
    pass


@dataclass
class CircuitBreaker:
    """Closed → (failure_threshold consecutive failures) → open → (reset_after_s) → half-open:
    one trial call; success closes, failure opens again."""

    failure_threshold: int = 5
    reset_after_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def before_call(self) -> None:
        with self._lock:
            if self.state == "open":
                if self.clock() - self.opened_at < self.reset_after_s:
                    raise CircuitOpen("circuit open")
                self.state = "half-open"
            elif self.state == "half-open":
                # one trial at a time; the others fail fast until it answers
                raise CircuitOpen("circuit half-open, trial running")

    def success(self) -> None:
        with self._lock:
            self.state, self.failures = "closed", 0

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.state == "half-open" or self.failures >= self.failure_threshold:
                self.state, self.opened_at = "open", self.clock()


@dataclass
class Resilient:
    """An Enricher behind retries and a circuit breaker; itself an Enricher."""

    inner: Enricher
    retry: RetryPolicy = SOURCE_RETRY
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def contract(self) -> str:
        return self.inner.contract

    @property
    def contract_version(self) -> str:
        return self.inner.contract_version

    def applies(self, subject: Subject) -> bool:
        return self.inner.applies(subject)

    def fetch(self, subject: Subject) -> EnrichmentRecord:
        return self._guarded(lambda: self.inner.fetch(subject))

    def fetch_many(self, subjects: list[Subject], **options: Any) -> list[EnrichmentRecord]:
        """The source's bulk consultation when it has one (one call for many people), else one by one."""
        bulk = getattr(self.inner, "fetch_many", None)
        if bulk is None:
            return [self.fetch(s) for s in subjects]
        return self._guarded(lambda: bulk(subjects, **options))

    def _guarded(self, call: Callable[[], Any]) -> Any:
        last: Exception | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            self.breaker.before_call()
            try:
                record = call()
            except SourceUnavailable as err:
                self.breaker.failure()
                last = err
                if not self.retry.exhausted(attempt):
                    self.sleep(self.retry.delay_s(attempt, self.rng))
                continue
            except SourceRefused:
                self.breaker.success()  # the source is up; the request is wrong
                raise
            self.breaker.success()
            return record
        raise SourceUnavailable(f"{self.name}: {last}") from last
