"""The flow registry: the protocol agreement as data, and every way a broken file is caught."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from hub.domain.dossier import STATES as DOSSIER_STATES
from hub.domain.errors import ContractViolation, RegistryError, UnknownFlow
from hub.domain.flows import (
    EMPLOYMENT_SERVICES,
    REGION_PARTIES,
    Flow,
    Registry,
    region_party,
)
from hub.domain.samples import FLOW_SAMPLES, sample_application
from hub.registry import default_contracts_dir, load_registry

FIXED_FLOWS = {
    "single-permit.application-submitted",
    "professional-card.application-submitted",
    "single-permit.additional-documents-requested",
    "single-permit.additional-documents",
    "single-permit.admissible-to-dvz",
    "single-permit.residence-decision",
    "single-permit.work-decision",
    "single-permit.single-act-notified",
    "single-permit.authorisation-to-diplomatic-post",
    "single-permit.authorisation-to-municipality",
    "single-permit.negative-decision-notice",
}
FIXED_PARTIES = {
    "dvz", "region.flanders", "region.wallonia", "region.brussels", "region.german-speaking", "onss", "inasti",
    "portal", "diplomatic-post", "municipality", "inspection.social", "pes.vdab", "pes.forem", "pes.actiris",
    "pes.adg", "security-officer",
}
REGIONS = ["region.brussels", "region.flanders", "region.german-speaking", "region.wallonia"]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(default_contracts_dir())


# --- the real registry ---------------------------------------------------------------------------

def test_the_registry_loads_with_every_fixed_id(registry):
    assert FIXED_FLOWS <= set(registry.flows)
    assert FIXED_PARTIES == set(registry.parties)
    for flow_id, flow in registry.flows.items():
        assert flow.id == flow_id and flow.source_file == f"flows/{flow_id}.yaml"
        assert 1 <= flow.purpose <= 9 and flow.processor == "onss" and flow.legal_basis
        assert flow.message in registry.contracts
        assert registry.contract_for(flow).declared_categories <= flow.data_categories
        assert flow.dossier_state in DOSSIER_STATES + (None,)


def test_parties(registry):
    dvz = registry.parties["dvz"]
    assert dvz.name["nl"] == "Dienst Vreemdelingenzaken" and dvz.kind == "federal_authority"
    assert set(dvz.roles) == {"controller", "competent_authority"}
    assert registry.parties["onss"].has_role("processor")
    assert registry.parties["security-officer"].roles == ("security_officer",)
    assert all(p.delivery in ("inbox", "queue") for p in registry.parties.values())
    assert registry.parties_matching("region.*") == REGIONS
    assert registry.parties_matching("pes.*") == ["pes.actiris", "pes.adg", "pes.forem", "pes.vdab"]
    assert registry.parties_matching("nobody") == []


def test_the_professional_card_flow_opens_on_its_start_date(registry):
    """Art. 34, 36: registered, open from HUB_PROFESSIONAL_CARD_START (tests/test_lifecycle.py)."""
    assert registry.flow("professional-card.application-submitted").opens_with == "professional_card"
    assert all(f.enabled for f in registry.flows.values())
    assert all(f.opens_with is None for f in registry.flows.values() if f.id != "professional-card.application-submitted")


def test_submission_creates_the_dossier(registry):
    flow = registry.flow("single-permit.application-submitted")
    assert flow.creates_dossier and flow.dossier_state == "submitted" and flow.purpose == 2
    assert flow.allows_sender("portal") and not flow.allows_sender("dvz")


def test_need_to_know_of_the_application(registry):
    """Art. 15, 17 §1: health and an employee's criminal record are for DVZ, not the region."""
    submitted = registry.flow("single-permit.application-submitted")
    for region in REGIONS:
        rule = submitted.recipient_rule(region)
        assert rule is not None and not rule.data_categories & {"health", "criminal_record"}
        assert {"identification", "employment", "residence_status"} <= rule.data_categories
    assert submitted.recipient_rule("dvz") is None
    card = registry.flow("professional-card.application-submitted")
    assert "criminal_record" in card.recipient_rule("region.wallonia").data_categories  # Art. 17 §2
    forwarded = registry.flow("single-permit.admissible-to-dvz")
    assert forwarded.attach_dossier and forwarded.dossier_state == "under_examination"
    assert {"health", "criminal_record"} <= forwarded.recipient_rule("dvz").data_categories
    assert forwarded.allows_sender("region.brussels") and not forwarded.allows_sender("portal")
    documents = registry.flow("single-permit.additional-documents")
    assert "health" in documents.recipient_rule("dvz").data_categories
    assert "health" not in documents.recipient_rule("region.flanders").data_categories


