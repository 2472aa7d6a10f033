"""Art. 25 (inspection services) and Art. 26 (mutual recognition): consulting a dossier one was not
sent, on a ground of contracts/consultations.yaml; health data and criminal records never included."""
from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from hub.domain import samples
from hub.domain.errors import RegistryError
from hub.infra.store.schema import audit_events
from hub.interfaces.cli.demo import DemoClient
from hub.registry import default_contracts_dir, load_consultations, load_registry


@pytest.fixture
def decided(local_hub):
    """A Flanders dossier with the region's work decision."""
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    d = c.apply(samples.synthetic_application(41))
    c.send("region.flanders", "single-permit.admissible-to-dvz", samples.sample_admissibility_decision(d))
    c.send("region.flanders", "single-permit.work-decision", samples.sample_work_decision(d, outcome="granted"))
    return local_hub, d


def test_inspection_reads_the_dossier_useful_to_control_and_the_regional_decision(decided):
    hub_client, d = decided
    r = hub_client.get("inspection.social", f"/v1/consultations/art25.inspection/dossiers/{d}")
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["application"]["worker"]["last_name"] and view["application"]["employment"]["job_title"]
    assert "medical_documents" not in view["application"] and "criminal_record_documents" not in view["application"]
    assert not {"health", "criminal_record"} & set(view["data_categories"])
    assert [m["flow"] for m in view["decisions"]] == ["single-permit.work-decision"]
    with hub_client.hub.engine.connect() as conn:
        event = conn.execute(select(audit_events).where(audit_events.c.event == "consulted",
                                                        audit_events.c.actor == "inspection.social")).one()
    assert event.purpose == 8 and event.reason == "consultation art25.inspection" and event.dossier_id == d


def test_another_region_reads_under_mutual_recognition_the_competent_one_does_not_need_to(decided):
    hub_client, d = decided
    assert hub_client.get("region.wallonia", f"/v1/consultations/art26.mutual-recognition/dossiers/{d}").status_code == 200
    own = hub_client.get("region.flanders", f"/v1/consultations/art26.mutual-recognition/dossiers/{d}")
    assert own.status_code == 403 and own.json()["error"] == "consultation_not_allowed"


@pytest.mark.parametrize("party,ground", [("dvz", "art25.inspection"), ("portal", "art25.inspection"),
                                          ("pes.vdab", "art26.mutual-recognition"),
                                          ("inspection.social", "art26.mutual-recognition")])
def test_no_ground_no_consultation(decided, party, ground):
    hub_client, d = decided
    r = hub_client.get(party, f"/v1/consultations/{ground}/dossiers/{d}")
    assert r.status_code == 403 and r.json()["error"] == "consultation_not_allowed"


def test_unknown_ground_and_dossier(decided):
    hub_client, d = decided
    assert hub_client.get("inspection.social", f"/v1/consultations/art99/dossiers/{d}").status_code == 404
    assert hub_client.get("inspection.social", "/v1/consultations/art25.inspection/dossiers/nope").status_code == 404
    assert {g["id"] for g in hub_client.get("dvz", "/v1/consultations").json()["consultations"]} == {
        "art25.inspection", "art26.mutual-recognition"}


def test_a_rule_giving_health_data_stops_start_up(tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    path = contracts / "consultations.yaml"
    path.write_text(path.read_text().replace("application_categories: [identification, contact,",
                                             "application_categories: [health, identification, contact,", 1))
    with pytest.raises(RegistryError) as err:
        load_consultations(contracts, load_registry(contracts))
    assert err.value.field == "consultations.0.application_categories"
