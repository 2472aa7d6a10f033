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
