"""The formats the message contracts use beyond JSON Schema's own: "insz" and "enterprise-number"
with their check digits, and strict "date", "date-time" and "email" (the reference validator's
checkers are switched off so that both validators check exactly these).
"""
from __future__ import annotations

import re
from datetime import date, datetime

from jsonschema import FormatChecker

from hub.domain.identifiers import is_valid_enterprise_number, is_valid_insz

__all__ = ["FORMAT_CHECKER"]

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


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
        date.fromisoformat(instance)
    except ValueError:
        return False
    return True


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _DATE_TIME.fullmatch(instance):
        return False
    try:
        datetime.fromisoformat(instance[:-1] + "+00:00" if instance[-1] in "Zz" else instance)
    except ValueError:
        return False
    return True


@FORMAT_CHECKER.checks("email")
def _is_email(instance: object) -> bool:
    return not isinstance(instance, str) or (len(instance) <= 254 and _EMAIL.fullmatch(instance) is not None)
