"""The statutory clocks as data (contracts/clocks.yaml) and the due-date arithmetic on Belgian
calendar days.

Law of 15 December 1980 as amended in 2019 (seeds/002): Blue Card 61/27-4, 61/27-5; seasonal
workers 61/29-4, 61/29-5. The rules are data; this module only represents them and counts days
(hub.registry loads and checks the file, hub.lifecycle.clocks runs the clocks).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from hub.domain.envelope import as_utc
from hub.domain.flows import REGION_PARTIES

__all__ = ["REMINDER_FLOW", "DEEMED_FLOW", "REQUEST_TYPES", "REGION", "Calendar", "ClockRule", "ClockRules",
           "describe"]

REMINDER_FLOW = "platform.clock-reminder"
DEEMED_FLOW = "single-permit.deemed-authorisation"
REQUEST_TYPES = ("first", "renewal", "change")
REGION = "region"   # the holder that stands for the dossier's competent regional authority


# --- the calendar ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Calendar:
    """Belgian calendar days: a due day ends at 23:59:59 local time (Judicial Code Art. 52–53)."""

    timezone: str
    public_holidays: str

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays(self.public_holidays)

    def local_date(self, t: datetime) -> date:
        return as_utc(t).astimezone(self.zone).date()

    def is_working_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def due_date(self, start: datetime, days: int, next_working_day: bool) -> date:
        """The last day of a term of `days` calendar days: the start day is not counted (Art. 52),
        and with next_working_day a Saturday, Sunday or public holiday moves on (Art. 53)."""
        d = self.local_date(start) + timedelta(days=days)
        while next_working_day and not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def end_of(self, d: date) -> datetime:
        """The last second of a local day, in UTC: the instant a term ending that day has passed."""
        return datetime.combine(d, time(23, 59, 59), self.zone).astimezone(timezone.utc)

    def start_of(self, d: date) -> datetime:
        return datetime.combine(d, time(0, 0), self.zone).astimezone(timezone.utc)

    def days_left(self, due_at: datetime, now: datetime) -> int:
        """Calendar days from today to the due day (0 on the day itself, negative once passed)."""
        return (self.local_date(due_at) - self.local_date(now)).days


# --- the rules -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClockRule:
    id: str
    title: str
    legal_basis: tuple[str, ...]
    categories: frozenset[str]
    application_kinds: frozenset[str] | None      # None: any
    request_types: frozenset[str]
    application: Mapping[str, bool]               # boolean predicates on the application JSON
    starts: str                                   # a dossiers date column
    after: str | None
    stops: Mapping[str, str]                      # condition → outcome, first match wins
    days: int
    next_working_day: bool
    extendable: bool
    holder: str                                   # "region" or a party id
    remind_days_before: int | None
    on_expiry: str                                # report | deemed_authorisation

    @property
    def legal_basis_text(self) -> str:
        return "; ".join(self.legal_basis)[:200]

    def matches(self, category: str, application_kind: str, request_type: str, fields: Mapping[str, bool],
                dates: Mapping[str, Any]) -> bool:
        """Whether a dossier is one this rule applies to (its start date is set)."""
        if category not in self.categories or request_type not in self.request_types:
            return False
        if self.application_kinds is not None and application_kind not in self.application_kinds:
            return False
        if any(fields.get(name, False) != value for name, value in self.application.items()):
            return False
        if self.after is not None:
            after, start = dates.get(self.after), dates.get(self.starts)
            if after is None or start is None or as_utc(after) > as_utc(start):
                return False
        return True

    def holder_for(self, competent_region: str) -> str:
        """The party that holds this clock on a dossier (dossiers.competent_region is a party id)."""
        if self.holder != REGION:
            return self.holder
        return REGION_PARTIES.get(competent_region, competent_region)


@dataclass(frozen=True)
class ClockRules:
    rules: Mapping[str, ClockRule]
    calendar: Calendar
    application_fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __iter__(self):
        return iter(self.rules.values())

    def get(self, rule_id: str) -> ClockRule | None:
        return self.rules.get(rule_id)

    def schedule(self, rule: ClockRule, started_at: datetime) -> tuple[datetime, datetime | None]:
        """(due_at, remind_at) of a clock of `rule` started at `started_at`."""
        due_day = self.calendar.due_date(started_at, rule.days, rule.next_working_day)
        due_at = self.calendar.end_of(due_day)
        if rule.remind_days_before is None:
            return due_at, None
        remind_at = self.calendar.start_of(due_day - timedelta(days=rule.remind_days_before))
        return due_at, max(remind_at, as_utc(started_at))


def describe(rule: ClockRule) -> dict[str, Any]:
    """A rule as JSON (CLI, API)."""
    return {"id": rule.id, "title": rule.title, "legal_basis": list(rule.legal_basis), "days": rule.days,
            "holder": rule.holder, "on_expiry": rule.on_expiry, "extendable": rule.extendable}
