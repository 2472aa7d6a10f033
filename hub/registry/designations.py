"""Loading contracts/designations.yaml, the list of persons designated for health data and criminal
records (Art. 16–17), cross-checked against the parties at start-up."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from types import MappingProxyType

from pydantic import Field, StrictBool, field_validator

from hub.domain.categories import DATA_CATEGORIES, SPECIAL_CATEGORIES
from hub.domain.designations import Designation, Designations, PartyDesignations
from hub.domain.errors import RegistryError
from hub.domain.flows import Registry
from hub.registry.files import FileModel, parse, read_yaml

__all__ = ["FILE", "load_designations"]

FILE = "designations.yaml"
_PERSON = r"^[A-Za-z0-9._:@-]{1,128}$"   # the acting person of an access token (hub.infra.auth)


class _PersonModel(FileModel):
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


class _PartyModel(FileModel):
    systems: StrictBool = False
    persons: list[_PersonModel] = Field(default_factory=list)


class _File(FileModel):
    designations: dict[str, _PartyModel]


def load_designations(contracts_dir: Path, registry: Registry) -> Designations:
    """Load contracts/designations.yaml and cross-check it against the parties (start-up, Art. 16)."""
    path = Path(contracts_dir) / FILE
    if not path.is_file():
        raise RegistryError(FILE, "(file)", "the list of designated persons (Art. 16–17) does not exist")
    parsed: _File = parse(_File, read_yaml(path, FILE), FILE)
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
