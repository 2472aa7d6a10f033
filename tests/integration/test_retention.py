"""Art. 27: ten years pass in a second; exactly the expired dossiers go, their statistics stay.

The dossiers are written straight into the store (rows of every table a dossier has: the dossier,
two messages with their outbox rows, three deliveries, an enrichment job and two enrichments, a
clock, and its anonymous stats_facts row), with `retain_until` as hub/dossier.py computes it, in
the states the procedure leaves them: granted, refused, closed after an appeal, appeal pending,
undecided, and a granted work permit that is younger.
"""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pytest
import typer
from sqlalchemy import func, select, text, update
from typer.testing import CliRunner

from hub import audit
from hub.audit import AuditEvent, CheckpointPolicy, checkpoints
from hub.domain import dossier as lifecycle
from hub.domain.envelope import as_utc
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import (
    audit_events,
    deliveries,
    dossier_clocks,
    dossiers,
    enrichment_jobs,
    enrichments,
    messages,
    outbox,
    stats_facts,
)
from hub.infra.store.unit_of_work import UnitOfWork
from hub.lifecycle import retention
from tests.support.retention import DOSSIER_TABLES, UTC, _count

T0 = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)


PERSONAL = ("85073003328", "EP1234567", "Ana", "Kowalska")   # what must never reach the audit trail


def message_ids(did: str) -> list[str]:
    """Message ids are the sender's choice: quotes, backslashes, commas and braces must not matter."""
    return [f"{did}-m1", f'{did}-m2,"\\{{x}}']


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


# name: (application_kind, state, residence, work, created, notified, appeal lodged, appeal ended)
POPULATION = {
    "granted": ("single_permit", "notified", "granted", "granted", at(0), at(100), None, None),
    "refused": ("single_permit", "notified", "granted", "refused", at(20), at(140), None, None),
    "appealed_closed": ("single_permit", "closed", "refused", "granted", at(30), at(90), at(120), at(2200)),
    "appeal_pending": ("single_permit", "appeal_pending", "refused", "refused", at(40), at(100), at(130), None),
    "undecided": ("single_permit", "under_examination", None, None, at(50), None, None, None),
    "work_permit_young": ("work_permit", "notified", None, "granted", at(600), at(700), None, None),
}


def _row(name: str, spec) -> dict:
    kind, state, residence, work, created, notified, lodged, ended = spec
    values = {"id": str(uuid.uuid4()), "application_kind": kind, "category": kind, "competent_region": "flanders",
              "state": state, "residence_outcome": residence, "work_outcome": work,
              "application": {"worker": {"insz": PERSONAL[0], "passport_number": PERSONAL[1],
                                         "given_name": PERSONAL[2], "family_name": PERSONAL[3],
                                         "nationality": "POL"},
                              "documents": [{"kind": "passport", "content": "UEFTU1BPUlQ="}]},
              "created_at": created, "updated_at": created, "subject_insz": PERSONAL[0],
              "subject_passport": PERSONAL[1], "complete_at": created + timedelta(days=10),
              "decided_at": notified - timedelta(days=2) if notified else None, "notified_at": notified,
              "appeal_lodged_at": lodged, "appeal_ended_at": ended, "closed_at": ended,
              "fact_id": str(uuid.uuid4())}
    values["retain_until"] = lifecycle.retain_until(values)
    return values


def _insert_dossier(work: UnitOfWork, values: dict) -> None:
    with work.transaction(at=values["created_at"]) as tx:
        _insert_rows(tx, values)


