"""The envelope crosses the broker as bytes and comes back the same; its payload hash is stable."""
from __future__ import annotations

from hub.domain.envelope import Envelope, canonical_json, payload_hash
from hub.domain.samples import synthetic_application


def test_round_trip():
    env = Envelope(message_id="m1", flow_id="single-permit.application-submitted", sender="portal",
                   recipients=("region.flanders",), purpose=2, correlation_id="c1",
                   payload=synthetic_application(3), dossier_id="d1", acting_person="clerk-7")
    assert Envelope.from_bytes(env.to_bytes()) == env


def test_payload_hash_ignores_key_order_not_content():
    a = {"b": 1, "a": [1, 2], "é": "x"}
    assert payload_hash(a) == payload_hash({"é": "x", "a": [1, 2], "b": 1})
    assert payload_hash(a) != payload_hash({**a, "b": 2})
    assert canonical_json(a) == '{"a":[1,2],"b":1,"é":"x"}'.encode()


# ── the canonical bytes a payload hash covers (hub.domain.jsonbytes) ───────────────────────────
import json as _json

from hypothesis import given, settings as _settings, strategies as st

from hub.domain import jsonbytes
from hub.domain.values import INT_MAX, INT_MIN

def _json_values(integers):
    return st.recursive(
        st.none() | st.booleans() | integers | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
        max_leaves=30)


_ANY_JSON = _json_values(st.integers(min_value=-(2 ** 80), max_value=2 ** 80))
_HUB_JSON = _json_values(st.integers(min_value=INT_MIN, max_value=INT_MAX))   # what the strict reader lets in


def _std(value):
    return _json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


@_settings(max_examples=500, deadline=None)
@given(_ANY_JSON)
def test_canonical_bytes_are_the_standard_librarys_for_every_json_value(value):
    """A payload hashed before the fast encoder hashes the same after it: a retry still matches."""
    assert jsonbytes.canonical(value) == _std(value)


@_settings(max_examples=300, deadline=None)
@given(_HUB_JSON)
def test_what_is_stored_reads_back_the_same(value):
    assert jsonbytes.loads(jsonbytes.dumps(value)) == _json.loads(_std(value))


def test_canonical_bytes_where_the_fast_encoder_writes_otherwise():
    for value in ({"rate": 1e-07}, {"big": 2 ** 70}, [1.5e-05, "1e-5"], {"b": 1, "a": [2, {"d": 3, "c": 4}]},
                  6.103515625e-05, -7.1850441006303285e-09, [0.0001, 1e16, 1.5e300, 5e-324], {"x": "0.00001"}):
        assert jsonbytes.canonical(value) == _std(value)
