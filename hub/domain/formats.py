"""The formats the message contracts use beyond JSON Schema's own: "insz" and "enterprise-number"
with their check digits, and strict "date", "date-time" and "email" (the reference validator's
checkers are switched off so that both validators check exactly these).

Dates and instants are bounded to the years FIRST_YEAR–LAST_YEAR (an instant: in UTC): the edge of
time (year 1 with a positive offset, 9999-12-31 with a negative one) cannot be converted, compared
or have a retention period added to it, so it is refused at the door rather than failing later.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone

from jsonschema import FormatChecker

from hub.domain.identifiers import is_valid_enterprise_number, is_valid_insz

__all__ = ["FIRST_YEAR", "FORMAT_CHECKER", "LAST_YEAR", "bounded_utc"]

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


FIRST_YEAR, LAST_YEAR = 1900, 2999


def bounded_utc(value: datetime) -> datetime:
    """An instant as the hub takes it anywhere (contracts, API parameters, CLI options): aware UTC
    (without an offset: UTC) within FIRST_YEAR–LAST_YEAR, or ValueError."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        value = value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError(f"a date-time between the years {FIRST_YEAR} and {LAST_YEAR} (UTC)") from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"a date-time between the years {FIRST_YEAR} and {LAST_YEAR} (UTC)")
    return value

FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("insz")
def _is_insz(instance: object) -> bool:
    return not isinstance(instance, str) or is_valid_insz(instance)


@FORMAT_CHECKER.checks("enterprise-number")
def _is_enterprise_number(instance: object) -> bool:
    return not isinstance(instance, str) or is_valid_enterprise_number(instance)


@FORMAT_CHECKER.checks("date")
def _is_date(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _DATE.fullmatch(instance):
        return False
    try:
        return FIRST_YEAR <= date.fromisoformat(instance).year <= LAST_YEAR
    except ValueError:
        return False


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _DATE_TIME.fullmatch(instance):
        return False
    try:
        bounded_utc(datetime.fromisoformat(instance[:-1] + "+00:00" if instance[-1] in "Zz" else instance))
    except ValueError:
        return False
    return True


@FORMAT_CHECKER.checks("email")
def _is_email(instance: object) -> bool:
    return not isinstance(instance, str) or (len(instance) <= 254 and _EMAIL.fullmatch(instance) is not None)
