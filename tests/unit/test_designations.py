"""Art. 15–17: designated persons for health data and criminal records — the list
(contracts/designations.yaml), its checks at start-up, its enforcement on every read of an inbox or
a dossier, and the list kept for the supervisory authority (`wib-hub designations list`)."""
from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from hub.domain.categories import SPECIAL_CATEGORIES
from hub.domain.errors import RegistryError
from hub.interfaces.cli.main import app
from hub.registry import default_contracts_dir, load_designations, load_registry
from tests.support import hub_settings, sqlite_store, start_hub
from tests.support.designations import (
    CASE_OFFICER,
    CLERK,
    MEDICAL,
    _forward_to_dvz,
    _inbox_as,
    _reads,
)

runner = CliRunner()


def test_shipped_list_is_valid_and_denies_by_default():
    registry = load_registry(default_contracts_dir())
    d = load_designations(default_contracts_dir(), registry)
    assert d.visible("dvz", None) == SPECIAL_CATEGORIES              # systems: true (demo, back office)
    assert d.visible("dvz", MEDICAL) == {"health"}
    assert d.visible("dvz", CASE_OFFICER) == SPECIAL_CATEGORIES
    assert d.visible("dvz", CLERK) == frozenset()
    assert d.visible("region.german-speaking", None) == frozenset()   # systems: false
    assert d.visible("portal", None) == frozenset()                   # not in the list at all
    assert all(x.confidentiality and x.role and x.designated_by for x in d.listing())
    assert {x.party for x in d.listing()} <= {"dvz"} | {p for p in registry.parties if p.startswith("region.")}


def _copy(tmp_path, change):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    path = contracts / "designations.yaml"
    data = yaml.safe_load(path.read_text())
    change(data["designations"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return contracts


def _person(**kw):
    return {"person": "x.officer-01", "role": "officer", "categories": ["health"], "designated_by": "head",
            "designated_on": "2024-01-01", "confidentiality": True, **kw}


@pytest.mark.parametrize("change,field,words", [
    (lambda d: d.update({"nobody": {"persons": [_person()]}}), "designations.nobody", "unknown party"),
    (lambda d: d.update({"onss": {"persons": [_person()]}}), "designations.onss", "only DVZ and the regional"),
    (lambda d: d.update({"inspection.social": {"systems": True}}), "designations.inspection.social",
     "only DVZ and the regional"),
    (lambda d: d["dvz"]["persons"][0].update(categories=["genetic"]), "designations.dvz.persons.0.categories",
     "unknown data category"),
    (lambda d: d["dvz"]["persons"][1].update(categories=["employment"]), "designations.dvz.persons.1.categories",
     "needs no designation"),
    (lambda d: d["dvz"]["persons"][0].update(confidentiality=False), "designations.dvz.persons.0.confidentiality",
     "confidentiality"),
    (lambda d: d["dvz"]["persons"][0].pop("role"), "designations.dvz.persons.0.role", "required"),
    (lambda d: d["dvz"]["persons"][0].update(person="has space"), "designations.dvz.persons.0.person", "pattern"),
    (lambda d: d["dvz"]["persons"].append(dict(d["dvz"]["persons"][0])), "designations.dvz.persons.5.person",
     "listed twice"),
    (lambda d: d["dvz"].update(systems="yes"), "designations.dvz.systems", "boolean"),
    (lambda d: d["dvz"]["persons"][0].update(designated_on="2999-01-01"),
     "designations.dvz.persons.0.designated_on", "future"),
])
def test_a_wrong_list_stops_start_up_naming_file_and_field(tmp_path, change, field, words):
    contracts = _copy(tmp_path, change)
    with pytest.raises(RegistryError) as err:
        load_designations(contracts, load_registry(contracts))
    assert (err.value.file, err.value.field) == ("designations.yaml", field), str(err.value)
    assert words in err.value.message
    # the hub itself refuses to start with it
    from hub.bootstrap import build_hub
    with pytest.raises(RegistryError) as started:
        build_hub(hub_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}",
                               f"sqlite:///{tmp_path / 'broker.db'}", contracts_dir=contracts))
    assert started.value.field == field


