"""The flow registry as the hub uses it: parties, flows and their message contracts (Art. 2 §3,
8 §2, 19 of the protocol agreement, as data).

contracts/parties.yaml names the parties; contracts/flows/<id>.yaml lays down one flow each: its
purpose (Art. 10), controllers and processor, data subjects, the closed list of senders and
recipients with the data categories each recipient may receive (Art. 11), the message contract and
the dossier effect. These are the immutable shapes; hub.registry reads and cross-checks the files.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

from hub.domain.contracts import MessageContract
from hub.domain.errors import ContractViolation, UnknownFlow
from hub.domain.parties import DVZ

__all__ = [
    "PARTY_KINDS", "PARTY_ROLES", "PURPOSES", "RETENTION_RULES",
    "Party", "RecipientRule", "Flow", "Registry",
    "REGION_PARTIES", "EMPLOYMENT_SERVICES", "region_party",
]

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


# --- the public, immutable shapes ----------------------------------------------------------------

@dataclass(frozen=True)
class Party:
    id: str
    name: Mapping[str, str]
    kind: str
    roles: tuple[str, ...]
    delivery: str  # "inbox" (HTTP pull) or "queue" (its own broker queue)
    ingress: str = "none"  # "queue": it may also send on its own broker ingress queue (hub.messaging.queue_ingress)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def examines(self) -> str | None:
        """Which examination the party holds, for the special categories (Art. 15–17): DVZ examines
        residence (employees' criminal records, health), the regions work and self-employment."""
        if self.id == DVZ:
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
