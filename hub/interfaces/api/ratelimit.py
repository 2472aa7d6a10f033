"""Rate limits per party: a token bucket each, so that one party cannot starve the others.

Availability is part of the security of processing the processor owes (Art. 8 §2; GDPR art. 32
§1 b). Each authenticated party (bearer token, or mTLS identity when on) has a bucket of
HUB_RATE_LIMIT_BURST requests refilled at HUB_RATE_LIMIT_PER_SECOND; an empty bucket answers 429
a problem with `"error": "rate_limited"` with `Retry-After` and leaves a `rejected` audit event. Health checks
are exempt; requests without a valid identity pass through to be refused (401) by the route.
Buckets live in the process: with N API processes a party may reach N times the rate.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable

from starlette.requests import Request

from hub.interfaces.api import problems
from hub.interfaces.api.deps import identify
from hub.domain.errors import HubError, RateLimited

EXEMPT_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


class RateLimiter:
    """Token buckets by key; `take` answers 0 when allowed, else the seconds until a token is back."""

    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.per_second, self.burst, self._clock = per_second, max(1, burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.per_second


class RateLimit:
    """ASGI middleware applying the party's bucket before the route runs."""

    def __init__(self, app, hub, record: Callable[[object, Request | None, HubError], None]):
        self.app, self.hub, self.record = app, hub, record
        settings = hub.settings
        self.limiter = (RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
                        if settings.rate_limit_per_second > 0 else None)

    async def __call__(self, scope, receive, send):
        if self.limiter is None or scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            return await self.app(scope, receive, send)
        request = Request(scope)
        caller = self._identify(request)
        wait = self.limiter.take(caller.party) if caller is not None else 0.0
        if wait <= 0:
            return await self.app(scope, receive, send)
        retry_after = max(1, math.ceil(wait))
        err = RateLimited(f"more than {self.limiter.burst} requests at once or "
                          f"{self.limiter.per_second:g}/s sustained", retry_after=retry_after)
        self.record(self.hub, request, err)
        await problems.send(send, err, scope.get("path"))

    def _identify(self, request: Request):
        """The caller as the route will see it (kept on the request: the token is checked once),
        or None (the route then refuses with 401)."""
        try:
            return identify(request)
        except HubError:
            return None