def test_a_missing_list_stops_start_up(tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    (contracts / "designations.yaml").unlink()
    with pytest.raises(RegistryError) as err:
        load_designations(contracts, load_registry(contracts))
    assert err.value.file == "designations.yaml" and err.value.field == "(file)"


def test_cli_csv_parses_and_holds_every_designation():
    result = runner.invoke(app, ["designations", "list", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == ["party", "person", "role", "categories", "designated_by", "designated_on",
                             "confidentiality"]
    expected = load_designations(default_contracts_dir(), load_registry(default_contracts_dir())).listing()
    assert [(r["party"], r["person"]) for r in rows] == [(d.party, d.person) for d in expected]
    medical = next(r for r in rows if r["person"] == MEDICAL)
    assert medical["categories"] == "health" and medical["confidentiality"] == "yes"
    assert medical["designated_on"] == "2024-01-15"


def test_cli_json_and_table():
    body = json.loads(runner.invoke(app, ["designations", "list", "--format", "json"]).output)
    assert body["systems"]["dvz"] is True and body["systems"]["region.german-speaking"] is False
    assert any(d["person"] == CASE_OFFICER and d["categories"] == ["criminal_record", "health"]
               for d in body["designations"])
    table = runner.invoke(app, ["designations", "list"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and MEDICAL in table.output and "designated persons" in table.output


def test_cli_names_the_field_of_a_wrong_list(tmp_path):
    contracts = _copy(tmp_path, lambda d: d.update({"portal": {"systems": True}}))
    result = runner.invoke(app, ["designations", "list", "--contracts-dir", str(contracts)], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert "designations.yaml" in result.output and "designations.portal" in result.output


def test_dossier_read_is_projected_for_the_caller(local_hub):
    hc = local_hub
    dossier, _ = _forward_to_dvz(hc)
    clerk = hc.http.get(f"/v1/dossiers/{dossier}", headers={"Authorization": f"Bearer {hc.token('dvz', CLERK)}"})
    assert clerk.status_code == 200, clerk.text
    view = clerk.json()
    assert view["withheld_categories"] == ["criminal_record", "health"]
    assert not SPECIAL_CATEGORIES & set(view["data_categories"])
    for m in view["messages"]:
        assert not SPECIAL_CATEGORIES & set(m["data_categories"])
        assert "medical_documents" not in ((m.get("attachments") or {}).get("application") or {})
    (event,) = _reads(hc, CLERK, "GET /v1/dossiers")
    assert event["reason"] == "GET /v1/dossiers withheld=criminal_record,health"
    assert event["dossier_id"] == dossier and not SPECIAL_CATEGORIES & set(event["data_categories"])

    officer = hc.http.get(f"/v1/dossiers/{dossier}",
                          headers={"Authorization": f"Bearer {hc.token('dvz', CASE_OFFICER)}"}).json()
    assert officer["withheld_categories"] == [] and SPECIAL_CATEGORIES <= set(officer["data_categories"])
    (event,) = _reads(hc, CASE_OFFICER, "GET /v1/dossiers")
    assert SPECIAL_CATEGORIES <= set(event["data_categories"]) and event["reason"] == "GET /v1/dossiers"


def test_region_never_gets_an_employees_criminal_record_even_for_a_designated_person(local_hub):
    """Art. 17 §1: the flow rules decide what a party receives; a designation cannot widen it."""
    hc = local_hub
    _forward_to_dvz(hc)
    for person in (None, "region.flanders.card-officer-01"):
        r = hc.http.get("/v1/inbox", headers={"Authorization": f"Bearer {hc.token('region.flanders', person)}"})
        for item in r.json()["items"]:
            assert not SPECIAL_CATEGORIES & set(item["data_categories"])
            assert "criminal_record_documents" not in item["payload"]


def test_system_client_gets_no_special_category_without_systems_true(tmp_path):
    contracts = _copy(tmp_path, lambda d: d["dvz"].update(systems=False))
    gen = start_hub(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{tmp_path.name}",
                    contracts_dir=contracts)
    hc = next(gen)
    try:
        _, message_id = _forward_to_dvz(hc)
        body, item = _inbox_as(hc, None, message_id)
        assert item["withheld_categories"] == ["criminal_record", "health"]
        assert "medical_documents" not in item["attachments"]["application"]
        events = _reads(hc, None, "GET /v1/inbox withheld=criminal_record,health")
        assert events and all(e["message_id"] == message_id for e in events)
        body, item = _inbox_as(hc, MEDICAL, message_id)               # the designated person still does
        assert item["attachments"]["application"]["medical_documents"]
    finally:
        gen.close()
