"""Fields that name an authority are bound to what the hub knows (`x-bound-to`, contracts/README.md).

A region speaks only for itself: `region.flanders` may not declare a dossier admissible in the name of
`region.wallonia`, nor ask for documents in the name of DVZ. The registry refuses, at start-up, a
contract whose party field says nothing of what it is bound to; the ingress refuses, in its
authorise step, a payload whose bound field names another party (403 `not_your_authority`, nothing
stored), and fills in a bound field that was left out.
"""
from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub import audit
from hub.domain import samples
from hub.domain.contracts import PARTY_ID_PATTERN, MessageContract
from hub.domain.envelope import payload_hash
from hub.domain.errors import MalformedMessage, NotAuthorised, RegistryError
from hub.infra.store import open_engine
from hub.infra.store.schema import (
    audit_events,
    deliveries,
    dossiers,
    enrichment_jobs,
    messages,
    outbox,
)
from hub.infra.store.unit_of_work import UnitOfWork
from hub.messaging.ingress import Ingress, Submission, submit
from hub.registry import default_contracts_dir, load_registry
from hub.registry.contracts import load_contracts
from tests.support import sqlite_store

ADMISSIBLE = "single-permit.admissible-to-dvz"
REQUESTED = "single-permit.additional-documents-requested"
WITHDRAWAL = "single-permit.withdrawal-to-employment-service"
APPLICATION = "single-permit.application-submitted"


# ── the contracts ─────────────────────────────────────────────────────────────────────────────

# Every field of contracts/messages that names a party, and what it is bound to.
BOUND = {
    ("additional-documents-requested", "/requested_by"): "sender",
    ("admissibility-decision", "/deciding_authority"): "sender",
    ("work-decision", "/deciding_authority"): "sender",
    ("residence-decision", "/deciding_authority"): "sender",
    ("negative-decision-notice", "/decided_by"): "sender",
    ("permit-withdrawal-notice", "/decided_by"): "sender",
    ("permit-withdrawal-notice", "/competent_region"): "dossier.region",
    ("appeal-lodged", "/informed_by"): "sender",
    ("appeal-ended", "/informed_by"): "sender",
    ("application", "/competent_region"): "dossier.region",
}


@pytest.fixture(scope="module")
def registry():
    return load_registry(default_contracts_dir())


def test_every_party_field_of_the_contracts_is_bound(registry):
    found = {(name, f.pointer): f.binding for name, c in registry.contracts.items() for f in c.bound_fields}
    assert found == BOUND
    for (name, pointer), binding in BOUND.items():
        prop = registry.contracts[name].schema["properties"][pointer[1:]]
        assert prop["x-bound-to"] == binding and "x-bound-to" in prop["description"]
        # the sender may leave out what the hub derives; the new dossier's region it cannot derive
        required = pointer[1:] in registry.contracts[name].schema.get("required", [])
        assert required == (name == "application")


@pytest.fixture
def contracts_copy(tmp_path) -> Path:
    target = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), target)
    return target


