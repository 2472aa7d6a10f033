"""Refused requests on the record, without letting anyone flood the record (GDPR Art. 5(1)(f), 32).

Every refused request leaves a trace in the audit trail, but one `rejected` event per request lets
an anonymous caller grow the trail without bound. `RefusalLog` sits between the refusals and the
trail (any `Recorder`, i.e. the unit of work):

  * the first refusal of each kind — (source, code, route, actor, acting person) — in a window is
    written at once, as the one event it always was: `rejected`, outcome `rejected`, the actor and
    acting person, reason "<code> <route>";
  * its repeats in the same window are counted, not written; once the window is over, ONE event per
    kind carries their number in `count` (a field of the event, hashed with it), reason
    "<code> <route> (same source, <first> to <last>)";
  * at most `per_window_budget` events are written at once per window, for a caller rotating its
    source (addresses): past it, a new kind is counted under source "many", by (code, route, actor,
    acting person) — for anonymous callers, by (code, route) — and written once the window is over,
    reason "<code> <route> (many sources, <first> to <last>)";
  * memory is bounded: the immediate kinds by the budget, the kinds counted under "many" by
    `max_keys`; past that cap a refusal is counted by (code, actor) alone, route "*" — the refusal
    codes are the hub's own and the actors the registered parties, so these keys are bounded too.
    Routes and sources are clipped to 256 characters.
    (The caller should pass the route's template — "/v1/inbox/{message_id}/ack" — rather than the
    raw path, which the requester chooses: one kind per route, not one per made-up id.)

So a window writes, whatever the number of requests, at most 2 × `per_window_budget` events (each
immediate kind and its count) + `max_keys` (the counts under "many") + one per (code, actor) past
the cap: 10 000 identical refusals from one source are 2 events, not 10 000; 10 000 from 10 000
rotating addresses on one route are `per_window_budget` + 1.

Windows are consecutive, not aligned: one opens with the first refusal after the last one closed.
The counts of a closed window are written by the next refusal (in the same append as its own event)
or by `flush()`; `start(interval)` runs `flush()` on a daemon thread, `stop()` ends it and writes
every count still held (`flush(final=True)`), for a shutdown. An aggregated event's time is the
time it is written (up to a window plus a flush interval after the refusals it counts); its reason
names the wall-clock time of the first and the last of them.

A write that fails (the store down) loses nothing it holds: the counts go back, to be written with
the next write, and an immediate event that could not be written is counted as an aggregated one
(count 1); the error is raised to the caller of `refused` / `flush` (the timer logs it).

Thread-safe: one lock over the counters; the recorder is called after it is released.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import structlog

from hub.audit.chain import AuditEvent, Recorder

MANY = "many"          # the source of the kinds counted past the budget
ANY_ROUTE = "*"        # the route of the refusals counted past the cap on keys
MAX_TEXT = 256         # routes and sources are clipped to this many characters

log = structlog.get_logger("hub.audit.refusals")

# (source, code, route, actor, acting person)
Key = tuple[str, str, str, str | None, str | None]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(ts: datetime) -> str:
    ts = ts.astimezone(timezone.utc) if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Tally:
    """The refusals of one kind not yet written: how many, the first and the last (wall clock)."""

    code: str
    route: str
    actor: str | None
    acting_person: str | None
    pooled: bool                 # counted under source "many" (no immediate event of its own)
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, at: datetime, n: int = 1) -> None:
        if self.first is None:
            self.first = at
        self.last, self.count = at, self.count + n

    def merge(self, other: "_Tally") -> None:
        if other.count:
            if self.first is None or (other.first is not None and other.first < self.first):
                self.first = other.first
            if self.last is None or (other.last is not None and other.last > self.last):
                self.last = other.last
            self.count += other.count

    def take(self) -> "_Tally":
        """A copy holding the count, this one reset to none."""
        out = _Tally(self.code, self.route, self.actor, self.acting_person, self.pooled,
                     self.count, self.first, self.last)
        self.count, self.first, self.last = 0, None, None
        return out

    def event(self) -> AuditEvent:
        span = f"{_stamp(self.first)} to {_stamp(self.last)}" if self.first and self.last else "times unknown"
        what = "many sources" if self.pooled else "same source"
        return AuditEvent("rejected", outcome="rejected", actor=self.actor, acting_person=self.acting_person,
                          reason=f"{_reason(self.code, self.route)} ({what}, {span})", count=self.count)


def _reason(code: str, route: str) -> str:
    return f"{code} {route}" if route else code


def _clip(text: str | None) -> str:
    return (text or "")[:MAX_TEXT]


class RefusalLog:
    """Refusals into the audit trail: each kind at once, its repeats counted; see the module.

    `clock` (monotonic seconds) times the windows; `wall_clock` (aware datetimes) dates the first
    and last refusal an aggregated event counts.
    """

    def __init__(self, recorder: Recorder, window_seconds: float = 60.0, per_window_budget: int = 100,
                 max_keys: int = 1000, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = _utcnow):
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if per_window_budget < 0 or max_keys < 1:
            raise ValueError("per_window_budget must be 0 or more, max_keys 1 or more")
        self.recorder = recorder
        self.window_seconds, self.per_window_budget, self.max_keys = window_seconds, per_window_budget, max_keys
        self._clock, self._wall = clock, wall_clock
        self._lock = threading.Lock()
        self._window_end: float | None = None
        self._seen: dict[Key, _Tally] = {}      # kinds written at once this window: their repeats
        self._pooled: dict[Key, _Tally] = {}    # kinds counted only (past the budget or the cap)
        self._backlog: dict[Key, _Tally] = {}   # counts whose write failed: written with the next
        self._thread: threading.Thread | None = None
        self._stopping: threading.Event | None = None

    # --- the refusals --------------------------------------------------------------------------

    def refused(self, source: str, code: str, route: str | None, actor: str | None = None,
                acting_person: str | None = None) -> None:
        """One refused request. `source`: the authenticated party if any, else the peer address;
        `code`: the refusal's machine-readable code; `route`: preferably the route's template.
        Writes the counts of a window that is over, and this refusal's event if it is the first of
        its kind in the window; returns once they are committed (raises if they could not be)."""
        now, at = self._clock(), self._wall()
        source, code, route = _clip(source), code[:64], _clip(route)
        key: Key = (source, code, route, actor, acting_person)
        with self._lock:
            due = self._take_due(now, final=False)
            if self._window_end is None:  # the first refusal since the last window closed opens one
                self._window_end = now + self.window_seconds
            immediate = self._count(key, at)
        events = [t.event() for _, t in due]
        if immediate:
            events.append(AuditEvent("rejected", outcome="rejected", actor=actor, acting_person=acting_person,
                                     reason=_reason(code, route)))
        if not events:
            return
        try:
            self.recorder.record(events)
        except BaseException:
            with self._lock:
                for k, t in due:
                    self._keep(k, t)
                if immediate:  # not on the record: counted instead, written with the next write
                    t = _Tally(code, route, actor, acting_person, pooled=False)
                    t.add(at)
                    self._keep(key, t)
            raise

    def flush(self, final: bool = False) -> int:
        """Write the counts of a window that is over (and any whose write failed); with `final`,
        every count held, the current window's too (for a shutdown). Returns the events written."""
        with self._lock:
            due = self._take_due(self._clock(), final)
        if not due:
            return 0
        try:
            self.recorder.record([t.event() for _, t in due])
        except BaseException:
            with self._lock:
                for k, t in due:
                    self._keep(k, t)
            raise
        return len(due)

    @property
    def tracked_keys(self) -> int:
        """The kinds held in memory (this window's, and counts waiting to be written)."""
        with self._lock:
            return len(self._seen) + len(self._pooled) + len(self._backlog)

    # --- the timer -----------------------------------------------------------------------------

    def start(self, interval: float | None = None) -> None:
        """Flush every `interval` seconds (default: the window, at most 10 s) on a daemon thread."""
        every = interval if interval is not None else min(self.window_seconds, 10.0)
        if every <= 0:
            raise ValueError("interval must be positive")
        with self._lock:
            if self._thread is not None:
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(every, self._stopping),
                                            name="refusal-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the timer (if started) and write every count still held (raises if that fails)."""
        with self._lock:
            thread, stopping = self._thread, self._stopping
            self._thread = self._stopping = None
        if thread is not None and stopping is not None:
            stopping.set()
            thread.join(timeout)
        self.flush(final=True)

    def _run(self, every: float, stopping: threading.Event) -> None:
        while not stopping.wait(every):
            try:
                self.flush()
            except Exception as err:  # noqa: BLE001 - kept, retried at the next tick
                log.warning("refusal_counts_not_written", error=type(err).__name__)

    # --- under the lock ------------------------------------------------------------------------

    def _count(self, key: Key, at: datetime) -> bool:
        """Count one refusal; True when it is the first of its kind to be written at once."""
        seen = self._seen.get(key)
        if seen is not None:
            seen.add(at)
            return False
        if len(self._seen) < self.per_window_budget:
            self._seen[key] = _Tally(key[1], key[2], key[3], key[4], pooled=False)
            return True
        _, code, route, actor, person = key
        pooled: Key = (MANY, code, route, actor, person)
        if pooled not in self._pooled and len(self._pooled) >= self.max_keys:
            pooled = (MANY, code, ANY_ROUTE, actor, None)
        tally = self._pooled.get(pooled)
        if tally is None:
            tally = self._pooled[pooled] = _Tally(code, pooled[2], actor, pooled[4], pooled=True)
        tally.add(at)
        return False

    def _take_due(self, now: float, final: bool) -> list[tuple[Key, _Tally]]:
        """The counts to write now; a window that is over is closed (the next refusal opens one)."""
        due = list(self._backlog.items())
        self._backlog = {}
        if self._window_end is None:
            return due
        if now >= self._window_end:
            due += [(k, t) for k, t in self._seen.items() if t.count]
            due += list(self._pooled.items())
            self._seen, self._pooled, self._window_end = {}, {}, None
        elif final:  # the window goes on (keys kept: a repeat is still a repeat); its counts go now
            due += [(k, t.take()) for k, t in self._seen.items() if t.count]
            due += list(self._pooled.items())
            self._pooled = {}
        return due

    def _keep(self, key: Key, tally: _Tally) -> None:
        """Hold a count whose write failed, bounded like the rest (past max_keys: by code and actor)."""
        held = self._backlog.get(key)
        if held is None and len(self._backlog) >= self.max_keys:
            key = (MANY, tally.code, ANY_ROUTE, tally.actor, None)
            held = self._backlog.get(key)
            if held is None:
                held = self._backlog[key] = _Tally(tally.code, ANY_ROUTE, tally.actor, None, pooled=True)
        if held is None:
            self._backlog[key] = tally
        else:
            held.merge(tally)
