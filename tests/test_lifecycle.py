"""The dossier's life through the real pipeline: the state machine's dates, retention (Art. 27),
the anonymous statistics fact (Art. 31–32), appeals, impossible moves, and the professional-card
procedure that opens on its start date (Art. 34, 36)."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import func, select

from hub.domain import samples
from hub.interfaces.cli.demo import DemoClient, procedure
from hub.infra.store.schema import audit_events, dossiers, messages, stats_facts
from tests.conftest import start_hub

CARD = "professional-card.application-submitted"


def _dossier(hub, dossier_id: str) -> dict:
    with hub.engine.connect() as conn:
        return dict(conn.execute(select(dossiers).where(dossiers.c.id == dossier_id)).mappings().one())


def _fact(hub, fact_id: str) -> dict:
    with hub.engine.connect() as conn:
        return dict(conn.execute(select(stats_facts).where(stats_facts.c.id == fact_id)).mappings().one())


def _ids(hub) -> dict[str, str]:
    """The demo procedure's two dossiers: A (granted, notified), B (residence refused)."""
    with hub.engine.connect() as conn:
        rows = conn.execute(select(dossiers.c.id, dossiers.c.competent_region)).all()
    return {"a" if region == "region.flanders" else "b": i for i, region in rows}


def test_the_procedure_records_dates_retention_and_an_anonymous_fact(running_hub):
    hc = running_hub
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    procedure(c)
    ids = _ids(hc.hub)
    a, b = _dossier(hc.hub, ids["a"]), _dossier(hc.hub, ids["b"])

    assert a["state"] == "notified" and a["subject_insz"] == a["application"]["worker"]["insz"]
    assert a["subject_passport"] == a["application"]["worker"]["passport_number"]
    assert a["created_at"] <= a["complete_at"] <= a["decided_at"] <= a["notified_at"]
    assert a["incomplete_since"] is None                       # the documents asked for came in
    assert (a["residence_decision_kind"], a["work_decision_kind"]) == ("residence_authorisation", "work_authorisation")
    assert a["retain_until"].year == a["created_at"].year + 10  # granted: 10 years from submission
    assert b["state"] == "residence_decided" and b["retain_until"] is None   # undecided part: kept

    fact = _fact(hc.hub, a["fact_id"])
    assert "dossier_id" not in fact and ids["a"] not in fact.values()     # nothing leads back to the dossier
    assert (fact["permit_type"], fact["region"], fact["state"]) == ("single_permit", "flanders", "notified")
    assert fact["decision_kind"] == "residence_authorisation" and fact["days_to_decision"] == 0
    assert fact["validity_months"] and fact["deemed_authorised"] is False
    assert fact["nationality"] == a["application"]["worker"]["nationality"]
    assert (fact["submitted_year"], fact["submitted_quarter"]) == (a["created_at"].year, (a["created_at"].month - 1) // 3 + 1)

    # the region later withdraws the work authorisation: decided and notified again; 5 years from then
    c.send("region.flanders", "single-permit.work-decision",
           samples.sample_work_decision(ids["a"], outcome="withdrawn", decision_kind="work_withdrawal"))
    c.send("dvz", "single-permit.single-act-notified", samples.sample_single_act(ids["a"], work_outcome="withdrawn"))
    withdrawn = _dossier(hc.hub, ids["a"])
    assert withdrawn["state"] == "notified" and withdrawn["work_outcome"] == "withdrawn"
    assert withdrawn["notified_at"] > a["notified_at"]
    assert withdrawn["retain_until"].year == withdrawn["notified_at"].year + 5
    fact = _fact(hc.hub, a["fact_id"])      # the grant stays counted; the withdrawal is counted apart
    assert fact["decision_kind"] == "residence_authorisation" and fact["decided_year"] == a["decided_at"].year
    assert fact["ended_kind"] == "work_withdrawal" and fact["ended_year"] == withdrawn["decided_at"].year

    # an appeal holds the dossier; its end keeps it one more year at least
    c.send("dvz", "single-permit.appeal-lodged", samples.sample_appeal_lodged(ids["a"]))
    held = _dossier(hc.hub, ids["a"])
    assert held["state"] == "appeal_pending" and held["retain_until"] is None
    c.send("dvz", "single-permit.appeal-ended", samples.sample_appeal_ended(ids["a"]))
    closed = _dossier(hc.hub, ids["a"])
    assert closed["state"] == "closed" and closed["retain_until"] == withdrawn["retain_until"]
    assert _fact(hc.hub, a["fact_id"])["state"] == "closed"


def test_an_impossible_move_is_a_409_with_one_trace_and_nothing_stored(embedded_hub):
    hc = embedded_hub
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    dossier = c.apply(samples.synthetic_application(3))
    with hc.hub.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(messages)).scalar_one()
    message_id = f"m-{uuid.uuid4().hex}"
    r = hc.post("dvz", "/v1/messages", {"flow": "single-permit.single-act-notified", "dossier_id": dossier,
                                        "message_id": message_id, "payload": samples.sample_single_act(dossier)})
    assert r.status_code == 409 and r.json()["error"] == "invalid_transition"
    assert r.json()["detail"] == {"from": "submitted", "to": "notified"}
    with hc.hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == before
        (event,) = conn.execute(select(audit_events).where(audit_events.c.message_id == message_id)).mappings().all()
    assert event["event"] == "rejected" and event["reason"] == "invalid_transition"
    assert _dossier(hc.hub, dossier)["state"] == "submitted"


def _card(hc) -> "object":
    _, sample = samples.FLOW_SAMPLES[CARD]
    return hc.post("portal", "/v1/applications", sample("-"))


def test_professional_card_is_refused_before_its_start_date(embedded_hub):
    hc = embedded_hub
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
        gen = start_hub(tmp_path / f"data-{status}", f"sqlite:///{tmp_path / f'hub-{status}.db'}",
                        f"sqlite:///{tmp_path / f'broker-{status}.db'}", professional_card_start=start)
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
