"""Belgian identifiers the hub validates on input: INSZ/NISS, enterprise number, ONSS registration number.

Check digits as published by the Crossroads Bank for Social Security (SsinType, EnterpriseNumberType,
NssoRegistrationNumberType). Every function is pure and cheap: they run on the hot path, inside
the JSON Schema format checks of every message.
"""
from __future__ import annotations

import re
from datetime import date

__all__ = [
    "is_valid_insz",
    "is_valid_enterprise_number",
    "is_valid_onss_registration_number",
    "normalise_enterprise_number",
    "format_enterprise_number",
    "make_insz",
    "make_enterprise_number",
]

_ELEVEN_DIGITS = re.compile(r"[0-9]{11}")
_TEN_DIGITS = re.compile(r"[01][0-9]{9}")
_ONSS_NUMBER = re.compile(r"0[0-9]{9}|51[0-9]{8}")
# Bis numbers add 20 (sex unknown) or 40 (sex known) to the month; month 00 = birth month unknown.
_MONTH_OFFSETS = (0, 20, 40)


def _mod97_check(digits: str) -> int:
    return 97 - int(digits) % 97


def is_valid_insz(value: str) -> bool:
    """INSZ/NISS (Art. 12 §1 1° f): 11 digits YYMMDD + serial + check (97 − first 9 digits mod 97).

    For people born in 2000 or later the check is computed on "2" + the first 9 digits; as the
    century is not part of the number, both computations are accepted. Bis numbers carry the
    month + 20 or + 40; the month part must be 00–12, 20–32 or 40–52.
    """
    if not isinstance(value, str) or not _ELEVEN_DIGITS.fullmatch(value):
        return False
    month = int(value[2:4])
    if month % 20 > 12 or month > 52:
        return False
    if int(value[4:6]) > 31:
        return False
    check = int(value[9:])
    return check == _mod97_check(value[:9]) or check == _mod97_check("2" + value[:9])


def normalise_enterprise_number(value: str) -> str:
    """The enterprise number as 10 bare digits: drops dots, spaces and a "BE" (VAT) prefix.

    "0123.456.749", "BE 0123 456 749" and "0123456749" all give "0123456749". A 9-digit number
    (the form used before 2010) gets its leading 0. The result is not checked: see
    is_valid_enterprise_number.
    """
    compact = re.sub(r"[\s.]", "", value)
    if compact[:2].upper() == "BE":
        compact = compact[2:]
    if len(compact) == 9 and compact.isascii() and compact.isdigit():
        compact = "0" + compact
    return compact


def is_valid_enterprise_number(value: str) -> bool:
    """Enterprise number (KBO/BCE, Art. 13 §1 3°): 10 digits starting 0 or 1, check = 97 − (first 8 mod 97)."""
    if not isinstance(value, str) or len(value) > 20:
        return False
    digits = normalise_enterprise_number(value)
    if not _TEN_DIGITS.fullmatch(digits):
        return False
    return int(digits[8:]) == _mod97_check(digits[:8])


def format_enterprise_number(value: str) -> str:
    """The dotted form "0123.456.749" of a valid enterprise number."""
    digits = normalise_enterprise_number(value)
    if not is_valid_enterprise_number(digits):
        raise ValueError("not a valid enterprise number")
    return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"


def is_valid_onss_registration_number(value: str) -> bool:
    """ONSS registration number (Art. 13 §1 3°): 10 digits, "0…" or "51…" (51 = provisional)."""
    return isinstance(value, str) and _ONSS_NUMBER.fullmatch(value) is not None


def make_insz(birth: date, serial: int, *, month_offset: int = 0) -> str:
    """A valid INSZ for a synthetic person born on `birth` (serial 1–997: odd for men, even for women).

    month_offset 20 or 40 makes a bis number. Used by tests and the demo, never for real people.
    """
    if not 1 <= serial <= 997:
        raise ValueError("serial must be between 1 and 997")
    if month_offset not in _MONTH_OFFSETS:
        raise ValueError("month_offset must be 0, 20 or 40")
    first9 = f"{birth.year % 100:02d}{birth.month + month_offset:02d}{birth.day:02d}{serial:03d}"
    check = _mod97_check(("2" + first9) if birth.year >= 2000 else first9)
    return f"{first9}{check:02d}"


def make_enterprise_number(base: int) -> str:
    """A valid enterprise number (10 bare digits) whose first 8 digits are `base` (0 ≤ base ≤ 19 999 999).

    Example: base 1234567 → "01234567" → 1234567 mod 97 = 48 → check 49 → "0123456749".
    """
    if not 0 <= base <= 19_999_999:
        raise ValueError("base must be between 0 and 19999999 (8 digits starting with 0 or 1)")
    first8 = f"{base:08d}"
    return f"{first8}{_mod97_check(first8):02d}"
