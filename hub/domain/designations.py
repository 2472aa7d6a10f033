"""Designated persons for special categories of personal data (Art. 15–17 of the protocol agreement).

Art. 16: the categories of persons with access to health data are designated with their role, the
list is kept available for the supervisory authority, they are bound to confidentiality, and
access-rights management is formally validated, documented and implemented. Art. 17: the
criminal-record extract of an employee is processed only by DVZ, a self-employed person's by the
regions, each keeping a list of the persons with access.

contracts/designations.yaml is that list. hub.registry loads and cross-checks it against the flow registry at
start-up (a wrong file stops the hub with a RegistryError naming the file and the field);
hub.domain.projection enforces it on every read (`Designations.visible`): deny by
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
from types import MappingProxyType

from hub.domain.categories import SPECIAL_CATEGORIES

__all__ = ["Designation", "PartyDesignations", "Designations"]


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
