"""Properties of hub.identifiers (CBSS SsinType and EnterpriseNumberType check digits), by hypothesis."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub.domain.identifiers import (
    format_enterprise_number,
    is_valid_enterprise_number,
    is_valid_insz,
    make_enterprise_number,
    make_insz,
    normalise_enterprise_number,
)

births = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
serials = st.integers(min_value=1, max_value=997)
offsets = st.sampled_from([0, 20, 40])
bases = st.integers(min_value=0, max_value=19_999_999)


def _check(first9: str, born_2000_or_later: bool) -> int:
    """97 − (first 9 digits mod 97); "2" prefixed for people born in 2000 or later."""
    return 97 - int(("2" + first9) if born_2000_or_later else first9) % 97


def _one_digit_changes(value: str):
    for i, digit in enumerate(value):
        for other in "0123456789":
            if other != digit:
                yield value[:i] + other + value[i + 1:]


# --- INSZ/NISS -------------------------------------------------------------------------------------

@given(births, serials, offsets)
def test_make_insz_is_always_valid(birth, serial, offset):
    insz = make_insz(birth, serial, month_offset=offset)
    assert len(insz) == 11 and insz.isdigit() and is_valid_insz(insz)
    assert insz[:2] == f"{birth.year % 100:02d}" and insz[4:6] == f"{birth.day:02d}"
    assert int(insz[6:9]) == serial


@given(births, serials, offsets)
def test_any_single_digit_change_breaks_the_check_of_the_birth_century(birth, serial, offset):
    insz = make_insz(birth, serial, month_offset=offset)
    for changed in _one_digit_changes(insz):
        # d·10^k (|d| ≤ 9, k ≤ 10) is never a multiple of 97: the mod-97 check always sees it
        assert int(changed[9:]) != _check(changed[:9], birth.year >= 2000)
        # is_valid_insz cannot know the century, so it also accepts the other century's check;
        # a changed number passes only when it lands exactly on that one
        if is_valid_insz(changed):
            assert int(changed[9:]) == _check(changed[:9], birth.year < 2000)


@given(births, serials, offsets)
def test_post_2000_rule(birth, serial, offset):
    insz = make_insz(birth, serial, month_offset=offset)
    check = int(insz[9:])
    assert check == _check(insz[:9], birth.year >= 2000)
    # 2·10^9 mod 97 = 68: the two centuries never share a check digit
    assert check != _check(insz[:9], birth.year < 2000)


@given(births, serials, st.sampled_from([20, 40]))
def test_bis_numbers_shift_the_month(birth, serial, offset):
    bis = make_insz(birth, serial, month_offset=offset)
    regular = make_insz(birth, serial)
    assert int(bis[2:4]) == birth.month + offset and int(regular[2:4]) == birth.month
    assert 21 <= int(bis[2:4]) <= 32 or 41 <= int(bis[2:4]) <= 52
    assert is_valid_insz(bis) and bis != regular


@given(st.integers(min_value=0, max_value=99), st.integers(min_value=0, max_value=99),
       st.integers(min_value=1, max_value=31), serials, st.booleans())
def test_months_outside_the_allowed_ranges_are_refused_even_with_a_right_check(yy, month, day, serial, post2000):
    assume(month % 20 > 12 or month > 52)
    first9 = f"{yy:02d}{month:02d}{day:02d}{serial:03d}"
    assert not is_valid_insz(f"{first9}{_check(first9, post2000):02d}")


@given(births, st.integers().filter(lambda s: not 1 <= s <= 997) | st.just(0))
def test_make_insz_refuses_bad_serials(birth, serial):
    with pytest.raises(ValueError):
        make_insz(birth, serial)


@given(births, serials, st.integers(-100, 100).filter(lambda o: o not in (0, 20, 40)))
def test_make_insz_refuses_bad_offsets(birth, serial, offset):
    with pytest.raises(ValueError):
        make_insz(birth, serial, month_offset=offset)


@given(st.text(max_size=15))
def test_is_valid_insz_never_raises_and_wants_eleven_digits(text):
    assert is_valid_insz(text) in (True, False)
    if is_valid_insz(text):
        assert len(text) == 11 and text.isascii() and text.isdigit()


# --- enterprise numbers ---------------------------------------------------------------------------

@given(bases)
def test_make_enterprise_number_is_always_valid(base):
    number = make_enterprise_number(base)
    assert len(number) == 10 and number[0] in "01" and int(number[:8]) == base
    assert is_valid_enterprise_number(number)
    assert int(number[8:]) == 97 - base % 97


@given(bases)
def test_any_single_digit_change_of_an_enterprise_number_is_detected(base):
    number = make_enterprise_number(base)
    for changed in _one_digit_changes(number):
        assert not is_valid_enterprise_number(changed)


@given(bases, st.sampled_from(["{d}", "{dot}", "BE{d}", "BE {sp}", "be{dot}", " {sp} "]))
def test_normalise_and_format_round_trip(base, shape):
    number = make_enterprise_number(base)
    dotted = format_enterprise_number(number)
    assert dotted == f"{number[:4]}.{number[4:7]}.{number[7:]}"
    written = shape.format(d=number, dot=dotted, sp=dotted.replace(".", " "))
    assert normalise_enterprise_number(written) == number
    assert is_valid_enterprise_number(written)
    assert format_enterprise_number(written) == dotted
    assert format_enterprise_number(dotted) == dotted and normalise_enterprise_number(dotted) == number


@given(st.integers(min_value=0, max_value=9_999_999))
def test_nine_digit_form_gets_its_leading_zero(base):
    number = make_enterprise_number(base)
    assert number[0] == "0"
    assert normalise_enterprise_number(number[1:]) == number and is_valid_enterprise_number(number[1:])


@given(st.text(max_size=25))
def test_format_refuses_what_is_not_valid(text):
    if is_valid_enterprise_number(text):
        assert format_enterprise_number(text).count(".") == 2
    else:
        with pytest.raises(ValueError):
            format_enterprise_number(text)
