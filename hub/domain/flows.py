"""The flow registry: the protocol agreement (Art. 2 §3, 8 §2, 19) as data.

contracts/parties.yaml names the parties; contracts/flows/<id>.yaml lays down one flow each: its
purpose (Art. 10), controllers and processor, data subjects, the closed list of senders and
recipients with the data categories each recipient may receive (Art. 11), the message contract and
the dossier effect. Everything is checked at start-up; a wrong file stops the hub with a
RegistryError naming the file and the field.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

from hub.domain.contracts import DATA_CATEGORIES, MessageContract, load_contracts
from hub.domain.errors import ContractViolation, RegistryError, UnknownFlow
from hub.domain.dossier import STATES

__all__ = [
    "DOSSIER_STATES", "PARTY_KINDS", "PARTY_ROLES", "PURPOSES", "RETENTION_RULES",
    "Party", "RecipientRule", "Flow", "Registry", "load_registry", "default_contracts_dir",
    "REGION_PARTIES", "EMPLOYMENT_SERVICES", "region_party",
]

DOSSIER_STATES: tuple[str, ...] = STATES   # hub/dossier.py: the state machine
PARTY_KINDS = frozenset({
    "federal_authority", "regional_authority", "social_security_institution", "portal", "diplomatic_post",
    "local_authority", "inspection_service", "public_employment_service", "onss_internal",
})
PARTY_ROLES = frozenset({
    "controller", "competent_authority", "processor", "source", "portal", "recipient", "inspection",
    "public_employment_service", "security_officer",
})
# Art. 10 1°–9°.
PURPOSES: Mapping[int, str] = MappingProxyType({
    1: "EU obligations on economic migration (single application procedure)",
    2: "register the applications",
    3: "exchange data, documents and decisions between the competent services",
    4: "process applications for residence for work of more than 90 days",
    5: "share communications and notifications with workers, employers, self-employed and their mandataries",
    6: "follow up the residence and the work or self-employed activity of applicants",
    7: "control and supervision",
    8: "prevent, detect, prosecute and punish infringements of social law",
    9: "communicate withdrawals of a single permit to public employment services",
})
# dossier: kept with the dossier under the Art. 27 terms; transit: only until delivered and acknowledged.
RETENTION_RULES = frozenset({"dossier", "transit"})

# The contracts' competent_region value → the regional authority (Art. 9 §4–§7) and its public
# employment service (Art. 10 9°). Party ids use hyphens, contract enums underscores.
REGION_PARTIES: Mapping[str, str] = MappingProxyType({
    "flanders": "region.flanders", "wallonia": "region.wallonia", "brussels": "region.brussels",
    "german_speaking": "region.german-speaking",
})
EMPLOYMENT_SERVICES: Mapping[str, str] = MappingProxyType({
    "flanders": "pes.vdab", "wallonia": "pes.forem", "brussels": "pes.actiris", "german_speaking": "pes.adg",
})


def region_party(competent_region: str) -> str:
    """The party id of the regional authority named by a payload's competent_region."""
    try:
        return REGION_PARTIES[competent_region]
    except KeyError:
        raise ValueError(f"unknown competent region {str(competent_region)[:40]!r}") from None


_PARTY_ID = r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$"
_PATTERN = r"^[a-z*?][a-z0-9*?-]*(\.[a-z*?][a-z0-9*?-]*)*$"


# --- the public, immutable shapes ----------------------------------------------------------------

@dataclass(frozen=True)
class Party:
    id: str
    name: Mapping[str, str]
    kind: str
    roles: tuple[str, ...]
    delivery: str  # "inbox" (HTTP pull) or "queue" (its own broker queue)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def examines(self) -> str | None:
        """Which examination the party holds, for the special categories (Art. 15–17): DVZ examines
        residence (employees' criminal records, health), the regions work and self-employment."""
        if self.id == "dvz":
            return "residence"
        return "work" if self.kind == "regional_authority" else None


@dataclass(frozen=True)
class RecipientRule:
    """A recipient pattern and the categories it needs to know (Art. 11)."""

    party: str
    data_categories: frozenset[str]

    def matches(self, party_id: str) -> bool:
        return fnmatchcase(party_id, self.party)


@dataclass(frozen=True)
class Flow:
    id: str
    title: str
    description: str
    legal_basis: tuple[str, ...]
    purpose: int
    controller: tuple[str, ...]
    processor: str
    data_subjects: tuple[str, ...]
    senders: tuple[str, ...]
    recipients: tuple[RecipientRule, ...]
    message: str
    data_categories: frozenset[str]
    attach_dossier: bool
    creates_dossier: bool
    dossier_state: str | None
    retention: str
    enabled: bool
    source_file: str
    # JSON pointer → the values the flow accepts there (e.g. /application_kind), on top of the contract.
    payload_constraints: Mapping[str, frozenset[Any]] = field(default_factory=lambda: MappingProxyType({}))
    # Art. 14: the sources whose data the hub adds (content enricher) before delivering the message
    enrich: tuple[str, ...] = ()
    # Art. 34, 36: a procedure whose flows open on a configured date (settings), e.g. professional_card
    opens_with: str | None = None

    def allows_sender(self, party_id: str) -> bool:
        return any(fnmatchcase(party_id, pattern) for pattern in self.senders)

    def recipient_rule(self, party_id: str) -> RecipientRule | None:
        """The first rule whose pattern matches party_id, or None: that party may not receive."""
        for rule in self.recipients:
            if rule.matches(party_id):
                return rule
        return None

    def check_payload(self, payload: Any) -> None:
        """The flow's own constraints (e.g. only professional-card applications on that flow)."""
        problems = []
        for pointer, allowed in self.payload_constraints.items():
            value = _at(payload, pointer)
            if value is _MISSING or isinstance(value, (dict, list)) or value not in allowed:
                problems.append({"path": pointer, "rule": "flow",
                                 "message": f"flow {self.id} accepts only: {', '.join(sorted(map(str, allowed)))}"})
        if problems:
            raise ContractViolation(problems)