def edit_schema(contracts: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = contracts / "messages" / f"{name}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False), encoding="utf-8")


def refused(contracts: Path) -> RegistryError:
    with pytest.raises(RegistryError) as exc:
        load_registry(contracts)
    return exc.value


def test_the_copy_loads(contracts_copy):
    load_registry(contracts_copy)


def test_an_undeclared_authority_field_stops_start_up(contracts_copy):
    edit_schema(contracts_copy, "admissibility-decision",
                lambda s: s["properties"]["deciding_authority"].pop("x-bound-to"))
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("messages/admissibility-decision.schema.json", "/properties/deciding_authority")
    assert "names a party" in error.message and "x-bound-to" in error.message


def _add(field: str, schema: dict[str, Any], defs: dict[str, Any] | None = None):
    def change(s: dict[str, Any]) -> None:
        s["properties"][field] = schema
        s.setdefault("$defs", {}).update(defs or {})
    return change


# Each way a field names a party (hub.domain.contracts.party_fields), on a new, unbound field.
@pytest.mark.parametrize("field, schema, defs, pointer, words", [
    ("approving_authority", {"type": "string", "maxLength": 64}, None,
     "/properties/approving_authority", "its name 'approving_authority' is an authority's"),
    ("forwarded_by", {"type": "string", "maxLength": 64}, None, "/properties/forwarded_by", "is an authority's"),
    ("sender", {"type": "string", "maxLength": 64}, None, "/properties/sender", "is an authority's"),
    ("copy_to", {"type": "string", "enum": ["dvz", "portal"]}, None, "/properties/copy_to", "values name parties (dvz, portal)"),
    ("region", {"type": "string", "enum": ["flanders", "wallonia"]}, None, "/properties/region", "values name parties"),
    ("office", {"const": "region.brussels"}, None, "/properties/office", "values name parties (region.brussels)"),
    ("office", {"type": "string", "maxLength": 64, "description": "A party id of contracts/parties.yaml."}, None,
     "/properties/office", "description says it holds a party id"),
    ("office", {"type": "string", "maxLength": 64, "pattern": "^region\\.[a-z-]+$"}, None,
     "/properties/office", "pattern names a party"),
    ("office", {"type": "string", "maxLength": 64, "pattern": "^dvz$"}, None, "/properties/office", "pattern names a party"),
    ("office", {"type": "string", "maxLength": 64, "pattern": PARTY_ID_PATTERN}, None,
     "/properties/office", "pattern names a party"),
    # nested, through a $ref into $defs, and in an array
    ("handling", {"type": "object", "additionalProperties": False, "properties": {"desk": {"$ref": "#/$defs/desk"}}},
     {"desk": {"type": "string", "enum": ["region.flanders", "region.wallonia"]}},
     "/properties/handling/properties/desk", "values name parties"),
    ("copies", {"type": "array", "maxItems": 3, "items": {"type": "string", "enum": ["dvz"]}}, None,
     "/properties/copies/items", "values name parties (dvz)"),
])
def test_a_new_field_that_names_a_party_must_be_bound(contracts_copy, field, schema, defs, pointer, words):
    edit_schema(contracts_copy, "work-decision", _add(field, schema, defs))
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("messages/work-decision.schema.json", pointer)
    assert words in error.message, error.message


@pytest.mark.parametrize("field, schema", [
    ("dossier_id", None),                                                    # the dossier id's pattern admits "dvz"
    ("clock", {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]*$"}),      # so does a clock id's
    ("addressee", {"type": "string", "enum": ["applicant", "employer"]}),    # a data subject, not a party
    ("diplomatic_post", {"type": "string", "maxLength": 100}),               # a place, not a party of the platform
])
def test_fields_that_do_not_name_a_party_need_no_binding(contracts_copy, field, schema):
    if schema is not None:
        edit_schema(contracts_copy, "work-decision", _add(field, schema))
    load_registry(contracts_copy)


@pytest.mark.parametrize("change, pointer, words", [
    (lambda s: s["properties"]["requested_by"].update({"x-bound-to": "recipient"}),
     "/properties/requested_by/x-bound-to", "unknown x-bound-to 'recipient'; known: dossier.region, sender"),
    (lambda s: s["$defs"].update(unused={"type": "string", "x-bound-to": "Sender"}),
     "/$defs/unused/x-bound-to", "unknown x-bound-to 'Sender'"),
    (lambda s: s["properties"]["message_to_applicant"].update({"x-bound-to": "sender"}),
     "/properties/message_to_applicant/x-bound-to", "may not carry (or sit under) a data category"),
    (lambda s: s["properties"]["requested_documents"].update({"x-bound-to": "sender"}),
     "/properties/requested_documents/x-bound-to", "goes on a string field"),
    (lambda s: s["properties"]["requested_documents"]["items"].update({"x-bound-to": "sender"}),
     "/properties/requested_documents/items/x-bound-to", "not supported inside an array"),
    (lambda s: s.update(allOf=[{"properties": {"requested_by": {"x-bound-to": "sender"}}}]),
     "/allOf/0/properties/requested_by/x-bound-to", "belongs on properties"),
])
def test_a_wrong_binding_stops_start_up(contracts_copy, change, pointer, words):
    edit_schema(contracts_copy, "additional-documents-requested", change)
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("messages/additional-documents-requested.schema.json", pointer)
    assert words in error.message, error.message
    with pytest.raises(RegistryError):            # the contract alone does not load either
        load_contracts(contracts_copy / "messages")


def test_every_sender_of_a_flow_must_fit_its_sender_bound_fields(contracts_copy):
    # the hub fills in the sender: a region must be a value the work decision admits
    edit_schema(contracts_copy, "work-decision",
                lambda s: s["properties"]["deciding_authority"].update(pattern="^region\\.(flanders|wallonia)$"))
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("flows/single-permit.work-decision.yaml", "senders.0")
    assert "region.brussels, region.german-speaking may send" in error.message


def test_a_dossier_region_field_must_admit_every_region(contracts_copy):
    edit_schema(contracts_copy, "permit-withdrawal-notice",
                lambda s: s["properties"]["competent_region"].update(enum=["flanders", "wallonia"]))
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("messages/permit-withdrawal-notice.schema.json",
                                         "/properties/competent_region")
    assert "brussels, german_speaking is not admitted" in error.message


def test_a_flow_that_creates_the_dossier_takes_its_region_from_a_bound_field(contracts_copy):
    edit_schema(contracts_copy, "application", lambda s: s["properties"].update(
        competent_region={"type": "string", "enum": ["east", "west"]}))     # names no party, binds nothing
    error = refused(contracts_copy)
    assert (error.file, error.field) == ("flows/professional-card.application-submitted.yaml", "message")
    assert "x-bound-to: dossier.region" in error.message


# ── the contract's own check, nested and through $defs ────────────────────────────────────────

def _probe() -> MessageContract:
    return MessageContract("probe", {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://contracts.wib-hub.example/messages/probe/1.0",
        "x-contract-version": "1.0",
        "type": "object", "additionalProperties": False,
        "properties": {
            "desk": {"$ref": "#/$defs/desk"},
            "handling": {"type": "object", "additionalProperties": False,
                         "properties": {"by": {"$ref": "#/$defs/party", "x-bound-to": "sender"},
                                        "note": {"type": "string", "maxLength": 10}}},
            "region": {"type": "string", "enum": ["flanders", "wallonia"], "x-bound-to": "dossier.region"},
        },
        "$defs": {"party": {"type": "string", "pattern": PARTY_ID_PATTERN, "maxLength": 64},
                  "desk": {"type": "string", "maxLength": 64, "x-bound-to": "sender"}},
    })


def test_bound_fields_are_found_through_nested_objects_and_defs():
    probe = _probe()
    assert {(f.pointer, f.binding, f.schema_pointer) for f in probe.bound_fields} == {
        ("/desk", "sender", "/$defs/desk/x-bound-to"),
        ("/handling/by", "sender", "/properties/handling/properties/by/x-bound-to"),
        ("/region", "dossier.region", "/properties/region/x-bound-to"),
    }
    by = next(f for f in probe.bound_fields if f.pointer == "/handling/by")
    assert by.accepts("region.flanders") and not by.accepts("Region Flanders")


def test_bind_refuses_names_the_field_and_fills_in():
    probe = _probe()
    values = {"sender": "region.flanders", "dossier.region": "flanders"}
    payload = {"desk": "region.flanders", "handling": {"by": "region.wallonia"}, "region": "wallonia"}
    with pytest.raises(NotAuthorised) as exc:
        probe.bind(payload, values)
    assert exc.value.status == 403 and exc.value.code == "not_your_authority"
    assert [d["path"] for d in exc.value.detail] == ["/handling/by", "/region"]
    assert "wallonia" not in json.dumps(exc.value.detail)                  # the field, never its value

    stated = {"desk": "region.flanders", "handling": {"by": "region.flanders", "note": "x"}, "region": "flanders"}
    assert probe.bind(stated, values) is stated                            # nothing to fill in: the same payload

    received = {"handling": {"note": "x"}}
    kept = copy.deepcopy(received)
    filled = probe.bind(received, values)
    assert filled == {"desk": "region.flanders", "handling": {"by": "region.flanders", "note": "x"}, "region": "flanders"}
    assert received == kept                                                # the payload as received is not changed
    assert probe.bind({}, values) == {"desk": "region.flanders", "region": "flanders"}   # no object made up
    assert probe.bind({"region": "wallonia"}, {"sender": "dvz"}) == {"region": "wallonia", "desk": "dvz"}  # not applicable


# ── the authorise step, on a SQLite store ─────────────────────────────────────────────────────

@pytest.fixture
def ingress(tmp_path, registry):
    engine = open_engine(sqlite_store(tmp_path / "hub.db"))
    ing = Ingress(registry, UnitOfWork(engine))
    yield ing
    ing.work.close()
    engine.dispose()


def _apply(ing: Ingress, serial: int = 1, region: str = "flanders") -> str:
    return submit(ing, Submission(APPLICATION, "portal", samples.synthetic_application(serial, region))).dossier_id


def _counts(ing: Ingress) -> dict[str, int]:
    with ing.work.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (dossiers, messages, outbox, deliveries)}


def _state(ing: Ingress, dossier_id: str) -> str:
    with ing.work.engine.connect() as conn:
        return conn.execute(select(dossiers.c.state).where(dossiers.c.id == dossier_id)).scalar_one()


def _stored(ing: Ingress, message_id: str) -> dict[str, Any]:
    with ing.work.engine.connect() as conn:
        return dict(conn.execute(select(messages).where(messages.c.id == message_id)).mappings().one())


def _last_event(ing: Ingress) -> dict[str, Any]:
    with ing.work.engine.connect() as conn:
        return dict(conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)).mappings().one())


