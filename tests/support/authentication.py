"""Shared by the unit and integration tests of test_authentication."""
from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hub.registry import default_contracts_dir, load_registry

TOKEN_URL = "http://testserver/oauth/token"


SUBJECT = "CN=portal-gateway,O=ONSS,C=BE"


def _pem(private) -> str:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()


KEYS = {"portal": ed25519.Ed25519PrivateKey.generate(),
        "dvz": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "region.flanders": ec.generate_private_key(ec.SECP256R1())}


ALGS = {"portal": "EdDSA", "dvz": "RS256", "region.flanders": "ES256"}


def write_clients(path):
    """Every party gets a secret (the fixtures' HubClient uses it); three also a public key."""
    parties = load_registry(default_contracts_dir()).parties
    entries = {p: {"secret": f"s-{p}-{uuid.uuid4().hex}"} for p in parties}
    entries["portal"]["public_key_pem"] = _pem(KEYS["portal"])
    entries["portal"]["certificate_subject"] = SUBJECT
    entries["dvz"]["jwks"] = {"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEYS["dvz"].public_key())),
                                        "kid": "dvz-1"}]}
    entries["region.flanders"]["public_key_pem"] = [_pem(KEYS["region.flanders"])]
    path.write_text(json.dumps(entries))
    return path


def assertion(party: str, key=None, alg: str | None = None, **overrides) -> str:
    now = int(time.time())
    claims = {"iss": party, "sub": party, "aud": TOKEN_URL, "iat": now, "exp": now + 60,
              "jti": uuid.uuid4().hex, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"kid": "dvz-1"} if party == "dvz" else None
    return jwt.encode(claims, key if key is not None else KEYS[party], algorithm=alg or ALGS[party], headers=headers)
