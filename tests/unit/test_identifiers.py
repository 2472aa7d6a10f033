"""INSZ/NISS, enterprise and ONSS numbers: check digits as the CBSS publishes them."""
from __future__ import annotations

from datetime import date

import pytest

from hub.domain.identifiers import (
    format_enterprise_number,
    is_valid_enterprise_number,
    is_valid_insz,
    is_valid_onss_registration_number,
    make_enterprise_number,
    make_insz,
    normalise_enterprise_number,
)

# Worked by hand:
#   born 30 July 1985, serial 033: 850730033 mod 97 = 69 → check 97 − 69 = 28 → 85073003328
#   born 3 Feb 2001, serial 123: "2" + 010203123 = 2010203123 mod 97 = 52 → check 45 → 01020312345
#     (the pre-2000 computation, 010203123 mod 97 = 81 → 16, gives 01020312316: a person born in 1901)
#   bis number, month + 40: 854730033 mod 97 = 80 → check 17 → 85473003317
#   bis number, month + 20: 852730033 mod 97 = 26 → check 71 → 85273003371
GOOD_INSZ = ["85073003328", "01020312345", "01020312316", "85473003317", "85273003371"]


@pytest.mark.parametrize("value", GOOD_INSZ)
def test_valid_insz(value):
    assert is_valid_insz(value)


@pytest.mark.parametrize("value, why", [
    ("85073003329", "check digit off by one"),
    ("01020312346", "post-2000 check off by one"),
    ("8507300332", "10 digits"),
    ("850730033280", "12 digits"),
    ("85.07.30-033.28", "formatted, not bare digits"),
    ("8507300332a", "a letter"),
    ("８５０７３００３３２８", "full-width digits"),
    ("", "empty"),
    ("85133003300", "month 13"),
    ("85333003300", "month 33 (between bis ranges)"),
    ("85533003300", "month 53"),
    ("85073203300", "day 32"),
])
def test_invalid_insz(value, why):
    assert not is_valid_insz(value), why


def test_month_rule_rejects_even_with_a_right_checksum():
    first9 = "851330033"  # month 13
    check = 97 - int(first9) % 97
    assert not is_valid_insz(f"{first9}{check:02d}")


def test_insz_rejects_non_strings():
    assert not is_valid_insz(85073003328)  # type: ignore[arg-type]
    assert not is_valid_insz(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("birth", [date(1985, 7, 30), date(1999, 12, 31), date(2000, 1, 1), date(2007, 11, 9)])
@pytest.mark.parametrize("serial", [1, 2, 33, 996, 997])
@pytest.mark.parametrize("offset", [0, 20, 40])
def test_make_insz_is_valid(birth, serial, offset):
    insz = make_insz(birth, serial, month_offset=offset)
    assert len(insz) == 11 and is_valid_insz(insz)
    assert insz[:6] == f"{birth.year % 100:02d}{birth.month + offset:02d}{birth.day:02d}"


def test_make_insz_uses_the_2000_rule():
    assert make_insz(date(1985, 7, 30), 33) == "85073003328"
    assert make_insz(date(2001, 2, 3), 123) == "01020312345"
    assert make_insz(date(1901, 2, 3), 123) == "01020312316"


def test_make_insz_refuses_bad_input():
    with pytest.raises(ValueError):
        make_insz(date(1990, 1, 1), 0)
    with pytest.raises(ValueError):
        make_insz(date(1990, 1, 1), 998)
    with pytest.raises(ValueError):
        make_insz(date(1990, 1, 1), 5, month_offset=10)


# Worked by hand: first 8 digits 01234567; 1234567 mod 97 = 48 → check 97 − 48 = 49 → 0123456749.
#   first 8 digits 20000000 (a "2…" number): mod 97 = 55 → 42, but a number must start with 0 or 1.
@pytest.mark.parametrize("value", ["0123456749", "0123.456.749", "0123 456 749", "BE0123456749", "BE 0123.456.749",
                                   "123456749"])
def test_valid_enterprise_number(value):
    assert is_valid_enterprise_number(value)


@pytest.mark.parametrize("value, why", [
    ("0123456748", "check off by one"),
    ("2000000042", "starts with 2"),
    ("012345674", "9 digits that do not check"),
    ("01234567490", "11 digits"),
    ("0123-456-749", "dashes"),
    ("01234567a9", "a letter"),
    ("", "empty"),
    ("0" * 30, "far too long"),
])
def test_invalid_enterprise_number(value, why):
    assert not is_valid_enterprise_number(value), why


def test_normalise_and_format_enterprise_number():
    assert normalise_enterprise_number("0123.456.749") == "0123456749"
    assert normalise_enterprise_number("be 0123 456 749") == "0123456749"
    assert format_enterprise_number("0123456749") == "0123.456.749"
    with pytest.raises(ValueError):
        format_enterprise_number("0123456748")


@pytest.mark.parametrize("base", [0, 1, 1_234_567, 9_999_999, 10_000_000, 19_999_999, 4_031_500])
def test_make_enterprise_number_is_valid(base):
    number = make_enterprise_number(base)
    assert len(number) == 10 and number[0] in "01" and is_valid_enterprise_number(number)
    assert int(number[:8]) == base


def test_make_enterprise_number_example_and_limits():
    assert make_enterprise_number(1_234_567) == "0123456749"
    assert make_enterprise_number(0) == "0000000097"  # 0 mod 97 = 0 → check 97
    with pytest.raises(ValueError):
        make_enterprise_number(20_000_000)
    with pytest.raises(ValueError):
        make_enterprise_number(-1)


@pytest.mark.parametrize("value, ok", [
    ("0123456789", True), ("5112345678", True), ("1123456789", False), ("512345678", False),
    ("01234567890", False), ("50123456789", False), ("", False),
])
def test_onss_registration_number(value, ok):
    assert is_valid_onss_registration_number(value) is ok