def test_decisions_and_notices(registry):
    residence = registry.flow("single-permit.residence-decision")
    assert residence.senders == ("dvz",) and residence.recipient_rule("region.flanders") is not None
    assert residence.recipient_rule("diplomatic-post") is None and residence.dossier_state == "residence_decided"
    work = registry.flow("single-permit.work-decision")
    assert work.allows_sender("region.german-speaking") and work.recipient_rule("dvz") is not None
    act = registry.flow("single-permit.single-act-notified")
    assert act.purpose == 5 and act.dossier_state == "notified" and act.recipient_rule("portal") is not None
    post = registry.flow("single-permit.authorisation-to-diplomatic-post")
    assert post.recipient_rule("diplomatic-post") is not None and post.recipient_rule("municipality") is None
    municipality = registry.flow("single-permit.authorisation-to-municipality")
    assert municipality.recipient_rule("municipality") is not None
    negative = registry.flow("single-permit.negative-decision-notice")
    assert all(r.data_categories == {"administrative"} for r in negative.recipients)
    assert negative.data_categories == {"administrative"}
    assert negative.allows_sender("dvz") and negative.allows_sender("region.brussels")
    requested = registry.flow("single-permit.additional-documents-requested")
    assert requested.dossier_state == "incomplete" and requested.allows_sender("dvz")


def test_unknown_flow(registry):
    with pytest.raises(UnknownFlow):
        registry.flow("single-permit.teleport")


@pytest.mark.parametrize("flow_id", sorted(FLOW_SAMPLES))
def test_every_flow_accepts_its_sample(registry, flow_id):
    sender, payload = FLOW_SAMPLES[flow_id]
    flow = registry.flow(flow_id)
    assert flow.allows_sender(sender)
    categories = registry.check_message(flow, payload("WIB-TEST-1"))
    assert categories <= flow.data_categories


def test_flow_constraints_keep_procedures_apart(registry):
    card = sample_application(application_kind="professional_card", category="professional_card", employment=None,
                              self_employment={"activity_description": "Consultancy"})
    with pytest.raises(ContractViolation) as exc:
        registry.check_message(registry.flow("single-permit.application-submitted"), card)
    assert exc.value.detail[0]["path"] == "/application_kind" and exc.value.detail[0]["rule"] == "flow"
    registry.check_message(registry.flow("professional-card.application-submitted"), card)
    _, notice = FLOW_SAMPLES["single-permit.authorisation-to-municipality"]
    with pytest.raises(ContractViolation):
        registry.check_message(registry.flow("single-permit.authorisation-to-diplomatic-post"), notice("D1"))


def test_every_fixed_flow_has_a_sample():
    assert FIXED_FLOWS <= set(FLOW_SAMPLES)


# --- broken variants -----------------------------------------------------------------------------

@pytest.fixture
def contracts_copy(tmp_path) -> Path:
    target = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), target)
    return target


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def flow_file(contracts: Path, flow_id: str) -> Path:
    return contracts / "flows" / f"{flow_id}.yaml"


def refused(contracts: Path) -> RegistryError:
    with pytest.raises(RegistryError) as exc:
        load_registry(contracts)
    return exc.value


def test_the_copy_loads(contracts_copy):
    assert set(load_registry(contracts_copy).flows) >= FIXED_FLOWS


