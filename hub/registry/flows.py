"""Loading the flow registry: contracts/parties.yaml, contracts/messages/ and contracts/flows/*.yaml,
cross-checked at start-up (a wrong file stops the hub with a RegistryError naming file and field).

The cross-checks are the protocol agreement's rules on the registry itself: a flow's purpose is one
of Art. 10 1°–9°; its controllers and processor have those roles; every recipient rule names
categories the flow carries (Art. 11); health data and criminal records reach only the parties that
examine them (Art. 15–17); a flow may carry every category its contract can carry; every field of a
message that names a party is bound (`x-bound-to`) to what the hub knows — the sender, the dossier's
region — and can hold what the hub would fill in (a party speaks only for itself).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from hub.domain.categories import DATA_CATEGORIES, SOCIAL_SECURITY
from hub.domain.contracts import BOUND_KEY, MessageContract, party_fields
from hub.domain.dossier import STATES
from hub.domain.errors import RegistryError
from hub.domain.flows import (
    PARTY_KINDS, PARTY_ROLES, PURPOSES, REGION_PARTIES, RETENTION_RULES, Flow, Party, RecipientRule, Registry,
)
from hub.domain.parties import DVZ, PLATFORM, PORTAL
from hub.registry.contracts import load_contracts
from hub.registry.files import FileModel, parse, read_yaml

__all__ = ["load_registry"]

_PARTY_ID = r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$"
_PATTERN = r"^[a-z*?][a-z0-9*?-]*(\.[a-z*?][a-z0-9*?-]*)*$"


class _PartyModel(FileModel):
    id: str = Field(pattern=_PARTY_ID, max_length=64)
    name: dict[str, str] = Field(min_length=1)
    kind: str
    roles: list[str] = Field(min_length=1)
    delivery: Literal["inbox", "queue"] = "inbox"
    ingress: Literal["none", "queue"] = "none"   # opt-in: it may send on its own AMQP ingress queue

    @field_validator("name")
    @classmethod
    def _english_name(cls, value: dict[str, str]) -> dict[str, str]:
        if "en" not in value:
            raise ValueError("an English name ('en') is required")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in PARTY_KINDS:
            raise ValueError(f"unknown kind {value!r}; known: {', '.join(sorted(PARTY_KINDS))}")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        for role in value:
            if role not in PARTY_ROLES:
                raise ValueError(f"unknown role {role!r}; known: {', '.join(sorted(PARTY_ROLES))}")
        return value


class _PartiesFile(FileModel):
    parties: list[_PartyModel] = Field(min_length=1)


class _RecipientModel(FileModel):
    party: str = Field(pattern=_PATTERN)
    data_categories: list[str]


class _DossierModel(FileModel):
    creates: StrictBool = False
    state: str | None = None


class _FlowModel(FileModel):
    id: str = Field(pattern=_PARTY_ID)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1)
    legal_basis: list[str] = Field(min_length=1)
    purpose: StrictInt
    controller: list[str] = Field(min_length=1)
    processor: str
    data_subjects: list[str] = Field(min_length=1)
    senders: list[str] = Field(min_length=1)
    recipients: list[_RecipientModel] = Field(min_length=1)
    message: str
    data_categories: list[str]
    attach_dossier: StrictBool = False
    dossier: _DossierModel = _DossierModel()
    retention: str
    enabled: StrictBool = True
    opens_with: Literal["professional_card"] | None = None   # a procedure that starts on a set date
    payload_constraints: dict[str, list[str | int | bool]] = Field(default_factory=dict)
    enrich: list[str] = Field(default_factory=list)

    @field_validator("controller", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def _load_parties(contracts_dir: Path) -> dict[str, Party]:
    file = "parties.yaml"
    parsed: _PartiesFile = parse(_PartiesFile, read_yaml(contracts_dir / file, file), file)
    parties: dict[str, Party] = {}
    for i, p in enumerate(parsed.parties):
        if p.id in parties:
            raise RegistryError(file, f"parties.{i}.id", f"duplicate party id {p.id!r}")
        parties[p.id] = Party(p.id, MappingProxyType(dict(p.name)), p.kind, tuple(p.roles), p.delivery, p.ingress)
    for party_id, (what, holds) in _NAMED_PARTIES.items():   # the parties the hub's own rules name
        if party_id not in parties or not holds(parties[party_id]):
            raise RegistryError(file, "parties", f"the hub needs party {party_id!r} ({what})")
    return parties


# hub.domain.parties: the ids the code names, and what the code expects each to be
_NAMED_PARTIES: Mapping[str, tuple[str, Callable[[Party], bool]]] = {
    PLATFORM: ("the platform's processor, role processor", lambda p: p.has_role("processor")),
    DVZ: ("the Immigration Office, kind federal_authority", lambda p: p.kind == "federal_authority"),
    PORTAL: ("the portal, kind portal", lambda p: p.kind == "portal"),
}


def _build_flow(m: _FlowModel, file: str, parties: Mapping[str, Party],
                contracts: Mapping[str, MessageContract]) -> Flow:
    def fail(field_path: str, message: str) -> RegistryError:
        return RegistryError(file, field_path, message)

    def check_pattern(pattern: str, field_path: str) -> None:
        if not any(fnmatchcase(p, pattern) for p in parties):
            raise fail(field_path, f"{pattern!r} matches no party of parties.yaml")

    if m.id != Path(file).name.removesuffix(".yaml"):
        raise fail("id", f"flow id {m.id!r} must equal the file name (without .yaml)")
    if m.purpose not in PURPOSES:
        raise fail("purpose", f"purpose {m.purpose} is not one of Art. 10 1°–9°")
    for i, pattern in enumerate(m.controller):
        check_pattern(pattern, f"controller.{i}")
        if not any(parties[p].has_role("controller") for p in parties if fnmatchcase(p, pattern)):
            raise fail(f"controller.{i}", f"{pattern!r} matches no party with the role controller")
    if m.processor not in parties or not parties[m.processor].has_role("processor"):
        raise fail("processor", f"{m.processor!r} is not a party with the role processor")
    for i, pattern in enumerate(m.senders):
        check_pattern(pattern, f"senders.{i}")
    for i, category in enumerate(m.data_categories):
        if category not in DATA_CATEGORIES:
            raise fail(f"data_categories.{i}", f"unknown data category {category!r}")
    flow_categories = frozenset(m.data_categories)
    rules = []
    for i, r in enumerate(m.recipients):
        check_pattern(r.party, f"recipients.{i}.party")
        for j, category in enumerate(r.data_categories):
            if category not in DATA_CATEGORIES:
                raise fail(f"recipients.{i}.data_categories.{j}", f"unknown data category {category!r}")
            # With attach_dossier the recipient also receives the dossier, projected on these categories;
            # with enrich, the sources' records (social_security).
            added = m.attach_dossier or (m.enrich and category == SOCIAL_SECURITY)
            if not added and category not in flow_categories:
                raise fail(f"recipients.{i}.data_categories.{j}",
                           f"{category!r} is not among the flow's data_categories")
        _check_special_categories(m, i, r.party, r.data_categories, parties, fail)
        rules.append(RecipientRule(r.party, frozenset(r.data_categories)))
    contract = contracts.get(m.message)
    if contract is None:
        raise fail("message", f"no contract messages/{m.message}.schema.json")
    missing = contract.declared_categories - flow_categories
    if missing:
        raise fail("data_categories", f"contract {m.message!r} can carry {', '.join(sorted(missing))}: "
                                      "the flow must allow every category its contract can carry")
    state = m.dossier.state
    if state is not None and state not in STATES:
        raise fail("dossier.state", f"unknown dossier state {state!r}; known: {', '.join(STATES)}")
    if m.dossier.creates and state != "submitted":
        raise fail("dossier.state", "a flow that creates the dossier puts it in state 'submitted'")
    if m.retention not in RETENTION_RULES:
        raise fail("retention", f"unknown retention rule {m.retention!r}; known: {', '.join(sorted(RETENTION_RULES))}")
    constraints: dict[str, frozenset[Any]] = {}
    for pointer, allowed in m.payload_constraints.items():
        if not contract.has_path(pointer):
            raise fail(f"payload_constraints.{pointer}", f"no field {pointer} in contract {m.message!r}")
        constraints[pointer] = frozenset(allowed)
    _check_bound_fields(m, file, parties, contract, fail)
    if m.enrich and not (m.attach_dossier or m.dossier.creates):
        raise fail("enrich", "enrichment is about a dossier: the flow must create or forward one")
    if m.enrich and not any(SOCIAL_SECURITY in r.data_categories for r in rules):
        raise fail("enrich", "no recipient of this flow may receive social_security data")
    return Flow(
        id=m.id, title=m.title, description=m.description.strip(), legal_basis=tuple(m.legal_basis),
        purpose=m.purpose, controller=tuple(m.controller), processor=m.processor,
        data_subjects=tuple(m.data_subjects), senders=tuple(m.senders), recipients=tuple(rules),
        message=m.message, data_categories=flow_categories, attach_dossier=m.attach_dossier,
        creates_dossier=m.dossier.creates, dossier_state=state, retention=m.retention, enabled=m.enabled,
        opens_with=m.opens_with,
        source_file=file, payload_constraints=MappingProxyType(constraints), enrich=tuple(m.enrich),
    )


# A flow that creates a dossier gives it the competent region the payload names here (hub.messaging.ingress).
DOSSIER_REGION_FIELD = "/competent_region"


def _check_bound_fields(m: _FlowModel, file: str, parties: Mapping[str, Party], contract: MessageContract,
                        fail: Callable[[str, str], RegistryError]) -> None:
    """x-bound-to on this flow: every party that may send on it can be what its sender-bound fields
    hold (the hub fills them in with it), and a flow that creates a dossier takes its region from a
    field bound to dossier.region."""
    for field in contract.bound_fields:
        if field.binding != "sender":
            continue
        for i, pattern in enumerate(m.senders):
            refused = [p for p in parties if fnmatchcase(p, pattern) and not field.accepts(p)]
            if refused:
                raise fail(f"senders.{i}", f"{', '.join(sorted(refused))} may send on this flow, but contract "
                                           f"{m.message!r} does not admit it at {field.pointer} (x-bound-to: sender)")
    if m.dossier.creates and not any(f.pointer == DOSSIER_REGION_FIELD and f.binding == "dossier.region"
                                     for f in contract.bound_fields):
        raise fail("message", f"this flow creates the dossier, whose competent region is the payload's "
                              f"{DOSSIER_REGION_FIELD}: contract {m.message!r} must bind it (x-bound-to: dossier.region)")


def _check_party_fields(contracts: Mapping[str, MessageContract], parties: Mapping[str, Party]) -> None:
    """Every field that names a party (hub.domain.contracts.party_fields: by its name, its values,
    its description or its pattern) declares what it is bound to; a field bound to dossier.region
    holds the contracts' region names (REGION_PARTIES)."""
    names = set(parties) | set(REGION_PARTIES)
    for contract in contracts.values():
        for field, reason in party_fields(contract.scalar_fields, names):
            if field.binding is None:
                raise RegistryError(contract.source, field.schema_pointer,
                                    f"the field {field.pointer or '/'} names a party ({reason}) but does not say what "
                                    "it is bound to: declare x-bound-to (sender or dossier.region, contracts/README.md) "
                                    "so that the hub checks it against the authenticated sender or the dossier")
        for field in contract.bound_fields:
            if field.binding == "dossier.region":
                refused = [r for r in REGION_PARTIES if not field.accepts(r)]
                if refused:
                    raise RegistryError(contract.source, field.schema_pointer.removesuffix("/" + BOUND_KEY),
                                        f"a field bound to dossier.region holds the region's name, but "
                                        f"{', '.join(refused)} is not admitted at {field.pointer}")


