"""The dossier's life through the real pipeline: the state machine's dates, retention (Art. 27),
the anonymous statistics fact (Art. 31–32), appeals, impossible moves, and the professional-card
procedure that opens on its start date (Art. 34, 36).

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

from sqlalchemy import select

from hub.domain import samples
from hub.infra.store.schema import dossiers
from hub.interfaces.cli.demo import DemoClient, procedure
from tests.support.lifecycle import _dossier, _fact


def _ids(hub) -> dict[str, str]:
    """The demo procedure's two dossiers: A (granted, notified), B (residence refused, notified)."""
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
    # B: DVZ's refusal decides the single permit (the work part no longer needed), its Art. 24 notice
    # notifies it; 5 years from then (Art. 27), counted once as a refusal of its quarter (Art. 31-32)
    assert (b["state"], b["residence_outcome"], b["work_outcome"]) == ("notified", "refused", None)
    assert b["complete_at"] <= b["decided_at"] <= b["notified_at"]
    assert b["retain_until"] == b["notified_at"].replace(year=b["notified_at"].year + 5)
    refusal = _fact(hc.hub, b["fact_id"])
    assert (refusal["state"], refusal["decision_kind"], refusal["ended_kind"]) == ("notified", "residence_refusal", None)
    assert (refusal["decided_year"], refusal["decided_quarter"]) == (b["decided_at"].year, (b["decided_at"].month - 1) // 3 + 1)

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
