"""Art. 15–17: designated persons for health data and criminal records — the list
(contracts/designations.yaml), its checks at start-up, its enforcement on every read of an inbox or
a dossier, and the list kept for the supervisory authority (`wib-hub designations list`).

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

from hub.domain.categories import SPECIAL_CATEGORIES
from tests.support.designations import (
    CASE_OFFICER,
    CLERK,
    MEDICAL,
    _forward_to_dvz,
    _inbox_as,
    _reads,
)


def test_designated_and_undesignated_persons_of_the_same_party(running_hub):
    """On every store × broker: DVZ's designated medical officer sees health, not the criminal record;
    an undesignated DVZ user gets the item without either, told what was withheld; both reads are on
    the record with the acting person and the categories actually returned."""
    hc = running_hub
    dossier, message_id = _forward_to_dvz(hc)

    body, item = _inbox_as(hc, MEDICAL, message_id)
    application = item["attachments"]["application"]
    assert application["medical_documents"] and "criminal_record_documents" not in application
    assert "health" in item["data_categories"] and "criminal_record" not in item["data_categories"]
    assert item["withheld_categories"] == ["criminal_record"] and body["withheld_categories"] == ["criminal_record"]
    assert application["worker"]["last_name"]                       # the rest of the dossier is there

    body, item = _inbox_as(hc, CLERK, message_id)
    application = item["attachments"]["application"]
    assert "medical_documents" not in application and "criminal_record_documents" not in application
    assert not SPECIAL_CATEGORIES & set(item["data_categories"])
    assert item["withheld_categories"] == ["criminal_record", "health"]
    assert body["withheld_categories"] == ["criminal_record", "health"]
    assert application["worker"]["last_name"] and "employment" in item["data_categories"]

    (medical_read,) = _reads(hc, MEDICAL, "GET /v1/inbox")
    assert medical_read["message_id"] == message_id and medical_read["dossier_id"] == dossier
    assert "health" in medical_read["data_categories"] and "criminal_record" not in medical_read["data_categories"]
    assert medical_read["reason"] == "GET /v1/inbox withheld=criminal_record"
    (clerk_read,) = _reads(hc, CLERK, "GET /v1/inbox")
    assert not SPECIAL_CATEGORIES & set(clerk_read["data_categories"])
    assert clerk_read["reason"] == "GET /v1/inbox withheld=criminal_record,health"

    # the back-office system client (dvz has systems: true) and a fully designated officer see everything
    for person in (None, CASE_OFFICER):
        body, item = _inbox_as(hc, person, message_id)
        assert {"health", "criminal_record"} <= set(item["data_categories"])
        assert "withheld_categories" not in item and body["withheld_categories"] == []
        assert item["attachments"]["application"]["criminal_record_documents"]
    assert _reads(hc, CASE_OFFICER, "GET /v1/inbox")