def _insert_rows(tx, values: dict) -> None:
    conn = tx.conn
    conn.execute(dossiers.insert(), values)
    did, t = values["id"], values["created_at"]
    conn.execute(stats_facts.insert(), {
        "id": values["fact_id"], "permit_type": values["category"], "application_kind": values["application_kind"],
        "request_type": "first", "region": "flanders", "nationality": "POL", "submitted_year": t.year,
        "submitted_quarter": (t.month - 1) // 3 + 1, "state": values["state"],
        "residence_outcome": values["residence_outcome"], "work_outcome": values["work_outcome"],
        "deemed_authorised": False})
    mids = message_ids(did)
    for i, mid in enumerate(mids):
        conn.execute(messages.insert(), {
            "id": mid, "flow_id": "single-permit.application-submitted", "sender": "portal",
            "recipients": ["region.flanders", "dvz"], "purpose": 1, "dossier_id": did, "correlation_id": did,
            "payload_hash": "0" * 64, "payload": {"worker": {"insz": PERSONAL[0]}}, "received_at": t + timedelta(hours=i)})
        conn.execute(outbox.insert(), {"message_id": mid, "created_at": t, "relayed_at": t})
    for mid, recipient in ((mids[0], "region.flanders"), (mids[0], "dvz"), (mids[1], "dvz")):
        conn.execute(deliveries.insert(), {
            "message_id": mid, "recipient": recipient, "flow_id": "single-permit.application-submitted",
            "sender": "portal", "dossier_id": did, "correlation_id": did, "purpose": 1,
            "data_categories": ["identity"], "payload": {"worker": {"insz": PERSONAL[0]}},
            "attachments": {"application": values["application"]}, "delivered_at": t})
    conn.execute(enrichment_jobs.insert(), {
        "message_id": mids[1], "dossier_id": did, "sources": ["onss.dimona", "onss.dmfa"], "state": "done",
        "attempts": 1, "next_attempt_at": t, "created_at": t, "completed_at": t})
    for source in ("onss.dimona", "onss.dmfa"):
        conn.execute(enrichments.insert(), {
            "message_id": mids[1], "dossier_id": did, "source": source, "contract": source, "contract_version": "1",
            "status": "found", "retrieved_at": t, "elapsed_ms": 5, "data": {"insz": PERSONAL[0]}})
    conn.execute(dossier_clocks.insert(), {
        "dossier_id": did, "rule": "single_permit.decision", "holder": "region.flanders", "started_at": t,
        "due_at": t + timedelta(days=90), "outcome": "met"})
    tx.record([AuditEvent("received", message_id=mids[0], dossier_id=did, actor="portal"),
               AuditEvent("delivered", message_id=mids[0], dossier_id=did, actor="onss", recipient="region.flanders")])


class Seeded(NamedTuple):
    engine: Any
    ids: dict
    url: str
    tmp_path: Any
    work: UnitOfWork          # the store's unit of work, signing a checkpoint every 5 events
    signer: Any


@pytest.fixture
def store(store_url, tmp_path):
    """A migrated store holding POPULATION, a message about no dossier, and a signing audit key."""
    engine = open_engine(store_url)
    migrate(engine)
    signer = checkpoints.ensure_key(tmp_path / "audit.key")
    work = UnitOfWork(engine, CheckpointPolicy(signer, every_events=5, every_seconds=3600))
    ids = {}
    for name, spec in POPULATION.items():
        values = _row(name, spec)
        _insert_dossier(work, values)
        ids[name] = values["id"]
    with engine.begin() as conn:
        # a message about no dossier (a batch notice): not any dossier's, never deleted
        conn.execute(messages.insert(), {
            "id": "no-dossier", "flow_id": "platform.notice", "sender": "onss", "recipients": ["dvz"],
            "purpose": 6, "dossier_id": None, "correlation_id": "c", "payload_hash": "0" * 64,
            "payload": {}, "received_at": T0})
        conn.execute(outbox.insert(), {"message_id": "no-dossier", "created_at": T0})
    yield Seeded(engine, ids, store_url, tmp_path, work, signer)
    work.close()
    engine.dispose()


def _rows_of(engine, did: str) -> dict[str, int]:
    with engine.connect() as conn:
        counts = {name: _count(conn, t, did) for name, t in DOSSIER_TABLES.items()}
        counts["dossiers"] = _count(conn, dossiers, did)
        mids = message_ids(did)
        counts["outbox"] = conn.execute(select(func.count()).select_from(outbox)
                                        .where(outbox.c.message_id.in_(mids))).scalar_one()
        counts["enrichment_jobs"] = conn.execute(select(func.count()).select_from(enrichment_jobs)
                                                 .where(enrichment_jobs.c.message_id.in_(mids))).scalar_one()
    return counts


FULL = {"dossiers": 1, "messages": 2, "outbox": 2, "deliveries": 3, "enrichment_jobs": 1, "enrichments": 2,
        "dossier_clocks": 1}


GONE = dict.fromkeys(FULL, 0)


def _deleted_events(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.event == "deleted")
                                              .order_by(audit_events.c.seq)).mappings()]


def test_retain_until_follows_article_27(store):
    engine, ids, *_ = store
    with engine.connect() as conn:
        got = {r.id: r.retain_until for r in conn.execute(select(dossiers.c.id, dossiers.c.retain_until))}
    until = {name: got[did] and as_utc(got[did]) for name, did in ids.items()}
    assert until["granted"] == datetime(2034, 1, 10, 9, 0, tzinfo=UTC)           # 10 y from submission
    assert until["refused"] == at(140).replace(year=2029)                         # 5 y from notification
    assert until["appealed_closed"] == at(2200).replace(year=at(2200).year + 1)   # 1 y after the appeal
    assert until["appeal_pending"] is None and until["undecided"] is None          # on hold / undecided


