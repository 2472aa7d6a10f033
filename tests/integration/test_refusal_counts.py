"""Aggregated refusals on each store (SQLite, PostgreSQL): the `count` of an audit event, its
migration (0005), the hash chain with and without it, the bundle, the officer's search and report."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, insert, inspect, select, table, update

from hub import audit
from hub.audit import CheckpointPolicy, bundle, chain
from hub.audit.chain import AuditEvent
from hub.audit.query import AuditFilter, search
from hub.audit.refusals import RefusalLog
from hub.audit.report import build_report
from hub.infra.store import current_revision, migrate, open_engine
from hub.infra.store.db import head_revision
from hub.infra.store.db import _config
from hub.infra.store.schema import audit_events, audit_head, metadata
from hub.infra.store.unit_of_work import UnitOfWork
from tests.support.audit_integrity import signer  # noqa: F401 (a fixture)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def engine(store_url):
    e = open_engine(store_url)
    yield e
    e.dispose()


def _unguard(engine) -> None:
    """Tamper tests play an owner who disabled PostgreSQL's append-only trigger."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")


def _old_hash(prev: str, values: list) -> str:
    """The hash as it was before `count` existed: the 16 HASHED_FIELDS, nothing else."""
    material = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev.encode() + material.encode()).hexdigest()


def _table_at_0004():
    """audit_events as revision 0004 has it: the same columns, without count."""
    return table("audit_events", *(column(c.name, c.type) for c in audit_events.columns if c.name != "count"))


def test_migration_keeps_an_old_chain_verifying_and_count_events_join_it(engine, signer):
    migrate(engine, "0004")
    old = _table_at_0004()
    prev = chain.GENESIS
    with engine.begin() as conn:          # three events as the hub wrote them at 0004
        for seq in (1, 2, 3):
            ts = T0 + timedelta(seconds=seq)
            values = [seq, int(ts.timestamp() * 1_000_000), "rejected", "rejected", None, None, None, None,
                      "dvz", None, None, None, [], [], "not_authorised /v1/messages", None]
            h = _old_hash(prev, values)
            conn.execute(insert(old).values(seq=seq, ts=ts, event="rejected", outcome="rejected", actor="dvz",
                                            legal_basis=[], data_categories=[],
                                            reason="not_authorised /v1/messages", prev_hash=prev, hash=h))
            prev = h
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=3, hash=prev))

    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert conn.execute(select(audit_events.c.count)).scalars().all() == [None, None, None]
    assert audit.verify(engine).intact                      # the old hashes still hold

    work = UnitOfWork(engine, CheckpointPolicy(signer, every_events=4, every_seconds=3600))
    work.record([AuditEvent("rejected", outcome="rejected", reason="missing_token /v1/inbox", count=41),
                 AuditEvent("received", actor="portal", flow_id="single-permit.application-submitted")])
    work.record([AuditEvent("rejected", outcome="rejected", reason="missing_token /v1/inbox")])
    report = audit.verify(engine, public_key=signer.public_key)
    assert report.intact and report.count == 6 and report.checkpoints == 1, report
    migrate(engine)  # idempotent


def test_downgrade_and_upgrade_again(engine):
    migrate(engine)
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0004")
    assert current_revision(engine) == "0004"
    with engine.connect() as conn:
        assert "count" not in {c["name"] for c in inspect(conn).get_columns("audit_events")}
    migrate(engine)
    assert current_revision(engine) == head_revision()
    UnitOfWork(engine).record([AuditEvent("rejected", outcome="rejected", reason="x /", count=2)])
    assert audit.verify(engine).intact


def _mixed(work) -> None:
    for i in range(4):
        work.record([AuditEvent("received", actor="portal", flow_id="single-permit.application-submitted",
                                message_id=f"m{i}", dossier_id="d1", purpose=2, legal_basis=["Art. 19"],
                                data_categories=["identification"], payload_hash="ab" * 32),
                     AuditEvent("rejected", outcome="rejected", reason="missing_token /v1/inbox",
                                count=None if i % 2 else 10 ** (i + 1)),
                     AuditEvent("rejected", outcome="rejected", actor="pes.vdab", dossier_id="d1",
                                reason="not_authorised /v1/messages", count=i + 1)],
                    at=T0 + timedelta(minutes=i))


