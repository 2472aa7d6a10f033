"""The integration engineers' contract tools: the catalogue, `wib-hub contracts …` and /v1/contracts."""
from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from hub.domain.errors import RegistryError
from hub.interfaces.cli.main import app
from hub.registry import default_contracts_dir
from hub.registry.catalogue import (
    ContractFileMissing,
    UnknownContract,
    UnsafeDocument,
    load_catalogue,
)

runner = CliRunner()
WIDE = {"COLUMNS": "250"}

REQUEST_OK = b"""<?xml version="1.0" encoding="UTF-8"?>
<PersonnelFileConsultationRequest>
  <Form>
    <Identification>PFREQ</Identification>
    <FormCreationDate>2026-01-02</FormCreationDate>
    <FormCreationHour>10:11:12.123</FormCreationHour>
    <AttestationStatus>0</AttestationStatus>
    <TypeForm>RE</TypeForm>
    <EmployerId>
      <NOSSRegistrationNbr>12345</NOSSRegistrationNbr>
      <CompanyID>0123456749</CompanyID>
    </EmployerId>
  </Form>
</PersonnelFileConsultationRequest>
"""
# TypeForm on line 8 breaks its enumeration; EmployerId (line 9) lacks CompanyID
REQUEST_BAD = REQUEST_OK.replace(b"<TypeForm>RE", b"<TypeForm>XX").replace(
    b"      <CompanyID>0123456749</CompanyID>\n", b"")
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<PersonnelFileConsultationRequest>&x;</PersonnelFileConsultationRequest>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
ENVELOPE = b"""<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
<soapenv:Body>
<t:consultPersonnelFileRequest xmlns:t="urn:wib-hub:onss:dimona:personnel-file-consultation:v1">
<t:legalContext>Cooperation agreement single permit, Art. 14</t:legalContext>
</t:consultPersonnelFileRequest>
</soapenv:Body>
</soapenv:Envelope>"""
RESULT_OK = {"items": [{"ssin": "85073003328", "periods": []}]}
RESULT_BAD = b'{\n  "items": [\n    {\n      "ssin": "123",\n      "periods": []\n    }\n  ]\n}\n'


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


# --- the catalogue ---------------------------------------------------------------------------------

def test_every_listed_file_exists(catalogue):
    """LEAD CHECK (at the end): every file the catalogue lists is in contracts/ once all adapters landed."""
    assert [f"{e.name}: contracts/{e.file}" for e in catalogue.missing()] == []


def test_catalogue_lists_external_contracts_and_every_message_contract(catalogue):
    names = set(catalogue.entries)
    assert {"onss.dimona.rest", "onss.dimona.personnel-file.request", "onss.dmfa.consultation",
            "inasti.self-employed", "backoffice.rest", "enrichment.onss.dimona"} <= names
    messages = {p.name[: -len(".schema.json")] for p in (default_contracts_dir() / "messages").glob("*.schema.json")}
    assert {f"messages.{m}" for m in messages} <= names
    entry = catalogue.entries["onss.dimona.personnel-file.request"]
    assert (entry.kind, entry.syntax, entry.root, entry.version) == ("xsd", "xml", "PersonnelFileConsultationRequest", "20231")
    assert catalogue.entries["messages.application"].version  # read from x-contract-version


