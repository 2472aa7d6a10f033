"""INASTI SelfEmployed v2 adapter, property tests: the mapping is valid and lossless for every
synthetic self-employed person, and the published SsinType accepts exactly the valid INSZ."""
from __future__ import annotations

from datetime import date, datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from zeep.helpers import serialize_object

from adapters.inasti import contract as c
from adapters.inasti import simulator as simmod
from adapters.inasti.client import (
    SelfEmployedClient,
)
from adapters.inasti.conformance import _request_xml
from adapters.inasti.mapping import career_data, to_record
from adapters.population import (
    SOCIAL_INSURANCE_FUNDS,
    Person,
    SelfEmployedPeriod,
)
from hub.domain.identifiers import is_valid_insz, make_insz
from tests.support.inasti import POP, XSD


class OnePerson:
    def __init__(self, person: Person):
        self._person = person

    def person(self, insz: str) -> Person:
        return self._person


@st.composite
def self_employed_people(draw) -> Person:
    insz = make_insz(draw(st.dates(date(1940, 1, 1), date(2008, 12, 31))), draw(st.integers(1, 997)))
    periods = []
    for _ in range(draw(st.integers(1, 5))):
        start = draw(st.dates(date(1970, 1, 1), date(2026, 10, 31)))
        end = draw(st.none() | st.dates(start, date(2030, 12, 31)))
        periods.append(SelfEmployedPeriod(start, end, draw(st.sampled_from(("main", "secondary"))),
                                          draw(st.sampled_from(("active", "assimilated")))))
    return Person(insz, (), (), (), tuple(periods), draw(st.none() | st.sampled_from(SOCIAL_INSURANCE_FUNDS)),
                  draw(st.none() | st.booleans()))


PARSER = SelfEmployedClient("http://source.invalid/x").zeep


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(self_employed_people(),
                 st.integers(0, 5000).map(lambda i: POP.person(POP.sample(1, start=i)[0][0]))))
def test_mapping_is_valid_and_lossless(person):
    request = etree.fromstring(_request_xml(person.insz)).find(f".//{c.REQUEST}")
    response = simmod.answer(request, OnePerson(person), "2026-11-01T10:00:00Z")
    XSD.validate(response)
    parsed = serialize_object(PARSER.get_element(c.RESPONSE).parse(response, PARSER.wsdl.types), target_cls=dict)
    record = to_record(parsed, person.insz, datetime.now(timezone.utc), 1.0)
    c.enrichment_validator().validate(record.data)
    if not person.self_employed:
        assert record.status == "no_data"
        return
    assert record.status == "found"
    want = sorted((p.start.isoformat(), p.end.isoformat() if p.end else "", p.kind, p.status)
                  for p in person.self_employed)
    got = sorted((p["start"], p["end"] or "", p["occupation"], p["kind"]) for p in record.data["career_periods"])
    assert got == want
    assert record.data["social_insurance_fund"] == person.social_insurance_fund
    assert record.data["contributions_paid"] == person.contributions_paid
    assert career_data(parsed["result"]) == record.data


@settings(max_examples=300)
@given(st.dates(date(1900, 1, 1), date(2099, 12, 31)), st.integers(1, 997), st.sampled_from((0, 20, 40)))
def test_generated_insz_match_ssin_type(birth, serial, offset):
    insz = make_insz(birth, serial, month_offset=offset)
    assert is_valid_insz(insz)
    assert c.ssin_type().is_valid(insz)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_ssin_type_accepts_every_valid_insz(value):
    if is_valid_insz(value):
        assert c.ssin_type().is_valid(value)
    if not c.ssin_type().is_valid(value):
        assert not is_valid_insz(value)


@given(st.text(max_size=14))
def test_ssin_type_refuses_what_is_not_eleven_digits(value):
    if not (len(value) == 11 and value.isascii() and value.isdigit()):
        assert not c.ssin_type().is_valid(value)