def test_ten_years_later_exactly_the_expired_dossiers_are_gone(store):
    engine, ids, *_ = store
    with engine.connect() as conn:
        facts_before = conn.execute(select(func.count()).select_from(stats_facts)).scalar_one()
    # a year on, nothing has expired
    early = retention.run(store.work, T0 + timedelta(days=365))
    assert early.dossiers == 0 and early.total_rows == 0 and _deleted_events(engine) == []

    ten_years = T0.replace(year=2034) + timedelta(days=30)
    listed = retention.expired(engine, ten_years)
    assert [d.id for d in listed] == [ids["refused"], ids["appealed_closed"], ids["granted"]]   # oldest first
    assert {d.id: d.rule for d in listed} == {ids["refused"]: "negative", ids["appealed_closed"]: "after_appeal",
                                              ids["granted"]: "granted"}

    # dry run: counts, deletes nothing, writes nothing
    seq_before = audit.tail(engine, 1)[0]["seq"]
    dry = retention.run(store.work, ten_years, dry_run=True, batch=2)
    assert dry.dry_run and dry.dossiers == 3 and dry.batches == 2
    assert dry.rows == {k: 3 * v for k, v in FULL.items()}
    assert all(_rows_of(engine, did) == FULL for did in ids.values())
    assert audit.tail(engine, 1)[0]["seq"] == seq_before

    seen = []
    result = retention.run(store.work, ten_years, batch=2, progress=lambda done, total: seen.append((done, total)))
    assert result.dossiers == 3 and result.batches == 2 and result.remaining == 0
    assert result.rows == {k: 3 * v for k, v in FULL.items()}
    assert result.by_rule == {"granted": 1, "negative": 1, "after_appeal": 1}
    assert seen == [(0, 3), (2, 3), (3, 3)]
    expired_names = {"granted", "refused", "appealed_closed"}
    for name, did in ids.items():
        assert _rows_of(engine, did) == (GONE if name in expired_names else FULL), name

    with engine.connect() as conn:
        # the statistics stay, every row of them; the message about no dossier too
        assert conn.execute(select(func.count()).select_from(stats_facts)).scalar_one() == facts_before == 6
        assert conn.execute(select(func.count()).select_from(messages).where(messages.c.id == "no-dossier")).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(outbox).where(outbox.c.message_id == "no-dossier")).scalar_one() == 1
        # the earlier audit events of the deleted dossiers are still there (append-only)
        assert conn.execute(select(func.count()).select_from(audit_events)
                            .where(audit_events.c.dossier_id == ids["granted"])).scalar_one() == 3

    events = _deleted_events(engine)
    assert sorted(e["dossier_id"] for e in events) == sorted(ids[n] for n in expired_names)
    for e in events:
        assert e["actor"] == "onss" and e["outcome"] == "ok" and e["reason"].startswith("retention Art. 27: ")
        assert list(e["legal_basis"]) == ["Art. 27"]
        flat = json.dumps({k: str(v) for k, v in e.items()})
        assert not any(p in flat for p in PERSONAL)
    assert "10 years from submission" in next(e["reason"] for e in events if e["dossier_id"] == ids["granted"])
    wall = datetime.now(UTC)   # the events say when the deletion happened, not the `now` it was judged at
    assert all(abs(as_utc(e["ts"]) - wall) < timedelta(minutes=5) for e in events)
    report = audit.verify(engine, public_key=store.signer.public_key)
    assert report.intact and report.checkpoints >= 1 and report.signatures_checked, str(report)

    # a second run at the same time finds nothing more
    again = retention.run(store.work, ten_years)
    assert again.dossiers == 0 and again.total_rows == 0 and len(_deleted_events(engine)) == 3

    # much later: the younger work permit goes too; the appeal pending and the undecided never do
    later = retention.run(store.work, T0.replace(year=2060))
    assert later.dossiers == 1 and _rows_of(engine, ids["work_permit_young"]) == GONE
    assert _rows_of(engine, ids["appeal_pending"]) == FULL and _rows_of(engine, ids["undecided"]) == FULL
    assert len(_deleted_events(engine)) == 4
    assert audit.verify(engine).intact


def test_an_appeal_lodged_during_the_run_keeps_the_dossier(store):
    """retain_until is re-read inside each deleting transaction, not taken from the list made at the start."""
    engine, ids, *_ = store
    when = T0.replace(year=2034) + timedelta(days=30)
    assert retention.count_expired(engine, when) == 3

    def appeal_meanwhile(done: int, total: int) -> None:
        if done == 1:   # after the first batch, an appeal against the dossier still due is lodged
            with engine.begin() as conn:
                conn.execute(update(dossiers).where(dossiers.c.id == ids["granted"])
                             .values(state="appeal_pending", appeal_lodged_at=when, retain_until=None))
    result = retention.run(store.work, when, batch=1, progress=appeal_meanwhile)
    assert result.dossiers == 2
    assert _rows_of(engine, ids["granted"]) == FULL
    assert {e["dossier_id"] for e in _deleted_events(engine)} == {ids["refused"], ids["appealed_closed"]}