WORK = "single-permit.work-decision"
SUBMITTED = "single-permit.application-submitted"
CARD = "professional-card.application-submitted"


@pytest.mark.parametrize("flow_id, change, field, words", [
    (WORK, lambda d: d.update(senders=["region.atlantis"]), "senders.0", "matches no party"),
    (WORK, lambda d: d["recipients"][0].update(party="dvz-typo"), "recipients.0.party", "matches no party"),
    (WORK, lambda d: d.update(controller=["portal"]), "controller.0", "controller"),
    (WORK, lambda d: d.update(processor="dvz"), "processor", "processor"),
    (WORK, lambda d: d.update(purpose=10), "purpose", "Art. 10"),
    (WORK, lambda d: d.update(purpose=0), "purpose", "Art. 10"),
    (WORK, lambda d: d.update(purpose="3"), "purpose", "integer"),
    (WORK, lambda d: d.pop("title"), "title", "required"),
    (WORK, lambda d: d.pop("recipients"), "recipients", "required"),
    (WORK, lambda d: d.update(recipent=[]), "recipent", "Extra inputs"),
    (WORK, lambda d: d.update(data_categories=["administrative", "religion"]), "data_categories.1", "unknown data category"),
    (WORK, lambda d: d["recipients"][0].update(data_categories=["gossip"]), "recipients.0.data_categories.0",
     "unknown data category"),
    (WORK, lambda d: d["recipients"][0].update(data_categories=["administrative", "health"]),
     "recipients.0.data_categories.1", "not among the flow's data_categories"),
    (WORK, lambda d: d.update(message="work-decree"), "message", "no contract"),
    (WORK, lambda d: d.update(dossier={"state": "shredded"}), "dossier.state", "unknown dossier state"),
    (WORK, lambda d: d.update(dossier={"creates": True, "state": "admissible"}), "dossier.state", "submitted"),
    (WORK, lambda d: d.update(retention="forever"), "retention", "unknown retention"),
    (WORK, lambda d: d.update(payload_constraints={"/nope": ["x"]}), "payload_constraints./nope", "no field"),
    (SUBMITTED, lambda d: d["data_categories"].remove("health"), "data_categories", "health"),
    # Art. 15–17 hold whatever a flow file says
    (SUBMITTED, lambda d: d["recipients"][0].update(data_categories=d["recipients"][0]["data_categories"]
                                                     + ["criminal_record"]),
     "recipients.0.data_categories.", "an employee's criminal record reaches only DVZ"),
    ("single-permit.admissible-to-dvz", lambda d: d["recipients"].append(
        {"party": "inspection.social", "data_categories": ["health"]}), "recipients.1.data_categories.0",
     "health data reach only DVZ and the regions (Art. 15–16); 'inspection.social' covers inspection.social"),
    (CARD, lambda d: d["recipients"].append({"party": "dvz", "data_categories": ["criminal_record"]}),
     "recipients.1.data_categories.0", "a self-employed person's criminal record reaches only the regions"),
])
def test_a_broken_flow_is_refused(contracts_copy, flow_id, change, field, words):
    edit_yaml(flow_file(contracts_copy, flow_id), change)
    error = refused(contracts_copy)
    assert error.file == f"flows/{flow_id}.yaml"
    assert error.field == field or field.endswith(".") and error.field.startswith(field), error.field
    assert words in error.message, error.message


def test_recipient_categories_may_exceed_the_message_when_the_dossier_is_attached(contracts_copy):
    flow = load_registry(contracts_copy).flow("single-permit.admissible-to-dvz")
    assert flow.attach_dossier and "health" in flow.recipient_rule("dvz").data_categories
    assert "health" not in flow.data_categories
    edit_yaml(flow_file(contracts_copy, "single-permit.admissible-to-dvz"), lambda d: d.update(attach_dossier=False))
    error = refused(contracts_copy)
    assert error.field.startswith("recipients.0.data_categories.")


