"""The dossier's life through the real pipeline: the state machine's dates, retention (Art. 27),
the anonymous statistics fact (Art. 31–32), appeals, impossible moves, and the professional-card
procedure that opens on its start date (Art. 34, 36)."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import func, select

from hub.domain import samples
from hub.infra.store.schema import audit_events, dossiers, messages
from hub.interfaces.cli.demo import DemoClient
from tests.support import sqlite_store, start_hub
from tests.support.lifecycle import _dossier, _fact

CARD = "professional-card.application-submitted"


def test_an_impossible_move_is_a_409_with_one_trace_and_nothing_stored(local_hub):
    hc = local_hub
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    dossier = c.apply(samples.synthetic_application(3))
    with hc.hub.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(messages)).scalar_one()
    message_id = f"m-{uuid.uuid4().hex}"
    r = hc.post("dvz", "/v1/messages", {"flow": "single-permit.single-act-notified", "dossier_id": dossier,
                                        "message_id": message_id, "payload": samples.sample_single_act(dossier)})
    assert r.status_code == 409 and r.json()["error"] == "invalid_transition"
    assert (r.json()["from"], r.json()["to"]) == ("submitted", "notified")
    with hc.hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == before
        (event,) = conn.execute(select(audit_events).where(audit_events.c.message_id == message_id)).mappings().all()
    assert event["event"] == "rejected" and event["reason"] == "invalid_transition"
    assert _dossier(hc.hub, dossier)["state"] == "submitted"


def _card(hc) -> "object":
    _, sample = samples.FLOW_SAMPLES[CARD]
    return hc.post("portal", "/v1/applications", sample("-"))


def test_professional_card_is_refused_before_its_start_date(local_hub):
    hc = local_hub
    with hc.hub.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(dossiers)).scalar_one()
    r = _card(hc)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "procedure_not_started" and "no start date yet" in r.json()["detail"]
    with hc.hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossiers)).scalar_one() == before
        rejected = conn.execute(select(audit_events.c.reason).where(audit_events.c.flow_id == CARD)).scalars().all()
    assert rejected == ["procedure_not_started"]


def test_professional_card_opens_on_its_start_date(tmp_path):
    today = date.today()
    for start, status in ((today + timedelta(days=1), 422), (today, 202)):
        gen = start_hub(tmp_path / f"data-{status}", sqlite_store(tmp_path / f"hub-{status}.db"),
                        f"memory://{tmp_path.name}-{status}", professional_card_start=start)
        hc = next(gen)
        try:
            r = _card(hc)
            assert r.status_code == status, r.text
            if status == 422:
                assert f"starts on {start.isoformat()}" in r.json()["detail"]
            else:
                d = _dossier(hc.hub, r.json()["dossier_id"])
                assert d["application_kind"] == "professional_card"
                assert _fact(hc.hub, d["fact_id"])["permit_type"] == "professional_card"
        finally:
            gen.close()
