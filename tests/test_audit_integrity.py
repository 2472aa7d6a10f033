"""Tamper-evident audit trail: signed checkpoints, verify, export bundles, PostgreSQL protection."""
from __future__ import annotations

import json
import stat
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, delete, insert, select, update
from typer.testing import CliRunner

from hub import audit
from hub.audit import CheckpointPolicy, bundle, chain, checkpoints
from hub.audit.chain import AuditEvent
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_checkpoints, audit_events, audit_head
from hub.infra.store.unit_of_work import UnitOfWork

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def signer(tmp_path):
    return checkpoints.ensure_key(tmp_path / "audit-key.pem")


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


def _fill(work, n: int, batch: int = 3, dossier=lambda i: f"dossier-{i % 2}", start=T0) -> None:
    for first in range(0, n, batch):
        work.record([AuditEvent("received", flow_id="single-permit.application-submitted",
                                message_id=f"m{i}", dossier_id=dossier(i), actor="portal",
                                purpose=2, legal_basis=["Art. 19"],
                                data_categories=["identification", "employment"],
                                payload_hash="ab" * 32)
                     for i in range(first, min(n, first + batch))],
                    at=start + timedelta(seconds=first))


def _cps(engine):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).mappings()]


# --- checkpoints ---------------------------------------------------------------------------------

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


def test_key_file_is_generated_private(tmp_path):
    s = checkpoints.ensure_key(tmp_path / "k" / "audit.pem")
    assert stat.S_IMODE((tmp_path / "k" / "audit.pem").stat().st_mode) == 0o600
    assert checkpoints.ensure_key(tmp_path / "k" / "audit.pem").key_id == s.key_id


# --- tamper: each detected, with the right sequence number ---------------------------------------

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


# --- PostgreSQL: the runtime role cannot change the trail ----------------------------------------

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


# --- export bundles ------------------------------------------------------------------------------

@pytest.fixture
def sqlite_engine(tmp_path, signer):
    e = open_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    migrate(e)
    yield e
    e.dispose()


@pytest.fixture
def sqlite_work(sqlite_engine, signer):
    return UnitOfWork(sqlite_engine, CheckpointPolicy(signer, every_events=5, every_seconds=3600))


def test_dossier_bundle_verifies_offline_and_hides_other_dossiers(sqlite_engine, sqlite_work, signer, tmp_path):
    _fill(sqlite_work, 23, dossier=lambda i: "dossier-A" if i % 3 == 0 else "dossier-B")
    out = tmp_path / "a.jsonl"
    summary = bundle.export(sqlite_engine, signer, out, recorder=sqlite_work, dossier_id="dossier-A")
    assert summary.events == 8 and summary.unsealed == 1 and summary.hash_only > 0
    data = out.read_bytes()
    assert b"dossier-B" not in data and b"m1\"" not in data   # other events: hash only
    report = bundle.verify_bundle(data, pinned=signer.public_key)
    assert report.intact, report
    assert report.events == 8 and report.unsealed == [22] and report.checkpoints == 4


def test_bundle_fails_after_any_byte_is_changed(sqlite_engine, sqlite_work, signer, tmp_path):
    _fill(sqlite_work, 9, dossier=lambda i: "dossier-A" if i in (1, 7) else "dossier-B")
    out = tmp_path / "a.jsonl"
    bundle.export(sqlite_engine, signer, out, recorder=sqlite_work, dossier_id="dossier-A")
    data = out.read_bytes()
    assert bundle.verify_bundle(data).intact
    for i in range(len(data)):
        changed = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
        assert not bundle.verify_bundle(changed).intact, f"byte {i} changed, still intact"
    assert not bundle.verify_bundle(data + b"\n").intact
    assert not bundle.verify_bundle(data[:-1]).intact