def test_a_stopping_worker_ends_the_run_between_batches(store):
    engine, ids, *_ = store
    stop = threading.Event()
    when = T0.replace(year=2034) + timedelta(days=30)
    first = retention.run(store.work, when, batch=1, stop=stop, progress=lambda done, total: done and stop.set())
    assert first.dossiers == 1 and first.batches == 1 and first.remaining == 2
    rest = retention.run(store.work, when, batch=1)
    assert rest.dossiers == 2 and rest.remaining == 0
    assert len(_deleted_events(engine)) == 3 and audit.verify(engine).intact


@pytest.mark.postgres
def test_a_dossier_being_changed_is_left_for_the_next_run(pg_schema_url):
    """PostgreSQL: a dossier locked by a concurrent change is skipped (SKIP LOCKED), not waited for."""
    engine = open_engine(pg_schema_url)
    migrate(engine)
    try:
        work = UnitOfWork(engine)
        rows = {name: _row(name, POPULATION[name]) for name in ("granted", "refused")}
        for values in rows.values():
            _insert_dossier(work, values)
        when = T0.replace(year=2040)
        locked, release = threading.Event(), threading.Event()

        def hold_lock() -> None:
            with engine.begin() as conn:
                conn.execute(text("SELECT id FROM dossiers WHERE id = :id FOR UPDATE"), {"id": rows["granted"]["id"]})
                locked.set()
                release.wait(30)
        holder = threading.Thread(target=hold_lock)
        holder.start()
        assert locked.wait(10)
        try:
            first = retention.run(work, when)
        finally:
            release.set()
            holder.join()
        assert first.dossiers == 1 and first.remaining == 1
        assert _rows_of(engine, rows["refused"]["id"]) == GONE and _rows_of(engine, rows["granted"]["id"]) == FULL
        second = retention.run(work, when)
        assert second.dossiers == 1 and second.remaining == 0
        assert _rows_of(engine, rows["granted"]["id"]) == GONE
        assert audit.verify(engine).intact
    finally:
        engine.dispose()


def _cli(monkeypatch, url: str, data_dir) -> tuple[CliRunner, typer.Typer]:
    from hub.interfaces.cli import retention as cli_retention
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    monkeypatch.setenv("HUB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HUB_AUDIT_KEY_FILE", str(data_dir.parent / "audit.key"))   # the store's key
    app = typer.Typer()
    app.command("noop")(lambda: None)   # a group, so `retention` is a subcommand as under wib-hub
    app.add_typer(cli_retention.app, name="retention")   # as hub.interfaces.cli.main registers it
    return CliRunner(), app


def test_cli_dry_run_lists_and_deletes_nothing_then_a_real_run_deletes(store, monkeypatch):
    engine, ids, url, tmp_path, *_ = store
    runner, app = _cli(monkeypatch, url, tmp_path / "data")
    when = "2034-02-15T00:00:00+00:00"

    dry = runner.invoke(app, ["retention", "run", "--dry-run", "--now", when])
    assert dry.exit_code == 0, dry.output
    for name in ("granted", "refused", "appealed_closed"):
        assert ids[name] in dry.output
    assert ids["appeal_pending"] not in dry.output and "nothing was deleted" in dry.output
    assert not any(p in dry.output for p in PERSONAL)

    as_json = runner.invoke(app, ["retention", "run", "--dry-run", "--now", when, "--json"])
    body = json.loads(as_json.stdout)
    assert body["dry_run"] and body["dossiers"] == 3 and body["rows"]["deliveries"] == 9
    assert [d["id"] for d in body["expired"]] == [ids["refused"], ids["appealed_closed"], ids["granted"]]
    assert all(_rows_of(engine, did) == FULL for did in ids.values())

    # a real run with a --now in the future would delete too early: refused without --allow-future
    refused = runner.invoke(app, ["retention", "run", "--now", when])
    assert refused.exit_code == 2 and "future" in refused.output
    bad = runner.invoke(app, ["retention", "run", "--dry-run", "--now", "next tuesday"])
    assert bad.exit_code == 2

    real = runner.invoke(app, ["retention", "run", "--now", when, "--allow-future", "--batch", "2", "--json"])
    assert real.exit_code == 0, real.output
    result = json.loads(real.stdout)
    assert result["dossiers"] == 3 and result["batches"] == 2 and result["rows"]["messages"] == 6
    assert _rows_of(engine, ids["granted"]) == GONE and _rows_of(engine, ids["undecided"]) == FULL

    table = runner.invoke(app, ["retention", "run", "--now", when, "--allow-future"])
    assert table.exit_code == 0 and "deleted 0 dossiers" in table.output, table.output
    assert audit.verify(engine).intact
