"""The edge's strict reading of bodies and its problem answers, as logic (the hostile corpus in
tests/integration/test_hostile_corpus.py runs the same classes through the whole hub)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from hub.domain.errors import MalformedMessage, UnsupportedMediaType
from hub.domain.formats import FORMAT_CHECKER
from hub.interfaces.api import problems
from hub.interfaces.api.hardening import INT_MAX, INT_MIN, load_json, require_json


@pytest.mark.parametrize("raw, code", [
    (b'{"pay": NaN}', "malformed_message"),
    (b'{"pay": Infinity}', "malformed_message"),
    (b'{"pay": -Infinity}', "malformed_message"),
    (b'{"pay": 1e400}', "number_out_of_range"),
    (b'{"id": 9223372036854775808}', "number_out_of_range"),
    (b'{"id": -9223372036854775809}', "number_out_of_range"),
    (b'{"id": ' + b"9" * 5000 + b"}", "malformed_message"),
    (b'{"name": "a\\u0000b"}', "invalid_string"),
    (b'{"name": "a\\u001bb"}', "invalid_string"),
    (b'{"name": "a\\u0085b"}', "invalid_string"),
    (b'{"name": "\\ud800"}', "invalid_string"),
    (b'{"na\\u0000me": "x"}', "invalid_string"),
    (b'{"a": [{"b": "\\udfff"}]}', "invalid_string"),
    (b"\xff\xfe{}", "malformed_message"),
    ('{"name": "x"}'.encode("utf-16"), "malformed_message"),            # JSON is UTF-8 (RFC 8259 §8.1)
    (b'\xef\xbb\xbf{"name": "x"}', "malformed_message"),               # without a BOM
    (b'{"competent_region": "flanders", "competent_region": "wallonia"}', "duplicate_member"),
    (b'{"a": {"b": 1, "b": 2}}', "duplicate_member"),
    (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
    (b"", "malformed_message"),
])
def test_hostile_json_is_refused_with_its_own_code(raw, code):
    with pytest.raises(MalformedMessage) as err:
        load_json(raw)
    assert err.value.code == code


def test_the_fault_is_named_by_its_pointer():
    with pytest.raises(MalformedMessage) as err:
        load_json(b'{"worker": {"a/b": ["ok", "bad\\u0000"]}}')
    assert err.value.detail == [{"in": "body", "name": "/worker/a~1b/1",
                                 "detail": "a control character, NUL or lone surrogate in a string"}]


def test_what_a_person_writes_is_accepted():
    text = "Zoë O'Brien-Nguyễn\tline\r\nnext ✓ 日本"
    assert load_json(json.dumps({"name": text, "n": INT_MAX, "m": INT_MIN, "f": 1.5e300}).encode())["name"] == text


@given(st.recursive(st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX) | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(st.characters(blacklist_categories=("Cc", "Cs"))),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=8), inner, max_size=4),
                    max_leaves=30))
def test_any_clean_json_value_reads_back_unchanged(value):
    assert load_json(json.dumps(value).encode()) == value


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/x-www-form-urlencoded",
                                          "application/problem+json", "application/json; charset=latin-1",
                                          "multipart/form-data; boundary=x"])
def test_bodies_are_json_only_as_application_json(content_type):
    with pytest.raises(UnsupportedMediaType):
        require_json(content_type)


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8",
                                          'application/json;charset="UTF-8"'])
def test_application_json_is_taken(content_type):
    require_json(content_type)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1899-12-31T23:00:00Z",
                                   "3000-01-01T00:00:00Z"])
def test_instants_at_the_edge_of_time_break_the_contracts_format(value):
    assert not FORMAT_CHECKER.conforms(value, "date-time")


def test_a_problem_has_the_rfc_9457_members_and_the_hubs_code():
    body = problems.problem(422, "contract_violation", [{"path": "/worker/insz", "message": "bad", "rule": "format"}],
                            "/v1/applications")
    assert body["type"] == "urn:problem-type:wib-hub:contract_violation" and body["status"] == 422
    assert body["title"] == "Unprocessable Entity" and body["instance"] == "/v1/applications"
    assert body["error"] == "contract_violation" and isinstance(body["detail"], str)
    assert body["issues"] == [{"in": "body", "name": "/worker/insz", "detail": "bad", "rule": "format"}]
    assert problems.problem(401, "token_expired")["type"] == "urn:problem-type:belgif:expiredAccessToken"
    moved = problems.problem(409, "invalid_transition", {"from": "submitted", "to": "notified"})
    assert (moved["from"], moved["to"]) == ("submitted", "notified") and "submitted" in moved["detail"]
