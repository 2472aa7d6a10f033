"""Tamper-evident audit trail: signed checkpoints, verify, export bundles, PostgreSQL protection.

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select, update

from hub import audit
from hub.audit import CheckpointPolicy, chain, checkpoints
from hub.audit.chain import AuditEvent
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_checkpoints, audit_events, audit_head
from hub.infra.store.unit_of_work import UnitOfWork
from tests.support.audit_integrity import _fill
from tests.support.audit_integrity import signer  # noqa: F401 (a fixture)


@pytest.fixture
def engine(store_url, signer):
    """A store whose appends sign a checkpoint every 5 events. On PostgreSQL the append-only
    trigger is disabled: these tests play an owner who did so, and verify must still catch it."""
    e = open_engine(store_url)
    migrate(e)
    if e.dialect.name == "postgresql":
        with e.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.exec_driver_sql("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
    yield e
    e.dispose()


@pytest.fixture
def work(engine, signer):
    """The store's unit of work, sealing a checkpoint every 5 events."""
    return UnitOfWork(engine, CheckpointPolicy(signer, every_events=5, every_seconds=3600))



def _cps(engine):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).mappings()]


def test_checkpoints_every_n_events_seal_the_chain(engine, work, signer):
    _fill(work, 17)  # appends of 3: heads 3, 6, 9, 12, 15, 17 -> crossings of 5 at 6, 12, 15
    assert [cp["seq"] for cp in _cps(engine)] == [6, 12, 15]
    assert [cp["from_seq"] for cp in _cps(engine)] == [1, 7, 13]
    report = audit.verify(engine, public_key=signer.public_key)
    assert report.intact, report
    assert (report.count, report.checkpoints, report.sealed_seq, report.unsealed) == (17, 3, 15, 2)
    assert "2 unsealed" in str(report)


def test_checkpoint_after_t_seconds_and_on_demand(engine, signer):
    _fill(UnitOfWork(engine, CheckpointPolicy(signer, every_events=1000, every_seconds=0)), 4, batch=2)
    assert [cp["seq"] for cp in _cps(engine)] == [2, 4]        # every append: T elapsed
    _fill(UnitOfWork(engine, CheckpointPolicy(signer, every_events=1000, every_seconds=3600)), 3, batch=3)
    assert audit.verify(engine).unsealed == 3
    assert audit.checkpoint_now(engine, signer)["seq"] == 7
    assert audit.checkpoint_now(engine, signer) is None         # nothing left to seal
    report = audit.verify(engine)
    assert report.intact and report.sealed_seq == 7 and report.unsealed == 0


def test_modified_event(engine, work, signer):
    _fill(work, 12)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 4).values(actor="dvz"))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 4 and "hash" in report.reason


def test_deleted_event(engine, work, signer):
    _fill(work, 12)
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == 8))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 8 and "missing" in report.reason


def test_inserted_event(engine, work, signer):
    _fill(work, 12)
    with engine.begin() as conn:
        row = dict(conn.execute(select(audit_events).where(audit_events.c.seq == 9)).mappings().one())
        conn.execute(update(audit_events).where(audit_events.c.seq >= 9).values(seq=audit_events.c.seq + 100))
        conn.execute(update(audit_events).where(audit_events.c.seq >= 109).values(seq=audit_events.c.seq - 99))
        conn.execute(insert(audit_events).values({**row, "event": "consulted"}))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 9


def test_reordered_events(engine, work, signer):
    _fill(work, 12)
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 3).values(seq=-3))
        conn.execute(update(audit_events).where(audit_events.c.seq == 5).values(seq=3))
        conn.execute(update(audit_events).where(audit_events.c.seq == -3).values(seq=5))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 3


def test_truncated_tail_with_head_moved_back(engine, work, signer):
    """The tamperer deletes the tail and moves the head back: the chain alone would look whole,
    the signed checkpoint at 12 still names what is missing."""
    _fill(work, 14)
    with engine.begin() as conn:
        h9 = conn.execute(select(audit_events.c.hash).where(audit_events.c.seq == 9)).scalar_one()
        conn.execute(delete(audit_events).where(audit_events.c.seq > 9))
        conn.execute(update(audit_head).values(seq=9, hash=h9))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 10 and "truncated" in report.reason


def test_truncated_tail_head_left(engine, work, signer):
    _fill(work, 14)
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq > 10))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 11 and "truncated" in report.reason


def test_rewritten_and_rehashed_chain_fails_the_signature(engine, work, signer):
    """Someone who recomputes every hash after a change defeats the chain, not the checkpoint."""
    _fill(work, 12)
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings()]
        prev = chain.GENESIS
        for row in rows:
            if row["seq"] == 8:
                row["actor"] = "dvz"
            row["prev_hash"], row["hash"] = prev, chain.event_hash(prev, row)
            prev = row["hash"]
            conn.execute(update(audit_events).where(audit_events.c.seq == row["seq"])
                         .values(actor=row["actor"], prev_hash=row["prev_hash"], hash=row["hash"]))
        conn.execute(update(audit_head).values(hash=prev))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 7      # the interval 7..12 of checkpoint 12
    assert "checkpoint 12" in report.reason


