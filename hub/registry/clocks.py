"""Loading contracts/clocks.yaml, the statutory clock rules, cross-checked against the parties and
flows at start-up (Law of 15 December 1980, 61/27-4, 61/27-5, 61/29-4, 61/29-5)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import Field, StrictBool, StrictInt

from hub.domain.clocks import DEEMED_FLOW, REGION, REMINDER_FLOW, Calendar, ClockRule, ClockRules
from hub.domain.errors import RegistryError
from hub.domain.flows import REGION_PARTIES, Registry
from hub.registry.files import FileModel, parse, read_yaml

__all__ = ["FILE", "load_clocks"]

FILE = "clocks.yaml"
_ID = r"^[a-z0-9][a-z0-9._-]*$"     # the `clock` field of the messages
_FIELD = r"^[a-z][a-z0-9_]*$"
StartColumn = Literal["complete_at", "incomplete_since"]


class _AppliesTo(FileModel):
    categories: list[str] = Field(min_length=1)
    application_kinds: list[Literal["single_permit", "work_permit", "professional_card"]] | None = None
    request_types: list[Literal["first", "renewal", "change"]] = Field(min_length=1)
    application: dict[str, StrictBool] = Field(default_factory=dict)


class _Rule(FileModel):
    id: str = Field(pattern=_ID, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    legal_basis: list[str] = Field(min_length=1)
    applies_to: _AppliesTo
    starts: StartColumn
    after: StartColumn | None = None
    stops: dict[Literal["decided", "refused", "supplied"], Literal["met", "overtaken"]] = Field(min_length=1)
    days: StrictInt = Field(ge=1, le=3650)
    next_working_day: StrictBool
    extendable: StrictBool
    holder: str = Field(min_length=1, max_length=64)
    remind_days_before: StrictInt | None = Field(ge=0, le=3650)
    on_expiry: Literal["report", "deemed_authorisation"]


class _Calendar(FileModel):
    timezone: str = Field(min_length=1)
    public_holidays: str = Field(pattern=r"^[A-Z]{2}$")


class _File(FileModel):
    calendar: _Calendar
    application_fields: dict[str, str] = Field(default_factory=dict)
    rules: list[_Rule] = Field(min_length=1)


def load_clocks(contracts_dir: Path, registry: Registry | None) -> ClockRules:
    """Load contracts/clocks.yaml and cross-check it against the parties and flows (start-up).

    Without a registry the cross-checks are skipped: for readers (`clocks due`) of a file the hub
    checked when it started."""
    path = Path(contracts_dir) / FILE
    if not path.is_file():
        raise RegistryError(FILE, "(file)", "the statutory clock rules do not exist")
    parsed: _File = parse(_File, read_yaml(path, FILE), FILE)
    calendar = _calendar(parsed.calendar)
    for name in parsed.application_fields:
        if not _matches(_FIELD, name):
            raise RegistryError(FILE, f"application_fields.{name}", "a field name is lower_snake_case")
    rules: dict[str, ClockRule] = {}
    for i, m in enumerate(parsed.rules):
        rule = _rule(m, f"rules.{i}", parsed.application_fields, registry)
        if rule.id in rules:
            raise RegistryError(FILE, f"rules.{i}.id", f"duplicate rule id {rule.id!r}")
        for other in rules.values():
            if _overlap(rule, other):
                raise RegistryError(FILE, f"rules.{i}.applies_to",
                                    f"overlaps rule {other.id!r}: a dossier would run two clocks started "
                                    f"by {rule.starts}")
        rules[rule.id] = rule
    return ClockRules(MappingProxyType(rules), calendar, MappingProxyType(dict(parsed.application_fields)))


def _calendar(m: _Calendar) -> Calendar:
    try:
        ZoneInfo(m.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RegistryError(FILE, "calendar.timezone", f"unknown time zone {m.timezone!r}") from None
    try:
        holidays.country_holidays(m.public_holidays)
    except NotImplementedError:
        raise RegistryError(FILE, "calendar.public_holidays",
                            f"no public holidays known for country {m.public_holidays!r}") from None
    return Calendar(m.timezone, m.public_holidays)


def _rule(m: _Rule, where: str, fields: Mapping[str, str], registry: Registry | None) -> ClockRule:
    def fail(path: str, message: str) -> RegistryError:
        return RegistryError(FILE, f"{where}.{path}", message)

    categories = registry.contracts["application"].schema["properties"]["category"]["enum"] \
        if registry is not None and "application" in registry.contracts else None
    for j, category in enumerate(m.applies_to.categories):
        if categories is not None and category not in categories:
            raise fail(f"applies_to.categories.{j}", f"unknown category {category!r}: not in the application contract")
    for name in m.applies_to.application:
        if name not in fields:
            raise fail(f"applies_to.application.{name}",
                       f"{name!r} is not among application_fields (the fields the rules may read)")
    if m.after is not None and m.after == m.starts:
        raise fail("after", "a clock cannot wait for the date that starts it")
    if "supplied" in m.stops and m.starts != "incomplete_since":
        raise fail("stops.supplied", "only a clock started by incomplete_since stops when documents are supplied")
    if m.remind_days_before is not None and m.remind_days_before >= m.days:
        raise fail("remind_days_before", f"a reminder {m.remind_days_before} days before a {m.days}-day deadline "
                                         "would come before the clock starts")
    if m.on_expiry == "deemed_authorisation":
        if m.extendable:
            raise fail("extendable", "a deadline whose expiry deems the permit authorised is never extended "
                                     "(61/27-4 §2)")
        if m.starts != "complete_at" or not {"decided", "refused"} <= set(m.stops):
            raise fail("on_expiry", "a deemed authorisation follows a decision deadline: starts complete_at, "
                                    "stops when decided and when a part is refused")
    if registry is not None:
        if m.on_expiry == "deemed_authorisation" and DEEMED_FLOW not in registry.flows:
            raise fail("on_expiry", f"flow {DEEMED_FLOW} is not in the registry")
        if m.remind_days_before is not None and REMINDER_FLOW not in registry.flows:
            raise fail("remind_days_before", f"flow {REMINDER_FLOW} is not in the registry")
        _check_holder(m.holder, fail, registry)
    kinds = frozenset(m.applies_to.application_kinds) if m.applies_to.application_kinds is not None else None
    return ClockRule(
        id=m.id, title=m.title.strip(), legal_basis=tuple(m.legal_basis),
        categories=frozenset(m.applies_to.categories), application_kinds=kinds,
        request_types=frozenset(m.applies_to.request_types),
        application=MappingProxyType(dict(m.applies_to.application)), starts=m.starts, after=m.after,
        stops=MappingProxyType(dict(m.stops)), days=m.days, next_working_day=m.next_working_day,
        extendable=m.extendable, holder=m.holder, remind_days_before=m.remind_days_before,
        on_expiry=m.on_expiry)


def _check_holder(holder: str, fail, registry: Registry) -> None:
    """The holder must be a party that can be reminded: DVZ, a region, or another recipient of the
    reminder flow."""
    parties = list(REGION_PARTIES.values()) if holder == REGION else [holder]
    for party in parties:
        if party not in registry.parties:
            raise fail("holder", f"unknown party {party!r}: not in parties.yaml")
        flow = registry.flows.get(REMINDER_FLOW)
        if flow is not None and flow.recipient_rule(party) is None:
            raise fail("holder", f"{party!r} may not receive {REMINDER_FLOW}")


def _overlap(a: ClockRule, b: ClockRule) -> bool:
    """Two rules started by the same date whose dossiers can coincide (predicates: absent = false)."""
    if a.starts != b.starts or not (a.categories & b.categories) or not (a.request_types & b.request_types):
        return False
    if a.application_kinds is not None and b.application_kinds is not None \
            and not (a.application_kinds & b.application_kinds):
        return False
    return all(a.application[k] == b.application[k] for k in a.application.keys() & b.application.keys())


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None
