"""Designated persons for special categories of personal data (Art. 15–17 of the protocol agreement).

Art. 16: the categories of persons with access to health data are designated with their role, the
list is kept available for the supervisory authority, they are bound to confidentiality, and
access-rights management is formally validated, documented and implemented. Art. 17: the
criminal-record extract of an employee is processed only by DVZ, a self-employed person's by the
regions, each keeping a list of the persons with access.

contracts/designations.yaml is that list. It is loaded and cross-checked against the flow registry
at start-up (a wrong file stops the hub with a RegistryError naming the file and the field), and it
is enforced on every read of an inbox or a dossier (`Designations.visible`, `redact`): deny by
default, a caller sees a special category only if

* its token names an acting person designated for that category at that party, or
* its token names no person (the party's back-office system) and the party has `systems: true`;
  the back office is then accountable for restricting the data to its designated persons.

Which special categories a party receives at all stays decided by the flow rules (Art. 11).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from hub.domain.contracts import DATA_CATEGORIES
from hub.messaging.enrichment import CATEGORY as ENRICHMENT_CATEGORY
from hub.domain.errors import RegistryError
from hub.domain.flows import Registry, _parse, _read_yaml

__all__ = ["FILE", "SPECIAL_CATEGORIES", "Designation", "PartyDesignations", "Designations",
           "load_designations", "redact"]

FILE = "designations.yaml"
# Art. 15 (health) and Art. 17 (criminal convictions): the categories that need a designation.
SPECIAL_CATEGORIES: frozenset[str] = frozenset({"health", "criminal_record"})
ENRICHMENT = "enrichment"            # the attachment name of the sources' records (hub/routing.py)
_PERSON = r"^[A-Za-z0-9._:@-]{1,128}$"   # the acting person of an access token (hub/auth.py)


@dataclass(frozen=True)
class Designation:
    """One designated person (Art. 16): who, in which role, for what, validated by whom and when."""

    party: str
    person: str
    role: str
    categories: tuple[str, ...]
    designated_by: str
    designated_on: date
    confidentiality: bool


@dataclass(frozen=True)
class PartyDesignations:
    party: str
    systems: bool
    persons: Mapping[str, Designation]


@dataclass(frozen=True)
class Designations:
    """The designations of every party; empty means nobody sees any special category."""

    parties: Mapping[str, PartyDesignations] = field(default_factory=lambda: MappingProxyType({}))

    def visible(self, party: str, acting_person: str | None) -> frozenset[str]:
        """The special categories this caller may see (Art. 16, 17); deny by default."""
        entry = self.parties.get(party)
        if entry is None:
            return frozenset()
        if acting_person is None:
            return SPECIAL_CATEGORIES if entry.systems else frozenset()
        designation = entry.persons.get(acting_person)
        return frozenset(designation.categories) if designation else frozenset()

    def listing(self) -> list[Designation]:
        """The list kept for the supervisory authority, by party then person."""
        return [d for p in sorted(self.parties) for _, d in sorted(self.parties[p].persons.items())]


# --- the file ----------------------------------------------------------------------------------------

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PersonModel(_Model):
    person: str = Field(pattern=_PERSON)
    role: str = Field(min_length=1, max_length=200)
    categories: list[str] = Field(min_length=1)
    designated_by: str = Field(min_length=1, max_length=200)
    designated_on: date
    confidentiality: StrictBool

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        for category in value:
            if category not in SPECIAL_CATEGORIES:
                known = "known data category" if category in DATA_CATEGORIES else "unknown data category"
                raise ValueError(f"{known} {category!r} needs no designation; only: "
                                 f"{', '.join(sorted(SPECIAL_CATEGORIES))}")
        if len(set(value)) != len(value):
            raise ValueError("a category is listed twice")
        return value

    @field_validator("confidentiality")
    @classmethod
    def _bound(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("a designated person must be bound to confidentiality (Art. 16)")
        return value

    @field_validator("designated_on")
    @classmethod
    def _not_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("a designation cannot be validated in the future")
        return value


class _PartyModel(_Model):
    systems: StrictBool = False
    persons: list[_PersonModel] = Field(default_factory=list)


class _File(_Model):
    designations: dict[str, _PartyModel]


def load_designations(contracts_dir: Path, registry: Registry) -> Designations:
    """Load contracts/designations.yaml and cross-check it against the parties (start-up, Art. 16)."""
    path = Path(contracts_dir) / FILE
    if not path.is_file():
        raise RegistryError(FILE, "(file)", "the list of designated persons (Art. 16–17) does not exist")
    parsed: _File = _parse(_File, _read_yaml(path, FILE), FILE)
    parties: dict[str, PartyDesignations] = {}
    for party_id, entry in parsed.designations.items():
        where = f"designations.{party_id}"
        if party_id not in registry.parties:
            raise RegistryError(FILE, where, f"unknown party {party_id!r}: not in parties.yaml")
        if registry.parties[party_id].examines is None:   # Art. 15–17: DVZ and the regions only
            raise RegistryError(FILE, where, f"party {party_id!r} may hold no designation: only DVZ and the "
                                             "regional authorities process health data or criminal records "
                                             "(Art. 15–17)")
        persons: dict[str, Designation] = {}
        for i, p in enumerate(entry.persons):
            if p.person in persons:
                raise RegistryError(FILE, f"{where}.persons.{i}.person", f"person {p.person!r} is listed twice")
            persons[p.person] = Designation(party_id, p.person, p.role.strip(), tuple(sorted(p.categories)),
                                            p.designated_by.strip(), p.designated_on, p.confidentiality)
        parties[party_id] = PartyDesignations(party_id, entry.systems, MappingProxyType(persons))
    return Designations(MappingProxyType(parties))


# --- enforcement on read -------------------------------------------------------------------------------

def redact(registry: Registry, row: Mapping[str, Any], visible: frozenset[str]) -> tuple[dict[str, Any], set[str]]:
    """A delivery row as the caller may see it: payload and attachments projected again without the
    special categories it may not see (Art. 16–17). Returns the row (categories actually returned)
    and the withheld categories. A row of a flow no longer in the registry is emptied (deny)."""
    held = set(row["data_categories"] or ())
    withheld = (held & SPECIAL_CATEGORIES) - visible
    if not withheld:
        return dict(row), set()
    allowed = DATA_CATEGORIES - withheld
    flow = registry.flows.get(row["flow_id"])
    if flow is None:
        out = {**row, "payload": {}, "attachments": None, "data_categories": []}
        return out, withheld
    contract = registry.contract_for(flow)
    payload = contract.project(row["payload"] or {}, allowed)
    categories = contract.categories(payload)
    attachments: dict[str, Any] = {}
    for name, value in (row["attachments"] or {}).items():
        if name == "application":   # the forwarded dossier (hub/routing.py Router._projections)
            application = registry.contracts["application"]
            attachments[name] = application.project(value, allowed)
            categories |= application.categories(attachments[name])
        elif name == ENRICHMENT:    # the sources' records (Art. 14): social_security only
            attachments[name] = value
            categories.add(ENRICHMENT_CATEGORY)
        # any other attachment has no contract to project it with: withheld with the category (deny)
    out = {**row, "payload": payload, "attachments": attachments or None,
           "data_categories": sorted(categories & held)}
    return out, withheld