def test_forged_or_missing_checkpoint(engine, work, signer, tmp_path):
    _fill(work, 18)
    other = checkpoints.ensure_key(tmp_path / "other.pem")
    assert audit.verify(engine, public_key=other.public_key).first_bad_seq == 6   # wrong key
    with engine.begin() as conn:
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq == 12))
    report = audit.verify(engine, public_key=signer.public_key)
    assert not report.intact and report.first_bad_seq == 7 and "missing" in report.reason


def test_parallel_verify_names_the_same_event(engine, work, signer, monkeypatch):
    _fill(work, 60, batch=4)
    monkeypatch.setattr(chain, "_PARALLEL_FROM", 10)
    assert audit.verify(engine, public_key=signer.public_key, workers=3).intact
    assert chain._ranges(60, [5, 10, 20, 40], 3) == [(1, 20), (21, 40), (41, 60)]
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 47).values(purpose=3))
    report = audit.verify(engine, public_key=signer.public_key, workers=3)
    assert not report.intact and report.first_bad_seq == 47
    with engine.begin() as conn:  # a broken link exactly at a range boundary
        conn.execute(update(audit_events).where(audit_events.c.seq == 21).values(prev_hash="f" * 64))
    assert audit.verify(engine, public_key=signer.public_key, workers=3).first_bad_seq == 21


@pytest.mark.postgres
def test_postgres_refuses_update_and_delete(pg_schema_url, signer):
    """Even a superuser's UPDATE, DELETE, TRUNCATE hit the append-only trigger."""
    e = open_engine(pg_schema_url)
    migrate(e)
    UnitOfWork(e).record([AuditEvent("received", actor="portal"), AuditEvent("stored", actor="portal")])
    checkpoints.checkpoint_now(e, signer)
    for stmt in ("UPDATE audit_events SET actor = 'dvz' WHERE seq = 1", "DELETE FROM audit_events WHERE seq = 2",
                 "TRUNCATE audit_events", "DELETE FROM audit_checkpoints"):
        with pytest.raises(Exception, match="append-only"):
            with e.begin() as conn:
                conn.exec_driver_sql(stmt)
    assert audit.verify(e, public_key=signer.public_key).intact
    e.dispose()


@pytest.mark.postgres
def test_postgres_runtime_role_has_no_update_or_delete(pg_schema_url):
    role = f"hub_rt_{uuid.uuid4().hex[:8]}"
    schema = pg_schema_url.split("search_path%3D")[1]
    admin = open_engine(pg_schema_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} NOSUPERUSER")
        conn.exec_driver_sql(f'GRANT ALL ON SCHEMA "{schema}" TO {role}')
    runtime = open_engine(pg_schema_url + f"%20-crole%3D{role}")
    try:
        migrate(runtime)                              # the role migrates: it owns the tables
        with runtime.begin() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == role
        UnitOfWork(runtime).record([AuditEvent("received", actor="portal")])   # appending still works
        for stmt in ("UPDATE audit_events SET actor = 'dvz'", "DELETE FROM audit_events",
                     "UPDATE audit_checkpoints SET seq = 0"):
            with pytest.raises(Exception, match="permission denied"):
                with runtime.begin() as conn:
                    conn.exec_driver_sql(stmt)
        assert audit.verify(runtime).intact
    finally:
        runtime.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_rows_written_by_the_driver_path_match_the_reference_hash(engine, work, signer):
    """append writes through COPY / executemany: read back with the SQLAlchemy types, every row
    still hashes as the reference event_hash says; a non-UTC `now` is stored as the same instant."""
    cet = timezone(timedelta(hours=1))
    work.record([AuditEvent("consulted", actor="dvz", legal_basis=["Art. 10 2°"], reason="ü")],
                at=datetime(2026, 11, 23, 10, 0, 0, 1, tzinfo=cet))
    _fill(work, 4)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(audit_events).order_by(audit_events.c.seq)).mappings()]
    for row in rows:
        assert chain.event_hash(row["prev_hash"], row) == row["hash"]
    first = rows[0]["ts"] if rows[0]["ts"].tzinfo else rows[0]["ts"].replace(tzinfo=timezone.utc)
    assert first == datetime(2026, 11, 23, 9, 0, 0, 1, tzinfo=timezone.utc)
    assert rows[0]["legal_basis"] == ["Art. 10 2°"] and rows[0]["data_categories"] == []
    assert audit.verify(engine, public_key=signer.public_key).intact
