"""The audit trail v1: hash-chained, append-only; verify names the first bad event."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, insert, select, update

from hub import audit
from hub.audit import AuditEvent
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_events, audit_head
from hub.infra.store.unit_of_work import UnitOfWork


@pytest.fixture
def engine(store_url):
    e = open_engine(store_url)
    migrate(e)
    if e.dialect.name == "postgresql":  # these tamper tests play an owner who disabled the guard
        with e.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
    yield e
    e.dispose()


def _fill(engine, n: int) -> None:
    with UnitOfWork(engine).transaction() as tx:   # a transaction of its own, as each caller's
        tx.record([AuditEvent("received", flow_id="single-permit.application-submitted",
                              message_id=f"m{i}", actor="portal", purpose=2,
                              legal_basis=["Art. 19"], data_categories=["identification"],
                              payload_hash="ab" * 32) for i in range(n)])


def test_chain_is_intact_after_appends(engine):
    _fill(engine, 5)
    _fill(engine, 3)
    report = audit.verify(engine)
    assert report.intact, report
    assert report.count == 8 and report.head_seq == 8
    assert [r["seq"] for r in audit.tail(engine, 3)] == [6, 7, 8]


def test_empty_chain_is_intact(engine):
    assert audit.verify(engine).intact


def test_modified_event_is_named(engine):
    _fill(engine, 10)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 4).values(actor="dvz"))
    report = audit.verify(engine)
    assert not report.intact and report.first_bad_seq == 4
    assert "hash" in report.reason


def test_deleted_event_is_named(engine):
    _fill(engine, 10)
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == 6))
    report = audit.verify(engine)
    assert not report.intact and report.first_bad_seq == 6


def test_inserted_event_is_named(engine):
    _fill(engine, 5)
    with engine.begin() as conn:
        row = dict(conn.execute(select(audit_events).where(audit_events.c.seq == 3)).mappings().one())
        conn.execute(update(audit_events).where(audit_events.c.seq >= 3)
                     .values(seq=audit_events.c.seq + 100))
        conn.execute(insert(audit_events).values({**row, "event": "consulted"}))
    report = audit.verify(engine)
    assert not report.intact and report.first_bad_seq == 3


def test_reordered_events_are_named(engine):
    _fill(engine, 6)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 2).values(seq=-2))
        conn.execute(update(audit_events).where(audit_events.c.seq == 5).values(seq=2))
        conn.execute(update(audit_events).where(audit_events.c.seq == -2).values(seq=5))
    report = audit.verify(engine)
    assert not report.intact and report.first_bad_seq == 2


def test_truncated_tail_is_detected(engine):
    _fill(engine, 6)
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq > 4))
    report = audit.verify(engine)
    assert not report.intact and report.first_bad_seq == 5
    assert "truncated" in report.reason


def test_concurrent_appends_form_one_line(engine):
    """Several transactions appending at once still make one unbroken chain (the head row is locked)."""
    def work():
        for _ in range(10):
            _fill(engine, 3)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify(engine)
    assert report.intact, report
    assert report.count == 120
    with engine.connect() as conn:
        assert conn.execute(select(audit_head.c.seq)).scalar_one() == 120


def test_no_payload_in_the_trail(engine):
    UnitOfWork(engine).record([AuditEvent("stored", payload_hash="cd" * 32, data_categories=["health"])])
    names = set(audit_events.c.keys())
    assert "payload" not in names and "payload_hash" in names