def _check_special_categories(m: _FlowModel, i: int, pattern: str, categories: Sequence[str],
                              parties: Mapping[str, Party], fail: Callable[[str, str], RegistryError]) -> None:
    """Art. 15–16: health data reach only DVZ and the regions. Art. 17: an employee's criminal-record
    extract only DVZ, a self-employed person's only the regions. A flow is about the self-employed
    when one of its data subjects is (professional card)."""
    matched = [parties[p] for p in parties if fnmatchcase(p, pattern)]
    self_employed = any("self-employed" in subject for subject in m.data_subjects)
    for j, category in enumerate(categories):
        if category == "health":
            allowed, rule = {"residence", "work"}, "health data reach only DVZ and the regions (Art. 15–16)"
        elif category == "criminal_record" and self_employed:
            allowed, rule = {"work"}, "a self-employed person's criminal record reaches only the regions (Art. 17)"
        elif category == "criminal_record":
            allowed, rule = {"residence"}, "an employee's criminal record reaches only DVZ (Art. 17)"
        else:
            continue
        wrong = [p.id for p in matched if p.examines not in allowed]
        if wrong:
            raise fail(f"recipients.{i}.data_categories.{j}", f"{rule}; {pattern!r} covers {', '.join(wrong)}")


def _check_ingress(parties: Mapping[str, Party], flows: Mapping[str, Flow]) -> None:
    """A party given an ingress queue (`ingress: queue`) must be a sender on some flow: a queue it could
    only be refused on is a grant on the broker for nothing (a typo of the party, most likely)."""
    for i, party in enumerate(parties.values()):
        if party.ingress == "queue" and not any(
                fnmatchcase(party.id, s) for flow in flows.values() for s in flow.senders):
            raise RegistryError("parties.yaml", f"parties.{i}.ingress",
                                f"{party.id!r} sends on no flow: an ingress queue would only refuse")


def load_registry(contracts_dir: Path) -> Registry:
    """Load and cross-check parties, message contracts and flows under contracts_dir."""
    contracts_dir = Path(contracts_dir)
    parties = _load_parties(contracts_dir)
    contracts = load_contracts(contracts_dir / "messages")
    _check_party_fields(contracts, parties)
    flows: dict[str, Flow] = {}
    flows_dir = contracts_dir / "flows"
    if not flows_dir.is_dir():
        raise RegistryError("flows", "(file)", "the flows directory does not exist")
    stray = sorted(flows_dir.glob("*.yml"))
    if stray:
        raise RegistryError(f"flows/{stray[0].name}", "(file)", "flow files end in .yaml")
    for path in sorted(flows_dir.glob("*.yaml")):
        file = f"flows/{path.name}"
        model: _FlowModel = parse(_FlowModel, read_yaml(path, file), file)
        if model.id in flows:
            raise RegistryError(file, "id", f"duplicate flow id {model.id!r} (also in {flows[model.id].source_file})")
        flows[model.id] = _build_flow(model, file, parties, contracts)
    _check_ingress(parties, flows)
    return Registry(MappingProxyType(parties), MappingProxyType(flows), MappingProxyType(contracts))
