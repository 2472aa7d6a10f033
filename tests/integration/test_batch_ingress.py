"""The batch-native way in, on both stores: submit_many's answers, duplicates within a batch and
between racing senders, and the driver-level writes (hub.infra.store.rows) behaving as Core's."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hub import audit
from hub.bootstrap import build_hub
from hub.domain import samples
from hub.domain.errors import HubError
from hub.infra.store.rows import insert_new, insert_rows
from hub.infra.store.schema import audit_events, deliveries, messages, outbox
from hub.messaging.ingress import Accepted, Submission, submit_many
from tests.support import hub_settings

FLOW = "single-permit.application-submitted"


@pytest.fixture
def hub(tmp_path, store_url):
    h = build_hub(hub_settings(tmp_path / "data", store_url, f"sqlite:///{tmp_path / 'broker.db'}"))
    yield h
    h.close()


def _count(hub, table, *where) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_one_batch_one_answer_each_one_accepted_event_each(hub):
    subs = [Submission(FLOW, "portal", samples.synthetic_application(i), message_id=f"m-{uuid.uuid4()}")
            for i in range(20)]
    answers = submit_many(hub.ingress, subs)
    assert [a.message_id for a in answers] == [s.message_id for s in subs]
    assert all(isinstance(a, Accepted) and not a.duplicate for a in answers)
    assert _count(hub, messages) == _count(hub, outbox) == 20
    assert _count(hub, audit_events, audit_events.c.event == "accepted") == 20
    with hub.engine.connect() as conn:
        actors = set(conn.execute(select(audit_events.c.actor).where(audit_events.c.event == "accepted")).scalars())
    assert actors == {"portal"}
    assert audit.verify(hub.engine).intact


def test_the_same_message_id_twice_in_a_batch_is_one_message(hub):
    mid = f"m-{uuid.uuid4()}"
    same = Submission(FLOW, "portal", samples.synthetic_application(1), message_id=mid)
    other = Submission(FLOW, "portal", samples.synthetic_application(2), message_id=mid)
    first, again, reused = submit_many(hub.ingress, [same, same, other])
    assert isinstance(first, Accepted) and not first.duplicate
    assert isinstance(again, Accepted) and again.duplicate and again.dossier_id == first.dossier_id
    assert isinstance(reused, HubError) and reused.code == "message_id_reused"
    assert _count(hub, messages) == 1
    assert _count(hub, audit_events, audit_events.c.event == "rejected") == 1


def test_senders_racing_with_one_message_id_store_it_once(hub):
    """Two threads hand in the same message at the same moment, many times over: each id is stored
    once, and the loser of each race is answered as the duplicate (the unique key decides)."""
    rounds, answers = 15, []
    for i in range(rounds):
        sub = Submission(FLOW, "portal", samples.synthetic_application(100 + i), message_id=f"race-{i}-{uuid.uuid4()}")
        start = threading.Barrier(2)
        got: list = []

        def send():
            start.wait()
            got.extend(submit_many(hub.ingress, [sub]))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answers.append(got)
    assert _count(hub, messages) == rounds
    for got in answers:
        assert all(isinstance(a, Accepted) for a in got)
        assert sorted(a.duplicate for a in got) == [False, True]
    assert audit.verify(hub.engine).intact


def _delivery(mid: str, recipient: str, payload) -> dict:
    return dict(message_id=mid, recipient=recipient, flow_id=FLOW, sender="portal", dossier_id=None,
                correlation_id=mid, purpose=3, data_categories=["identity"], payload=payload, attachments=None,
                delivered_at=datetime.now(timezone.utc))


def test_driver_level_rows_read_back_as_core_wrote_them(hub):
    rows = [_delivery("m1", "dvz", {"a": [1, 2.5e-07, "é"], "b": None}), _delivery("m2", "dvz", {})]
    with hub.engine.begin() as conn:
        insert_rows(conn, deliveries, rows)
        assert insert_new(conn, deliveries, [_delivery("m1", "dvz", {}), _delivery("m3", "dvz", {"c": 1})],
                          ("message_id", "recipient")) == {("m3", "dvz")}
    with hub.engine.connect() as conn:
        got = {r.message_id: r for r in conn.execute(select(deliveries))}
    assert set(got) == {"m1", "m2", "m3"}
    assert got["m1"].payload == {"a": [1, 2.5e-07, "é"], "b": None}
    assert got["m1"].data_categories == ["identity"] and got["m1"].attachments is None
    assert got["m1"].delivered_at.replace(tzinfo=timezone.utc if got["m1"].delivered_at.tzinfo is None else
                                          got["m1"].delivered_at.tzinfo) <= datetime.now(timezone.utc)


def test_a_duplicate_key_in_a_bulk_write_is_an_integrity_error_and_nothing_stays(hub):
    with pytest.raises(IntegrityError):
        with hub.engine.begin() as conn:
            insert_rows(conn, messages, [dict(
                id="dup", flow_id=FLOW, sender="portal", recipients=["dvz"], purpose=3, dossier_id=None,
                correlation_id="c", acting_person=None, payload_hash="0" * 64, payload={},
                received_at=datetime.now(timezone.utc))] * 2)
    assert _count(hub, messages) == 0