def _refused(ing: Ingress, submission: Submission, path: str) -> NotAuthorised:
    before = _counts(ing)
    received = copy.deepcopy(submission.payload)
    with pytest.raises(NotAuthorised) as exc:
        submit(ing, submission)
    err = exc.value
    assert (err.status, err.code) == (403, "not_your_authority")
    assert [d["path"] for d in err.detail] == [path]
    assert _counts(ing) == before, "a refused message leaves nothing stored"
    event = _last_event(ing)
    assert (event["event"], event["reason"], event["actor"]) == ("rejected", "not_your_authority", submission.sender)
    assert event["payload_hash"] == payload_hash(received)                # the payload as received
    assert audit.verify(ing.work.engine).intact
    return err


def test_a_region_may_not_decide_for_another(ingress):
    dossier = _apply(ingress)                                              # Flanders
    payload = samples.sample_admissibility_decision(dossier, region="region.wallonia")
    err = _refused(ingress, Submission(ADMISSIBLE, "region.flanders", payload, dossier_id=dossier), "/deciding_authority")
    assert "region.wallonia" not in str(err) and "region.wallonia" not in json.dumps(err.detail)
    assert _state(ingress, dossier) == "submitted"


def test_a_region_may_not_ask_in_the_name_of_dvz(ingress):
    dossier = _apply(ingress)
    payload = samples.sample_additional_documents_requested(dossier, requested_by="dvz")
    _refused(ingress, Submission(REQUESTED, "region.flanders", payload, dossier_id=dossier), "/requested_by")
    assert _state(ingress, dossier) == "submitted"