def test_a_missing_file_is_reported_not_fatal(tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    (contracts / "catalogue.yaml").write_text(
        "contracts:\n  - {name: x.later, system: X, protocol: REST, version: v1, file: x/later.openapi.yaml,"
        " root: Thing, used_for: later, adapter: null}\n")
    cat = load_catalogue(contracts)
    assert [e.name for e in cat.missing()] == ["x.later"]
    with pytest.raises(ContractFileMissing, match="x/later.openapi.yaml"):
        cat.validate("x.later", b"{}")


@pytest.mark.parametrize("text, field", [
    ("contracts: nope\n", "contracts"),
    ("contracts:\n  - {name: a, system: S}\n", "contracts/0"),
    ("contracts:\n  - {name: a, system: S, protocol: P, file: ../../etc/passwd}\n", "contracts/0/file"),
])
def test_a_malformed_catalogue_names_the_field(tmp_path, text, field):
    (tmp_path / "catalogue.yaml").write_text(text)
    with pytest.raises(RegistryError) as err:
        load_catalogue(tmp_path)
    assert err.value.field == field


# --- validation ------------------------------------------------------------------------------------

def test_valid_xml_against_the_published_xsd(catalogue):
    assert catalogue.validate("onss.dimona.personnel-file.request", REQUEST_OK, "request.xml") == []


def test_invalid_xml_gives_xpath_line_and_facet(catalogue):
    problems = catalogue.validate("onss.dimona.personnel-file.request", REQUEST_BAD, "request.xml")
    found = {(p.path, p.line, p.rule) for p in problems}
    assert ("/PersonnelFileConsultationRequest/Form/TypeForm", 8, "enumeration") in found
    assert any(p.path.endswith("/EmployerId") and p.line == 9 and p.rule == "sequence" for p in problems)


def test_wrong_root_and_malformed_xml(catalogue):
    [wrong] = catalogue.validate("onss.dimona.personnel-file.request", b"<Form/>")
    assert wrong.rule == "root" and "PersonnelFileConsultationRequest" in wrong.message
    [broken] = catalogue.validate("onss.dimona.personnel-file.request", b"<?xml version='1.0'?>\n<a>\n<b></a>")
    assert broken.rule == "well-formedness" and broken.line == 3


@pytest.mark.parametrize("doc", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_dtd_and_entities_are_refused(catalogue, doc):
    with pytest.raises(UnsafeDocument):
        catalogue.validate("onss.dimona.personnel-file.request", doc)


def test_wsdl_contract_checks_the_soap_body_element(catalogue):
    [problem] = catalogue.validate("onss.dimona.personnel-file", ENVELOPE)
    assert problem.rule == "sequence" and "informationCustomer" in problem.message and problem.line == 3
    [unknown] = catalogue.validate("onss.dimona.personnel-file", b"<nothing/>")
    assert unknown.rule == "element"


def test_json_against_an_openapi_component(catalogue):
    assert catalogue.validate("onss.dimona.rest", json.dumps(RESULT_OK).encode()) == []  # default component
    [problem] = catalogue.validate("onss.dimona.rest", RESULT_BAD, "answer.json")
    assert (problem.path, problem.line, problem.rule) == ("/items/0/ssin", 4, "pattern")
    assert "123" not in problem.message  # values are not echoed
    [problem] = catalogue.validate("onss.dimona.rest#Worker", b'{"ssin": "85073003328", "name": "x"}')
    assert problem.rule == "additionalProperties"
    assert catalogue.validate("onss.dimona.rest#Date", b'"2026-02-30"')[0].rule == "format"


def test_json_against_a_message_contract_and_syntax_errors(catalogue):
    problems = catalogue.validate("messages.application", b'{\n  "unexpected": 1\n}')
    assert {"additionalProperties", "required"} <= {p.rule for p in problems}
    [syntax] = catalogue.validate("messages.application", b'{\n  "a": 1,\n}')
    assert syntax.rule == "syntax" and syntax.line == 3
    [mismatch] = catalogue.validate("messages.application", REQUEST_OK, "request.xml")
    assert mismatch.rule == "media-type"


@pytest.mark.parametrize("name", ["no.such.contract", "onss.dimona.rest#NoSuchComponent",
                                  "onss.dimona.personnel-file.request#Form"])
def test_unknown_contract_or_component(catalogue, name):
    with pytest.raises(UnknownContract):
        catalogue.validate(name, b"{}")


# --- the CLI -------------------------------------------------------------------------------------

def test_cli_list():
    result = runner.invoke(app, ["contracts", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    for text in ("onss.dimona.rest", "messages.application", "PersonnelFileConsultationRequest_20231.xsd", "SOAP"):
        assert text in result.output


@pytest.mark.parametrize("name, expected", [
    ("onss.dimona.personnel-file.request", ["PersonnelFileConsultationRequest", "elements"]),
    ("onss.dimona.personnel-file", ["consultPersonnelFile", "operations"]),
    ("onss.dimona.rest", ["POST /periods/search", "PeriodSearchResult"]),
    ("enrichment.onss.dimona", ["x-data-category", "social_security"]),
])
def test_cli_show(name, expected):
    result = runner.invoke(app, ["contracts", "show", name], env=WIDE)
    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.output


def test_cli_show_unknown():
    result = runner.invoke(app, ["contracts", "show", "no.such"], env=WIDE)
    assert result.exit_code == 2 and "unknown contract" in result.output


def test_cli_validate_valid_invalid_unknown_unsafe(tmp_path):
    good, bad, xxe, answer = (tmp_path / n for n in ("good.xml", "bad.xml", "xxe.xml", "answer.json"))
    good.write_bytes(REQUEST_OK)
    bad.write_bytes(REQUEST_BAD)
    xxe.write_bytes(XXE)
    answer.write_bytes(RESULT_BAD)
    result = runner.invoke(app, ["contracts", "validate", "onss.dimona.personnel-file.request", str(good)], env=WIDE)
    assert result.exit_code == 0 and "valid" in result.output
    result = runner.invoke(app, ["contracts", "validate", "onss.dimona.personnel-file.request", str(bad)], env=WIDE)
    assert result.exit_code == 1
    assert "/PersonnelFileConsultationRequest/Form/TypeForm" in result.output and "enumeration" in result.output
    assert " 8 " in result.output
    result = runner.invoke(app, ["contracts", "validate", "onss.dimona.rest#PeriodSearchResult", str(answer)], env=WIDE)
    assert result.exit_code == 1 and "/items/0/ssin" in result.output and "pattern" in result.output
    result = runner.invoke(app, ["contracts", "validate", "no.such", str(good)], env=WIDE)
    assert result.exit_code == 2 and "unknown contract" in result.output
    result = runner.invoke(app, ["contracts", "validate", "onss.dimona.personnel-file.request", str(xxe)], env=WIDE)
    assert result.exit_code == 1 and "DOCTYPE" in result.output


# --- `contracts test`: conformance through the entry points ----------------------------------------

class _EntryPoint:
    def __init__(self, name, obj):
        self.name, self._obj = name, obj

    def load(self):
        return self._obj


@pytest.fixture
def fake_adapters(monkeypatch):
    """Two adapters behind the entry points: one whose endpoint conforms, one whose does not."""
    from hub.ports import Adapter, Check
    seen = {}

    def suite(passing):
        def conformance(config):
            seen["config"] = config
            return [Check("happy path valid against contract", True, "200"),
                    Check("unknown INSZ answers NO_DATA", passing, "" if passing else "got 500")]
        return conformance

    adapters = [_EntryPoint("x.good", Adapter("x.good", "X", "REST", (), lambda c: None, suite(True))),
                _EntryPoint("x.bad", Adapter("x.bad", "X", "SOAP", (), lambda c: None, suite(False)))]
    monkeypatch.setattr("hub.interfaces.cli.contracts.entry_points", lambda group: adapters if group == "wib_hub.adapters" else [])
    return seen


def test_cli_conformance_pass_fail_json_and_key(fake_adapters, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["contracts", "test", "x.good", "--url", "http://127.0.0.1:1"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "2 checks passed" in result.output and fake_adapters["config"].private_key_pem is None
    key = tmp_path / "sandbox" / "client-key.pem"
    key.parent.mkdir()
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    result = runner.invoke(app, ["contracts", "test", "x.bad", "--url", "http://127.0.0.1:1", "--json",
                                 "--client-id", "partner"], env=WIDE)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["passed"] is False and [c["passed"] for c in report["checks"]] == [True, False]
    config = fake_adapters["config"]
    assert (config.url, config.client_id, config.private_key_pem) == ("http://127.0.0.1:1", "partner", key.read_bytes())


def test_cli_conformance_unknown_adapter(fake_adapters):
    result = runner.invoke(app, ["contracts", "test", "nobody", "--url", "http://127.0.0.1:1"], env=WIDE)
    assert result.exit_code == 2 and "unknown adapter" in result.output and "x.good" in result.output


@pytest.mark.parametrize("name", ["onss.dimona", "onss.dmfa", "onss.limosa", "inasti.self-employed",
                                  "dvz.back-office", "regions.back-office"])
def test_cli_conformance_against_the_sandbox(name):
    """Each installed adapter, found by name, against its simulator on real HTTP: every check passes."""
    from adapters.sandbox import shared_sandbox
    from tests.support import SANDBOX_DIR
    box = shared_sandbox(SANDBOX_DIR, [name])
    result = runner.invoke(app, ["contracts", "test", name, "--url", box.urls()[name], "--json",
                                 "--key-file", str(SANDBOX_DIR / "client-key.pem")], env=WIDE)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] and len(report["checks"]) >= 6


# --- the API ---------------------------------------------------------------------------------------

@pytest.fixture
def api(local_hub):
    return local_hub


def _party(hub_client) -> str:
    return sorted(hub_client.secrets)[0]


def test_api_lists_the_catalogue_to_authenticated_parties_only(api):
    assert api.http.get("/v1/contracts").status_code == 401
    r = api.get(_party(api), "/v1/contracts")
    assert r.status_code == 200
    entries = {e["name"]: e for e in r.json()["contracts"]}
    assert entries["onss.dimona.personnel-file.request"]["kind"] == "xsd"
    assert entries["onss.dimona.personnel-file.request"]["exists"] is True


def test_api_validates_xml_and_json(api):
    headers = api.as_(_party(api))
    post = api.http.post
    url = "/v1/contracts/onss.dimona.personnel-file.request/validate"
    r = post(url, content=REQUEST_OK, headers={**headers, "Content-Type": "application/xml"})
    assert r.status_code == 200 and r.json()["valid"] is True
    r = post(url, content=REQUEST_BAD, headers={**headers, "Content-Type": "text/xml"})
    assert r.status_code == 422 and r.json()["error"] == "contract_violation"
    assert r.headers["content-type"] == "application/problem+json"
    assert {"in": "body", "name": "/PersonnelFileConsultationRequest/Form/TypeForm", "line": 8,
            "rule": "enumeration"}.items() <= r.json()["issues"][0].items()
    r = post("/v1/contracts/onss.dimona.rest/validate?component=PeriodSearchResult", content=RESULT_BAD,
             headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["issues"][0]["line"] == 4
    r = post("/v1/contracts/onss.dimona.rest/validate", json=RESULT_OK, headers=headers)
    assert r.status_code == 200


def test_api_refuses_unknown_contracts_unsafe_xml_and_anonymous_callers(api):
    headers = api.as_(_party(api))
    post = api.http.post
    r = post("/v1/contracts/no.such/validate", content=b"{}", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_contract"
    r = post("/v1/contracts/onss.dimona.personnel-file.request/validate", content=XXE,
             headers={**headers, "Content-Type": "application/xml"})
    assert r.status_code == 400 and r.json()["error"] == "unsafe_document"
    r = post("/v1/contracts/onss.dimona.personnel-file.request/validate", content=REQUEST_OK,
             headers={"Content-Type": "application/xml"})
    assert r.status_code == 401


def test_contracts_readme_lists_every_catalogue_entry():
    """contracts/README.md is what integration engineers read first: it must not drift from the catalogue."""
    import yaml
    readme = (default_contracts_dir() / "README.md").read_text()
    for c in yaml.safe_load((default_contracts_dir() / "catalogue.yaml").read_text())["contracts"]:
        assert f"| `{c['name']}` |" in readme and f"`{c['file']}`" in readme, c["name"]