def test_bundle_names_the_bad_event_and_pins_the_key(sqlite_engine, sqlite_work, signer, tmp_path):
    _fill(sqlite_work, 10, dossier=lambda i: "dossier-A")
    out = tmp_path / "a.jsonl"
    bundle.export(sqlite_engine, signer, out, recorder=sqlite_work, since=T0, until=T0 + timedelta(hours=1))
    lines = out.read_bytes().split(b"\n")
    event = json.loads(lines[3])
    assert event["seq"] == 3
    event["actor"] = "dvz"
    lines[3] = bundle._line(event)[:-1]
    report = bundle.verify_bundle(b"\n".join(lines))
    assert not report.intact and report.first_bad_seq == 3
    # the same bundle re-keyed and re-sealed by someone else: only a pinned key catches it
    other = checkpoints.ensure_key(tmp_path / "other.pem")
    report = bundle.verify_bundle(out.read_bytes(), pinned=other.public_key)
    assert not report.intact and "pinned" in report.reason


def test_cli_export_and_verify_bundle(tmp_path, monkeypatch):
    from hub.interfaces.cli.main import app
    from hub.infra.settings import Settings
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    settings = Settings()
    e = open_engine(settings.resolved_database_url())
    migrate(e)
    _fill(UnitOfWork(e), 7, dossier=lambda i: "dossier-A" if i % 2 else "dossier-B")
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "checkpoint"]).output.startswith("checkpoint signed at sequence 7")
    verified = runner.invoke(app, ["audit", "verify"], env={"COLUMNS": "200"})
    assert verified.exit_code == 0 and "1 signed checkpoints, sealed up to 7, 0 unsealed" in verified.output
    out = tmp_path / "bundle.jsonl"
    result = runner.invoke(app, ["audit", "export", "--dossier", "dossier-A", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    last = audit.tail(e, 1)[0]
    assert (last["event"], last["dossier_id"], last["reason"]) == ("exported", "dossier-A", "audit bundle: 3 events")
    pem = tmp_path / "audit.pub"
    pem.write_text(runner.invoke(app, ["audit", "public-key"]).output)
    ok = runner.invoke(app, ["audit", "verify", "--bundle", str(out), "--public-key", str(pem)])
    assert ok.exit_code == 0 and "bundle intact: 3 events" in ok.output and "not pinned" not in ok.output
    assert "not pinned" in runner.invoke(app, ["audit", "verify", "--bundle", str(out)]).output
    out.write_bytes(out.read_bytes().replace(b"dossier-A", b"dossier-C", 1))
    broken = runner.invoke(app, ["audit", "verify", "--bundle", str(out), "--public-key", str(pem)])
    assert broken.exit_code == 1 and "BROKEN" in broken.output
    assert runner.invoke(app, ["audit", "export", "--since", "2026-01-01", "--out", str(out)]).exit_code == 2
    e.dispose()


def test_the_hub_signs_checkpoints_with_its_configured_key(embedded_hub):
    hub = embedded_hub.hub
    key_file = hub.settings.resolved_audit_key_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    hub.work.record([AuditEvent("received", actor="portal")])
    assert hub.work.seal() is not None
    report = audit.verify(hub.engine, public_key=checkpoints.load_public_key(key_file))
    assert report.intact and report.unsealed == 0 and report.checkpoints >= 1


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


def test_a_hub_that_ran_workers_seals_its_tail_when_it_closes(tmp_path):
    """A clean shutdown leaves nothing unsealed: the events after the last checkpoint are signed on close."""
    from hub.bootstrap import build_hub
    from tests.conftest import hub_settings
    hub = build_hub(hub_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}",
                                 f"sqlite:///{tmp_path / 'broker.db'}"))
    hub.start_workers()
    hub.work.record([AuditEvent("received", actor="portal")])
    assert audit.verify(hub.engine).unsealed >= 1
    engine_url, key_file = hub.engine.url, hub.settings.resolved_audit_key_file()
    hub.close()
    e = create_engine(engine_url.render_as_string(hide_password=False))
    report = audit.verify(e, public_key=checkpoints.load_public_key(key_file))
    assert report.intact and report.unsealed == 0
    e.dispose()