def test_the_sender_naming_itself_is_accepted(ingress):
    dossier = _apply(ingress)
    payload = samples.sample_admissibility_decision(dossier, region="region.flanders")
    accepted = submit(ingress, Submission(ADMISSIBLE, "region.flanders", payload, dossier_id=dossier))
    assert accepted.recipients == ("dvz",)
    stored = _stored(ingress, accepted.message_id)
    assert stored["payload"] == payload and stored["payload_hash"] == payload_hash(payload)
    assert _state(ingress, dossier) == "under_examination"


def test_a_bound_field_left_out_is_filled_in_and_retries_stay_idempotent(ingress):
    dossier = _apply(ingress)
    payload = samples.sample_additional_documents_requested(dossier, requested_by=None)
    received = copy.deepcopy(payload)
    first = submit(ingress, Submission(REQUESTED, "dvz", payload, dossier_id=dossier, message_id="dvz-ask-1"))
    assert payload == received                                             # the sender's payload is not changed
    stored = _stored(ingress, "dvz-ask-1")
    assert stored["payload"] == {**received, "requested_by": "dvz"}        # what the portal will receive
    assert stored["payload_hash"] == payload_hash(stored["payload"])       # the hash is of what is stored
    assert _state(ingress, dossier) == "incomplete"
    before = _counts(ingress)

    again = submit(ingress, Submission(REQUESTED, "dvz", copy.deepcopy(received), dossier_id=dossier,
                                       message_id="dvz-ask-1"))
    assert again.duplicate and again.message_id == first.message_id and again.recipients == first.recipients
    stated = submit(ingress, Submission(REQUESTED, "dvz", {**received, "requested_by": "dvz"}, dossier_id=dossier,
                                        message_id="dvz-ask-1"))
    assert stated.duplicate                                                # the same message, once filled in
    with pytest.raises(MalformedMessage) as exc:
        submit(ingress, Submission(REQUESTED, "dvz", {**received, "due_date": "2026-04-01"}, dossier_id=dossier,
                                   message_id="dvz-ask-1"))
    assert exc.value.code == "message_id_reused"
    assert _counts(ingress) == before