def test_file_name_must_equal_the_id(contracts_copy):
    flow_file(contracts_copy, WORK).rename(contracts_copy / "flows" / "work.yaml")
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("flows/work.yaml", "id")


def test_a_second_file_with_the_same_id_is_refused(contracts_copy):
    shutil.copy(flow_file(contracts_copy, WORK), contracts_copy / "flows" / "copy.yaml")
    error = refused(contracts_copy)
    assert error.file == "flows/copy.yaml" and error.field == "id"


def test_a_missing_contract_is_refused(contracts_copy):
    (contracts_copy / "messages" / "work-decision.schema.json").unlink()
    error = refused(contracts_copy)
    assert (error.file, error.field) == (f"flows/{WORK}.yaml", "message")


def test_a_broken_contract_is_refused(contracts_copy):
    path = contracts_copy / "messages" / "work-decision.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["outcome"]["x-data-category"] = "opinions"
    path.write_text(json.dumps(schema), encoding="utf-8")
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("messages/work-decision.schema.json", "/properties/outcome/x-data-category")


def test_a_contract_category_the_flow_does_not_allow_is_refused(contracts_copy):
    path = contracts_copy / "messages" / "work-decision.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["case_reference"]["x-data-category"] = "criminal_record"
    path.write_text(json.dumps(schema), encoding="utf-8")
    error = refused(contracts_copy)
    assert (error.field, error.file) == ("data_categories", "flows/single-permit.work-decision.yaml")
    assert "criminal_record" in error.message


def test_unreadable_yaml_is_refused(contracts_copy):
    flow_file(contracts_copy, WORK).write_text("id: [unclosed\n", encoding="utf-8")
    assert refused(contracts_copy).file == f"flows/{WORK}.yaml"


def test_a_yml_file_is_not_silently_ignored(contracts_copy):
    flow_file(contracts_copy, WORK).rename(contracts_copy / "flows" / f"{WORK}.yml")
    assert refused(contracts_copy).file == f"flows/{WORK}.yml"


@pytest.mark.parametrize("change, field", [
    (lambda d: d["parties"][0].update(kind="spaceship"), "parties.0.kind"),
    (lambda d: d["parties"][1].update(roles=["overlord"]), "parties.1.roles"),
    (lambda d: d["parties"][2].update(delivery="pigeon"), "parties.2.delivery"),
    (lambda d: d["parties"][3].pop("name"), "parties.3.name"),
    (lambda d: d["parties"][3].update(name={"nl": "alleen Nederlands"}), "parties.3.name"),
    (lambda d: d["parties"].append(dict(d["parties"][0])), f"parties.{len(FIXED_PARTIES)}.id"),
    (lambda d: d["parties"][0].update(id="DVZ!"), "parties.0.id"),
])
def test_a_broken_party_is_refused(contracts_copy, change, field):
    edit_yaml(contracts_copy / "parties.yaml", change)
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("parties.yaml", field)


def test_removing_a_party_breaks_the_flows_that_name_it(contracts_copy):
    edit_yaml(contracts_copy / "parties.yaml",
              lambda d: d.update(parties=[p for p in d["parties"] if p["id"] != "municipality"]))
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("flows/single-permit.authorisation-to-municipality.yaml", "recipients.0.party")


def test_flow_is_immutable(registry):
    flow: Flow = registry.flow(WORK)
    with pytest.raises(AttributeError):
        flow.enabled = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        registry.flows["x"] = flow  # type: ignore[index]


def test_competent_region_maps_to_parties(registry):
    enum = registry.contracts["application"].schema["properties"]["competent_region"]["enum"]
    assert set(enum) == set(REGION_PARTIES) == set(EMPLOYMENT_SERVICES)
    assert sorted(REGION_PARTIES.values()) == REGIONS
    assert set(EMPLOYMENT_SERVICES.values()) == set(registry.parties_matching("pes.*"))
    assert region_party("german_speaking") == "region.german-speaking"
    with pytest.raises(ValueError):
        region_party("atlantis")
