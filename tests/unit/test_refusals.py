"""Refusals on the record without flooding it (hub/audit/refusals.py): a fake recorder, a fake clock."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from hub.audit.chain import AuditEvent
from hub.audit.refusals import ANY_ROUTE, MAX_TEXT, RefusalLog

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.t - 1000.0)


class OwnedLock:
    """A lock that knows which thread holds it."""

    def __init__(self):
        self._lock, self.owner = threading.Lock(), None

    def __enter__(self):
        self._lock.acquire()
        self.owner = threading.get_ident()

    def __exit__(self, *exc):
        self.owner = None
        self._lock.release()


class Recorder:
    def __init__(self):
        self.calls: list[list[AuditEvent]] = []
        self.fail = False
        self.inside: list[bool] = []
        self.log: RefusalLog | None = None

    def record(self, events):
        if self.log is not None:   # the lock is never held while the trail is written
            self.inside.append(self.log._lock.owner == threading.get_ident())
        if self.fail:
            raise ConnectionError("store down")
        self.calls.append(list(events))

    @property
    def events(self) -> list[AuditEvent]:
        return [e for call in self.calls for e in call]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def rec():
    return Recorder()


def make(rec, clock, **kw) -> RefusalLog:
    log = RefusalLog(rec, clock=clock, wall_clock=clock.wall, **kw)
    log._lock = OwnedLock()
    rec.log = log
    return log


def test_ten_thousand_identical_refusals_are_two_events(rec, clock):
    log = make(rec, clock, window_seconds=60)
    for i in range(10_000):
        clock.t = 1000.0 + i * 0.005            # all within 50 s
        log.refused("203.0.113.7", "missing_token", "/v1/inbox", None, None)
    assert len(rec.events) == 1
    first = rec.events[0]
    assert (first.event, first.outcome, first.actor, first.acting_person, first.reason, first.count) == \
        ("rejected", "rejected", None, None, "missing_token /v1/inbox", None)
    assert log.flush() == 0                      # the window is not over
    clock.t = 1061.0
    assert log.flush() == 1
    (agg,) = rec.events[1:]
    assert (agg.event, agg.outcome, agg.actor, agg.count) == ("rejected", "rejected", None, 9_999)
    assert agg.reason.startswith("missing_token /v1/inbox (same source, 2026-03-02T09:00:00Z to ")
    assert log.flush() == 0 and log.tracked_keys == 0
    # the next window: the first refusal is on the record at once again
    log.refused("203.0.113.7", "missing_token", "/v1/inbox", None, None)
    assert len(rec.events) == 3 and rec.events[-1].count is None
    assert not any(rec.inside)


def test_a_refusal_after_the_window_writes_the_due_counts_with_its_own(rec, clock):
    log = make(rec, clock, window_seconds=10)
    for _ in range(5):
        log.refused("198.51.100.1", "invalid_token", "/v1/messages", None, None)
    clock.t += 11
    log.refused("198.51.100.1", "invalid_token", "/v1/messages", None, None)
    assert [len(c) for c in rec.calls] == [1, 2]             # one append: the count, then the new event
    agg, new = rec.calls[1]
    assert agg.count == 4 and new.count is None and new.reason == "invalid_token /v1/messages"


def test_a_kind_seen_only_once_has_no_aggregate(rec, clock):
    log = make(rec, clock)
    log.refused("198.51.100.1", "missing_token", "/v1/inbox", None, None)
    clock.t += 61
    assert log.flush() == 0 and len(rec.events) == 1


def test_each_kind_has_its_own_immediate_event(rec, clock):
    log = make(rec, clock)
    kinds = [("198.51.100.1", "missing_token", "/v1/inbox", None, None),
             ("198.51.100.1", "invalid_token", "/v1/inbox", None, None),          # another code
             ("198.51.100.1", "missing_token", "/v1/messages", None, None),       # another route
             ("198.51.100.2", "missing_token", "/v1/inbox", None, None),          # another source
             ("dvz", "not_authorised", "/v1/messages", "dvz", None),               # a party
             ("dvz", "not_authorised", "/v1/messages", "dvz", "agent-1")]          # one of its persons
    for _ in range(3):
        for k in kinds:
            log.refused(*k)
    assert [(e.actor, e.acting_person, e.reason) for e in rec.events] == \
        [(k[3], k[4], f"{k[1]} {k[2]}") for k in kinds]
    clock.t += 61
    assert log.flush() == len(kinds)
    aggs = rec.events[len(kinds):]
    assert [(e.actor, e.acting_person, e.count) for e in aggs] == [(k[3], k[4], 2) for k in kinds]


def test_rotating_addresses_past_the_budget_are_aggregated(rec, clock):
    log = make(rec, clock, per_window_budget=5)
    for i in range(1000):
        log.refused(f"10.0.{i // 256}.{i % 256}", "missing_token", "/v1/inbox", None, None)
    assert len(rec.events) == 5                                # the budget: five written at once
    clock.t += 61
    assert log.flush() == 1
    (agg,) = rec.events[5:]
    assert agg.count == 995 and agg.actor is None
    assert agg.reason.startswith("missing_token /v1/inbox (many sources, ")
    assert sum(e.count or 1 for e in rec.events) == 1000      # every refusal counted, once


def test_past_the_budget_a_party_keeps_its_name_and_routes_stay_apart(rec, clock):
    log = make(rec, clock, per_window_budget=1)
    log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)           # the budget
    for i in range(3):
        log.refused(f"10.0.0.{i + 2}", "missing_token", "/v1/inbox", None, None)
        log.refused(f"10.0.0.{i + 2}", "missing_token", "/v1/messages", None, None)
        log.refused("pes.vdab", "rate_limited", "/v1/messages", "pes.vdab", None)
    clock.t += 61
    log.flush()
    assert sorted((e.actor or "", e.reason.split(" (")[0], e.count) for e in rec.events[1:]) == [
        ("", "missing_token /v1/inbox", 3), ("", "missing_token /v1/messages", 3),
        ("pes.vdab", "rate_limited /v1/messages", 3)]


def test_memory_is_capped(rec, clock):
    """Past the budget and the cap, made-up routes fold into one count per code (route "*")."""
    log = make(rec, clock, per_window_budget=10, max_keys=50)
    for i in range(20_000):
        log.refused(f"10.{i % 250}.{i // 250}.1", "missing_token" if i % 2 else "invalid_token",
                    f"/v1/inbox/{i}/ack", None, None)
        assert log.tracked_keys <= 10 + 50 + 2
    clock.t += 61
    written = log.flush()
    assert written == 50 + 2 and log.tracked_keys == 0
    aggs = rec.events[10:]
    assert sum(e.count for e in aggs) == 20_000 - 10
    star = [e for e in aggs if f" {ANY_ROUTE} " in e.reason]
    assert sorted(e.reason.split()[0] for e in star) == ["invalid_token", "missing_token"]
    assert sum(e.count for e in star) == 20_000 - 10 - 50


def test_long_routes_and_sources_are_clipped(rec, clock):
    log = make(rec, clock)
    log.refused("x" * 10_000, "missing_token", "/v1/" + "a" * 10_000, None, None)
    assert len(rec.events[0].reason) == len("missing_token ") + MAX_TEXT


def test_a_refusal_without_a_route_reads_as_today(rec, clock):
    log = make(rec, clock)
    log.refused("anonymous", "payload_too_large", None, None, None)
    assert rec.events[0].reason == "payload_too_large"


def test_flush_final_writes_the_current_window_and_keeps_its_kinds(rec, clock):
    log = make(rec, clock, per_window_budget=1)
    for _ in range(4):
        log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)
    log.refused("10.0.0.2", "missing_token", "/v1/inbox", None, None)       # past the budget
    assert log.flush() == 0                                                  # nothing due yet
    assert log.flush(final=True) == 2                                        # shutdown: all of it
    assert sorted(e.count for e in rec.events[1:]) == [1, 3]
    log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)       # still a repeat
    assert len(rec.events) == 3
    clock.t += 61
    assert log.flush() == 1 and rec.events[-1].count == 1


def test_a_failed_write_loses_no_count(rec, clock):
    log = make(rec, clock, window_seconds=10)
    for _ in range(3):
        log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)
    clock.t += 11
    rec.fail = True
    with pytest.raises(ConnectionError):
        log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)  # its own event fails too
    with pytest.raises(ConnectionError):
        log.flush()
    rec.fail = False
    assert log.flush() == 1                   # the 2 repeats and the refusal not written: one kind
    (agg,) = rec.events[1:]
    assert agg.count == 3 and agg.reason.startswith("missing_token /v1/inbox (same source, ")
    log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)     # still its window's repeat
    assert len(rec.events) == 2


def test_the_timer_writes_due_counts_and_stop_writes_the_rest(rec):
    log = RefusalLog(rec, window_seconds=0.3)
    log.start(interval=0.01)
    for _ in range(3):
        log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)
    deadline = time.monotonic() + 5
    while len(rec.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [e.count for e in rec.events] == [None, 2]
    log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)
    log.refused("10.0.0.1", "missing_token", "/v1/inbox", None, None)
    log.stop()
    assert [e.count for e in rec.events] == [None, 2, None, 1]
    assert log._thread is None and log.flush(final=True) == 0


def test_concurrent_refusals_are_all_counted(rec, clock):
    log = make(rec, clock, per_window_budget=3)

    def hammer(n: int):
        for i in range(2000):
            log.refused(f"10.0.{n}.{i % 7}", "missing_token", "/v1/inbox", None, None)
    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.t += 61
    log.flush()
    assert len([e for e in rec.events if e.count is None]) == 3
    assert sum(e.count or 1 for e in rec.events) == 8 * 2000
    assert not any(rec.inside)


def test_bad_settings_are_refused(rec):
    with pytest.raises(ValueError):
        RefusalLog(rec, window_seconds=0)
    with pytest.raises(ValueError):
        RefusalLog(rec, max_keys=0)