def test_chain_with_count_events_mixed_with_others(engine, signer):
    migrate(engine)
    _unguard(engine)
    work = UnitOfWork(engine, CheckpointPolicy(signer, every_events=5, every_seconds=3600))
    _mixed(work)
    report = audit.verify(engine, public_key=signer.public_key)
    assert report.intact and report.count == 12, report
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings()]
    assert [r["count"] for r in rows] == [None, 10, 1, None, None, 2, None, 1000, 3, None, None, 4]
    for r in rows:                        # the driver paths agree with the reference hash
        assert chain.event_hash(r["prev_hash"], r) == r["hash"]
    plain = rows[0]                        # an event without count hashes exactly as before count existed
    values = [plain[n] for n in chain.HASHED_FIELDS]
    values[1] = int((plain["ts"] if plain["ts"].tzinfo else plain["ts"].replace(tzinfo=timezone.utc))
                    .timestamp() * 1_000_000)
    assert _old_hash(plain["prev_hash"], values) == plain["hash"]

    # a changed count, a count added to an event without one, a count removed: each named
    for seq, value in ((2, 11), (4, 1), (6, None)):
        with engine.begin() as conn:
            before = conn.execute(select(audit_events.c.count).where(audit_events.c.seq == seq)).scalar_one()
            conn.execute(update(audit_events).where(audit_events.c.seq == seq).values(count=value))
        bad = audit.verify(engine, public_key=signer.public_key)
        assert not bad.intact and bad.first_bad_seq == seq and "hash" in bad.reason, (seq, bad)
        with engine.begin() as conn:
            conn.execute(update(audit_events).where(audit_events.c.seq == seq).values(count=before))
    assert audit.verify(engine, public_key=signer.public_key).intact


def test_parallel_verify_with_counts(engine, signer, monkeypatch):
    migrate(engine)
    work = UnitOfWork(engine, CheckpointPolicy(signer, every_events=5, every_seconds=3600))
    _mixed(work)
    _mixed(work)
    monkeypatch.setattr(chain, "_PARALLEL_FROM", 10)
    assert audit.verify(engine, public_key=signer.public_key, workers=3).intact


def test_bundle_carries_the_count_and_verifies(engine, signer, tmp_path):
    migrate(engine)
    work = UnitOfWork(engine, CheckpointPolicy(signer, every_events=5, every_seconds=3600))
    _mixed(work)
    out = tmp_path / "d1.jsonl"
    summary = bundle.export(engine, signer, out, recorder=work, dossier_id="d1")
    assert summary.events == 8
    lines = [json.loads(line) for line in out.read_bytes().splitlines()]
    events = [line for line in lines if line["type"] == "event"]
    assert [e.get("count") for e in events] == [None, 1, None, 2, None, 3, None, 4]
    assert "count" not in events[0]                       # absent, as from the hash, when there is none
    assert bundle.verify_bundle(out.read_bytes(), signer.public_key).intact
    # the count is covered: change it (and re-seal, as a forger with the key could not) -> the event fails
    data = out.read_bytes().replace(b'"count":3,', b'"count":30,', 1)
    report = bundle.verify_bundle(data, signer.public_key)
    assert not report.intact and report.first_bad_seq == events[5]["seq"]


def test_search_and_report_count_the_aggregates(engine):
    migrate(engine)
    work = UnitOfWork(engine)
    work.record([AuditEvent("rejected", outcome="rejected", reason="missing_token /v1/inbox")], at=T0)
    work.record([AuditEvent("rejected", outcome="rejected", reason="missing_token /v1/inbox (same source, …)",
                            count=9_999)], at=T0 + timedelta(minutes=1))
    work.record([AuditEvent("rejected", outcome="rejected", reason="invalid_token /v1/messages (many sources, …)",
                            count=500)], at=T0 + timedelta(minutes=1))
    work.record([AuditEvent("rejected", outcome="rejected", actor="pes.vdab", reason="rate_limited /v1/messages"),
                 AuditEvent("rejected", outcome="rejected", actor="pes.vdab", reason="rate_limited /v1/messages",
                            count=7)], at=T0 + timedelta(minutes=2))
    page = search(engine, AuditFilter(outcome="rejected"))
    assert [r["count"] for r in page.items] == [None, 9_999, 500, None, 7]
    assert page.as_json()["items"][1]["count"] == 9_999
    rep = build_report(engine)
    denied = {d["party"]: d for d in rep.denied}
    assert denied["(unauthenticated)"]["attempts"] == 1 + 9_999 + 500
    assert denied["(unauthenticated)"]["codes"] == {"missing_token": 10_000, "invalid_token": 500}
    assert denied["pes.vdab"]["attempts"] == 8 and denied["pes.vdab"]["codes"] == {"rate_limited": 8}
    assert [d["party"] for d in rep.denied] == ["(unauthenticated)", "pes.vdab"]
    assert rep.as_json()["denied_attempts_per_party"][0]["attempts"] == 10_500


class _Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_ten_thousand_refusals_through_the_unit_of_work(engine):
    """The refusal log on a real store: two rows for 10 000 refusals, the report says 10 000."""
    migrate(engine)
    clock = _Clock()
    log = RefusalLog(UnitOfWork(engine), window_seconds=60, clock=clock)
    for _ in range(10_000):
        log.refused("203.0.113.7", "missing_token", "/v1/inbox", None, None)
    clock.t = 61
    assert log.flush() == 1
    with engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.reason, audit_events.c.count).order_by(audit_events.c.seq)).all()
    assert len(rows) == 2 and rows[0] == ("missing_token /v1/inbox", None) and rows[1].count == 9_999
    assert build_report(engine).denied[0]["attempts"] == 10_000
    assert audit.verify(engine).intact
