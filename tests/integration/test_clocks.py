"""Statutory procedure clocks (issue 5 §2; Law of 15 December 1980, 61/27-4, 61/27-5, 61/29-4,
61/29-5): the rules file and its checks, due dates across weekends, holidays and year ends, and
start / stop / reminder / expiry / deemed authorisation with an injected time, on a real store and a
real hub.

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from types import MappingProxyType

import pytest
from sqlalchemy import func, select, update

from hub.domain.clocks import ClockRules
from hub.domain.envelope import as_utc
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_events, dossier_clocks, dossiers, messages
from hub.infra.store.unit_of_work import UnitOfWork
from hub.lifecycle.clocks import clock_of, due, sync
from hub.messaging.ingress import Ingress
from tests.support.clocks import (
    BRUSSELS,
    DEEMED,
    REMINDER,
    UTC,
    _dossier,
    _registry,
)
from tests.support.clocks import rules  # noqa: F401 (a fixture)


@pytest.fixture
def store(store_url):
    engine = open_engine(store_url)
    migrate(engine)
    ingress = Ingress(_registry(), UnitOfWork(engine))
    yield ingress
    ingress.work.close()
    engine.dispose()


def _clocks(engine, dossier_id) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(dossier_clocks).where(dossier_clocks.c.dossier_id == dossier_id)).mappings()
        return {r["rule"]: dict(r) for r in rows}


def test_each_dossier_gets_the_clock_its_rule_gives_and_sync_is_idempotent(store, rules):
    engine = store.work.engine
    complete = datetime(2026, 3, 2, 9, tzinfo=UTC)            # a Monday
    first = _dossier(engine, complete_at=complete)
    returning = _dossier(engine, complete_at=complete, returning_seasonal_worker=True)
    extension = _dossier(engine, complete_at=complete, returning_seasonal_worker=True, in_country_extension=True)
    renewal = _dossier(engine, complete_at=complete, request_type="renewal")
    short_stay = _dossier(engine, kind="work_permit", complete_at=complete)             # ≤ 90 days: no DVZ clock
    plain = _dossier(engine, category="single_permit", complete_at=complete)           # no deadline in the law
    waiting = _dossier(engine)                                                          # not complete yet
    decided = _dossier(engine, category="eu_blue_card", complete_at=complete, decided_at=complete + timedelta(days=20))

    result = sync(store, rules, complete + timedelta(hours=1))
    assert result.started == 5 and not result.reminded and not result.expired
    days = {d: (as_utc(c["due_at"]).astimezone(BRUSSELS).date() - date(2026, 3, 2)).days
            for d in (first, returning, extension, renewal) for c in _clocks(engine, d).values()}
    # 90 → Sunday 31 May → Monday 1 June; 60 → 1 May (Labour Day, a Friday) → Monday 4 May; 30 → 1 April
    assert days == {first: 91, returning: 63, extension: 30, renewal: 30}
    assert set(_clocks(engine, extension)) == {"seasonal.decision-extension"}
    assert set(_clocks(engine, renewal)) == {"seasonal.renewal"}
    assert _clocks(engine, short_stay) == _clocks(engine, plain) == _clocks(engine, waiting) == {}
    assert _clocks(engine, decided)["blue-card.decision"]["outcome"] == "met"          # decided before the first scan
    assert all(c["holder"] == "dvz" and c["outcome"] == "running"
               for d in (first, returning, extension, renewal) for c in _clocks(engine, d).values())

    again = sync(store, rules, complete + timedelta(hours=2))
    assert (again.started, again.stopped, again.reminded, again.expired) == (0, 0, [], [])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossier_clocks)).scalar_one() == 5


def test_documents_clock_stop_reminder_and_expiry(store, rules):
    engine = store.work.engine
    complete = datetime(2026, 3, 2, 9, tzinfo=UTC)
    asked = datetime(2026, 3, 20, 15, tzinfo=UTC)             # a Friday: day 10 is Monday 30 March
    dossier = _dossier(engine, complete_at=complete, incomplete_since=asked)
    before = _dossier(engine, incomplete_since=asked)          # asked before admissibility: no statutory clock
    sync(store, rules, asked + timedelta(minutes=1))
    docs = _clocks(engine, dossier)["seasonal.additional-documents"]
    assert as_utc(docs["due_at"]) == datetime(2026, 3, 30, 23, 59, 59, tzinfo=BRUSSELS)
    assert _clocks(engine, before) == {}

    # the reminder (2 days before the due day) goes to DVZ, once, through the ingress
    r = sync(store, rules, datetime(2026, 3, 28, 8, tzinfo=UTC))
    assert r.reminded == [docs["id"]]
    with engine.connect() as conn:
        msg = conn.execute(select(messages).where(messages.c.id == f"clock-{docs['id']}-reminder")).mappings().one()
    assert (msg["flow_id"], msg["sender"], msg["recipients"], msg["dossier_id"]) == (REMINDER, "onss", ["dvz"], dossier)
    assert msg["payload"] == {"dossier_id": dossier, "clock": "seasonal.additional-documents",
                              "due_at": "2026-03-30T23:59:59+02:00", "days_left": 2,
                              "legal_basis": "Law of 15 December 1980, Art. 61/29-4 §6; Law of 15 December 1980, Art. 61/29-5 §5"}
    assert sync(store, rules, datetime(2026, 3, 29, 8, tzinfo=UTC)).reminded == []
    assert _clocks(engine, dossier)["seasonal.additional-documents"]["reminded_at"] is not None

    # past the due day: listed as expired (report), one audit event, and still listed by `due`
    r = sync(store, rules, datetime(2026, 3, 30, 22, 0, 1, tzinfo=UTC))
    assert r.expired == [docs["id"]] and r.deemed == []
    assert _clocks(engine, dossier)["seasonal.additional-documents"]["outcome"] == "expired"
    with engine.connect() as conn:
        (event,) = conn.execute(select(audit_events).where(audit_events.c.event == "clock_expired")
                                .where(audit_events.c.dossier_id == dossier)).mappings().all()
    assert event["actor"] == "onss" and event["reason"] == "clock seasonal.additional-documents"
    listed = due(engine, datetime(2026, 4, 1, tzinfo=UTC), timedelta(days=1), holder="dvz")
    assert [v.rule for v in listed if v.dossier_id == dossier] == ["seasonal.additional-documents"]
    assert listed[0].overdue(datetime(2026, 4, 1, tzinfo=UTC))

    # the documents come in late: the clock is `late`; a new request starts a new clock
    with engine.begin() as conn:
        conn.execute(update(dossiers).where(dossiers.c.id == dossier).values(incomplete_since=None))
    assert sync(store, rules, datetime(2026, 4, 2, tzinfo=UTC)).stopped == 1
    assert _clocks(engine, dossier)["seasonal.additional-documents"]["outcome"] == "late"
    again = datetime(2026, 4, 10, 9, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(update(dossiers).where(dossiers.c.id == dossier).values(incomplete_since=again))
    assert sync(store, rules, again + timedelta(minutes=1)).started == 1
    # supplied in time this time, then the decision: the decision clock is met, the documents clock too
    with engine.begin() as conn:
        conn.execute(update(dossiers).where(dossiers.c.id == dossier).values(incomplete_since=None))
    sync(store, rules, again + timedelta(days=2))
    with engine.begin() as conn:
        conn.execute(update(dossiers).where(dossiers.c.id == dossier)
                     .values(decided_at=again + timedelta(days=3), state="decided"))
    assert sync(store, rules, again + timedelta(days=4)).stopped == 1
    outcomes = sorted((c.rule, c.outcome) for c in clock_of(engine, dossier))
    assert outcomes == [("seasonal.additional-documents", "late"), ("seasonal.additional-documents", "met"),
                        ("seasonal.decision", "met")]
    assert due(engine, again + timedelta(days=4), timedelta(days=365)) == []


def test_a_decision_overtakes_an_open_documents_request_and_a_late_one_is_marked(store, rules):
    engine = store.work.engine
    complete = datetime(2026, 3, 2, 9, tzinfo=UTC)
    dossier = _dossier(engine, complete_at=complete, incomplete_since=complete + timedelta(days=5))
    sync(store, rules, complete + timedelta(days=5, hours=1))
    late_decision = datetime(2026, 6, 10, tzinfo=UTC)       # after the 90 days (due 2 June)
    with engine.begin() as conn:
        conn.execute(update(dossiers).where(dossiers.c.id == dossier).values(decided_at=late_decision))
    sync(store, rules, late_decision + timedelta(hours=1))
    got = _clocks(engine, dossier)
    assert got["seasonal.additional-documents"]["outcome"] == "overtaken"
    assert got["seasonal.decision"]["outcome"] == "late"
    assert as_utc(got["seasonal.decision"]["stopped_at"]) == late_decision


def test_a_regional_holder_gets_the_reminder(store, rules):
    engine = store.work.engine
    renewal = dataclasses.replace(rules.get("seasonal.renewal"), holder="region")
    custom = ClockRules(MappingProxyType({"seasonal.renewal": renewal}), rules.calendar, rules.application_fields)
    complete = datetime(2026, 3, 2, 9, tzinfo=UTC)
    dossier = _dossier(engine, region="region.german-speaking", complete_at=complete, request_type="renewal")
    sync(store, custom, complete)
    (clock,) = clock_of(engine, dossier)
    assert clock.holder == "region.german-speaking"
    assert sync(store, custom, datetime(2026, 3, 26, tzinfo=UTC)).reminded == [clock.id]
    with engine.connect() as conn:
        recipients = conn.execute(select(messages.c.recipients)
                                  .where(messages.c.id == f"clock-{clock.id}-reminder")).scalar_one()
    assert recipients == ["region.german-speaking"]
    assert [v.id for v in due(engine, datetime(2026, 3, 26, tzinfo=UTC), timedelta(days=7),
                              holder="region.german-speaking")] == [clock.id]
    assert due(engine, datetime(2026, 3, 26, tzinfo=UTC), timedelta(days=7), holder="dvz") == []


def test_deemed_authorisation_once_even_from_concurrent_workers(store, rules):
    engine = store.work.engine
    complete = datetime(2026, 10, 3, 8, tzinfo=UTC)
    waiting = _dossier(engine, category="eu_blue_card", complete_at=complete, request_type="renewal")
    decided = _dossier(engine, category="eu_blue_card", complete_at=complete)
    refused = _dossier(engine, category="eu_blue_card", complete_at=complete)
    sync(store, rules, complete + timedelta(hours=1))
    with engine.begin() as conn:
        conn.execute(update(dossiers).where(dossiers.c.id == decided)
                     .values(state="decided", decided_at=complete + timedelta(days=89),
                             residence_outcome="refused", work_outcome="granted"))
        # DVZ refused residence in time; the region's work part is still open: nothing is deemed
        conn.execute(update(dossiers).where(dossiers.c.id == refused)
                     .values(state="residence_decided", residence_outcome="refused"))
    after = datetime(2027, 1, 5, 0, 0, 1, tzinfo=BRUSSELS)   # the due day was Monday 4 January
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: sync(store, rules, after), range(4)))
    assert all(r.failed == [] for r in results) and any(r.deemed == [waiting] for r in results)
    with engine.connect() as conn:
        sent = conn.execute(select(messages.c.dossier_id, messages.c.recipients)
                            .where(messages.c.flow_id == DEEMED)).all()
        row = conn.execute(select(dossiers).where(dossiers.c.id == waiting)).mappings().one()
    assert [tuple(m) for m in sent] == [(waiting, ["dvz", "region.flanders"])]
    assert (row["state"], row["residence_outcome"], row["work_outcome"]) == ("decided", "granted", "granted")
    assert _clocks(engine, waiting)["blue-card.decision"]["outcome"] == "deemed_authorised"
    assert _clocks(engine, decided)["blue-card.decision"]["outcome"] == "met"
    assert _clocks(engine, refused)["blue-card.decision"]["outcome"] == "met"
    assert sync(store, rules, after + timedelta(days=30)).deemed == []