def test_the_dossier_region_is_checked_and_filled_in(ingress):
    dossier = _apply(ingress)                                              # Flanders
    wrong = samples.sample_permit_withdrawal_notice(dossier, competent_region="wallonia")
    _refused(ingress, Submission(WITHDRAWAL, "region.flanders", wrong, recipients=("pes.vdab",), dossier_id=dossier),
             "/competent_region")
    left_out = samples.sample_permit_withdrawal_notice(dossier, decided_by=None, competent_region=None)
    accepted = submit(ingress, Submission(WITHDRAWAL, "dvz", left_out, recipients=("pes.vdab",), dossier_id=dossier,
                                          message_id="withdrawal-1"))
    stored = _stored(ingress, accepted.message_id)["payload"]
    assert (stored["decided_by"], stored["competent_region"]) == ("dvz", "flanders")
    again = submit(ingress, Submission(WITHDRAWAL, "dvz", left_out, recipients=("pes.vdab",), dossier_id=dossier,
                                       message_id="withdrawal-1"))
    assert again.duplicate


def test_the_application_gives_the_dossier_its_region(ingress):
    dossier = _apply(ingress, 2, "wallonia")
    with ingress.work.engine.connect() as conn:
        assert conn.execute(select(dossiers.c.competent_region).where(dossiers.c.id == dossier)).scalar_one() \
            == "region.wallonia"
    # and that dossier's region speaks for it, not Flanders
    payload = samples.sample_admissibility_decision(dossier, region=None)
    accepted = submit(ingress, Submission(ADMISSIBLE, "region.wallonia", payload, dossier_id=dossier))
    assert _stored(ingress, accepted.message_id)["payload"]["deciding_authority"] == "region.wallonia"


# ── the findings, through the API ─────────────────────────────────────────────────────────────

def _api_counts(hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (dossiers, messages, outbox, deliveries, enrichment_jobs)}


def _fields(body: dict[str, Any]) -> list[str]:
    """The fields a refusal names: its problem `issues` (or, in the plain error body, its detail list)."""
    return [i.get("name", i.get("path")) for i in body.get("issues") or body["detail"]]


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _delivered_to(hub, party: str, dossier_id: str) -> list[dict[str, Any]]:
    with hub.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(deliveries).where(deliveries.c.recipient == party)
                                              .where(deliveries.c.dossier_id == dossier_id)).mappings()]


def test_the_findings_are_refused_through_the_api(local_hub):
    hub = local_hub.hub
    r = local_hub.post("portal", "/v1/applications", samples.synthetic_application(7))   # Flanders
    assert r.status_code == 202, r.text
    dossier = r.json()["dossier_id"]
    _wait(lambda: len(_delivered_to(hub, "region.flanders", dossier)) == 1)
    local_hub.token("region.flanders")
    before = _api_counts(hub)

    # 1. region.flanders declares the dossier admissible in the name of region.wallonia
    r = local_hub.post("region.flanders", "/v1/messages", {
        "flow": ADMISSIBLE, "dossier_id": dossier,
        "payload": samples.sample_admissibility_decision(dossier, region="region.wallonia")})
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "not_your_authority"
    assert _fields(body) == ["/deciding_authority"]
    assert "region.wallonia" not in r.text

    # 2. region.flanders asks for documents in the name of DVZ
    r = local_hub.post("region.flanders", "/v1/messages", {
        "flow": REQUESTED, "dossier_id": dossier,
        "payload": samples.sample_additional_documents_requested(dossier, requested_by="dvz")})
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "not_your_authority"
    assert _fields(r.json()) == ["/requested_by"]

    time.sleep(0.2)                                                        # give the relay and router a chance
    assert _api_counts(hub) == before                                      # nothing stored, routed or enriched
    with hub.engine.connect() as conn:
        assert conn.execute(select(dossiers.c.state).where(dossiers.c.id == dossier)).scalar_one() == "submitted"
        rejected = conn.execute(select(audit_events.c.reason, audit_events.c.actor)
                                .where(audit_events.c.event == "rejected")
                                .order_by(audit_events.c.seq.desc()).limit(2)).all()
    assert [tuple(e) for e in rejected] == [("not_your_authority", "region.flanders")] * 2
    assert _delivered_to(hub, "dvz", dossier) == [] and _delivered_to(hub, "portal", dossier) == []
    assert audit.verify(hub.engine).intact

    # the same request in Flanders' own name, or leaving the name to the hub, goes through
    r = local_hub.post("region.flanders", "/v1/messages", {
        "flow": REQUESTED, "dossier_id": dossier,
        "payload": samples.sample_additional_documents_requested(dossier, requested_by=None)})
    assert r.status_code == 202, r.text
    _wait(lambda: len(_delivered_to(hub, "portal", dossier)) == 1)
    [to_portal] = _delivered_to(hub, "portal", dossier)
    assert to_portal["payload"]["requested_by"] == "region.flanders"      # what the portal shows the applicant