@dataclass(frozen=True)
class Registry:
    parties: Mapping[str, Party]
    flows: Mapping[str, Flow]
    contracts: Mapping[str, MessageContract]

    def flow(self, flow_id: str) -> Flow:
        try:
            return self.flows[flow_id]
        except (KeyError, TypeError):
            raise UnknownFlow(f"no flow {str(flow_id)[:100]!r} in the protocol agreement") from None

    def contract_for(self, flow: Flow) -> MessageContract:
        return self.contracts[flow.message]

    def parties_matching(self, pattern: str) -> list[str]:
        return sorted(p for p in self.parties if fnmatchcase(p, pattern))

    def check_message(self, flow: Flow, payload: Any) -> set[str]:
        """Validate a payload for a flow: contract, flow constraints, categories; returns its categories.

        Raises ContractViolation. A field of a category outside the flow's is refused (Art. 11).
        """
        contract = self.contract_for(flow)
        contract.validate(payload)
        flow.check_payload(payload)
        categories = contract.categories(payload)
        outside = categories - flow.data_categories
        if outside:
            raise ContractViolation([{"path": "", "rule": "data_category",
                                      "message": f"categories not allowed on flow {flow.id}: {', '.join(sorted(outside))}"}])
        return categories


_MISSING = object()


def _at(payload: Any, pointer: str) -> Any:
    value = payload
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(value, dict) or token not in value:
            return _MISSING
        value = value[token]
    return value


# --- file models (pydantic) ----------------------------------------------------------------------

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PartyModel(_Model):
    id: str = Field(pattern=_PARTY_ID, max_length=64)
    name: dict[str, str] = Field(min_length=1)
    kind: str
    roles: list[str] = Field(min_length=1)
    delivery: Literal["inbox", "queue"] = "inbox"

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


class _PartiesFile(_Model):
    parties: list[_PartyModel] = Field(min_length=1)


class _RecipientModel(_Model):
    party: str = Field(pattern=_PATTERN)
    data_categories: list[str]


class _DossierModel(_Model):
    creates: StrictBool = False
    state: str | None = None


class _FlowModel(_Model):
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


def _field_of(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(file)"


def _parse(model: type[BaseModel], data: Any, file: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RegistryError(file, _field_of(first), first["msg"] + more) from None


def _read_yaml(path: Path, file: str) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(file, "(file)", f"not readable YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(file, "(file)", "expected a mapping at the top level")
    return data


# --- loading and cross-checks --------------------------------------------------------------------

def default_contracts_dir() -> Path:
    """The repository's contracts/ directory."""
    return Path(__file__).resolve().parents[2] / "contracts"


def _load_parties(contracts_dir: Path) -> dict[str, Party]:
    file = "parties.yaml"
    parsed: _PartiesFile = _parse(_PartiesFile, _read_yaml(contracts_dir / file, file), file)
    parties: dict[str, Party] = {}
    for i, p in enumerate(parsed.parties):
        if p.id in parties:
            raise RegistryError(file, f"parties.{i}.id", f"duplicate party id {p.id!r}")
        parties[p.id] = Party(p.id, MappingProxyType(dict(p.name)), p.kind, tuple(p.roles), p.delivery)
    return parties


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
            added = m.attach_dossier or (m.enrich and category == "social_security")
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
    if state is not None and state not in DOSSIER_STATES:
        raise fail("dossier.state", f"unknown dossier state {state!r}; known: {', '.join(DOSSIER_STATES)}")
    if m.dossier.creates and state != "submitted":
        raise fail("dossier.state", "a flow that creates the dossier puts it in state 'submitted'")
    if m.retention not in RETENTION_RULES:
        raise fail("retention", f"unknown retention rule {m.retention!r}; known: {', '.join(sorted(RETENTION_RULES))}")
    constraints: dict[str, frozenset[Any]] = {}
    for pointer, allowed in m.payload_constraints.items():
        if not contract.has_path(pointer):
            raise fail(f"payload_constraints.{pointer}", f"no field {pointer} in contract {m.message!r}")
        constraints[pointer] = frozenset(allowed)
    if m.enrich and not (m.attach_dossier or m.dossier.creates):
        raise fail("enrich", "enrichment is about a dossier: the flow must create or forward one")
    if m.enrich and not any("social_security" in r.data_categories for r in rules):
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


def load_registry(contracts_dir: Path) -> Registry:
    """Load and cross-check parties, message contracts and flows under contracts_dir."""
    contracts_dir = Path(contracts_dir)
    parties = _load_parties(contracts_dir)
    contracts = load_contracts(contracts_dir / "messages")
    flows: dict[str, Flow] = {}
    flows_dir = contracts_dir / "flows"
    if not flows_dir.is_dir():
        raise RegistryError("flows", "(file)", "the flows directory does not exist")
    stray = sorted(flows_dir.glob("*.yml"))
    if stray:
        raise RegistryError(f"flows/{stray[0].name}", "(file)", "flow files end in .yaml")
    for path in sorted(flows_dir.glob("*.yaml")):
        file = f"flows/{path.name}"
        model: _FlowModel = _parse(_FlowModel, _read_yaml(path, file), file)
        if model.id in flows:
            raise RegistryError(file, "id", f"duplicate flow id {model.id!r} (also in {flows[model.id].source_file})")
        flows[model.id] = _build_flow(model, file, parties, contracts)
    return Registry(MappingProxyType(parties), MappingProxyType(flows), MappingProxyType(contracts))
