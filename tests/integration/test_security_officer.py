"""The security officer's tools (audit search and report) and the record of processing (GDPR art. 30).

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hub import audit
from hub.audit import AuditEvent
from hub.audit.query import AuditFilter, search
from hub.audit.report import OfficeHours, build_report
from hub.infra.store import migrate, open_engine
from hub.infra.store.unit_of_work import UnitOfWork
from tests.support.security_officer import BRUSSELS


def test_search_and_report_on_each_store(store_url):
    engine = open_engine(store_url)
    migrate(engine)
    t0 = datetime(2024, 3, 4, 9, 0, tzinfo=BRUSSELS)                 # a Monday, in office hours
    f = "single-permit.work-decision"
    steps = [
        (t0, AuditEvent("received", flow_id=f, actor="region.flanders", dossier_id="d1", purpose=3)),
        (t0, AuditEvent("delivered", flow_id=f, actor="region.flanders", recipient="dvz", dossier_id="d1",
                        data_categories=["administrative"])),
        (t0 + timedelta(days=7), AuditEvent("received", flow_id=f, actor="region.wallonia", dossier_id="d2")),
        (t0 + timedelta(days=7), AuditEvent("delivered", flow_id=f, actor="region.wallonia", recipient="dvz",
                                            dossier_id="d2", data_categories=["health"])),
        (t0 + timedelta(days=7, hours=10), AuditEvent("consulted", actor="dvz", acting_person="p1", dossier_id="d2",
                                                      data_categories=["health", "criminal_record"])),  # 19:00
        (t0 + timedelta(days=12), AuditEvent("consulted", actor="dvz", acting_person="p2", dossier_id="d2")),  # Sat
        (t0 + timedelta(days=8), AuditEvent("rejected", outcome="rejected", actor="pes.vdab", flow_id=f,
                                            reason="sender_not_allowed")),
        (t0 + timedelta(days=8), AuditEvent("rejected", outcome="rejected", reason="missing_token /v1/inbox")),
    ]
    work = UnitOfWork(engine)
    for when, ev in steps:
        work.record([ev], at=when.astimezone(timezone.utc))   # the store keeps UTC
    try:
        since = t0 + timedelta(days=1)
        page = search(engine, AuditFilter(party="dvz", since=since), limit=2)
        assert [r["seq"] for r in page.items] == [4, 5] and page.next_after == 5
        assert [r["seq"] for r in search(engine, AuditFilter(party="dvz", since=since), after=5).items] == [6]
        assert [r["seq"] for r in search(engine, AuditFilter(outcome="rejected")).items] == [7, 8]

        rep = build_report(engine, since, None, OfficeHours.parse("Mon-Fri 08:00-18:00 Europe/Brussels"))
        assert rep.events_read == 6
        assert {(d["party"], d["attempts"]) for d in rep.denied} == {("pes.vdab", 1), ("(unauthenticated)", 1)}
        assert {d["party"]: d["codes"] for d in rep.denied}["(unauthenticated)"] == {"missing_token": 1}
        assert {(s["person"], s["health"], s["criminal_record"]) for s in rep.special_access} == \
            {("dvz", 1, 0), ("p1", 1, 1)}
        assert [e["seq"] for e in rep.after_hours] == [5, 6]
        # DVZ had received on the flow before the range; Wallonia is new to it
        assert [(r["party"], r["role"]) for r in rep.first_use] == [("region.wallonia", "sent")]
        assert [(r["party"], r["role"]) for r in build_report(engine).first_use] == \
            [("region.flanders", "sent"), ("dvz", "received"), ("region.wallonia", "sent")]
        assert audit.verify(engine).intact
    finally:
        engine.dispose()
