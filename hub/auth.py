"""Who is calling: OAuth2 client credentials → short-lived JWT access tokens, one client per party.

The hub holds each party's client secret (or only its SHA-256) in the clients file; the embedded
default generates one on first start. Tokens name the party (`sub`), its roles (`scope`) and, when
a person rather than a system acts, that person (`act.sub`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import jwt

from hub.errors import NotAuthenticated

ISSUER = "wib-hub"
AUDIENCE = "wib-hub-api"


@dataclass(frozen=True)
class Caller:
    party: str
    roles: tuple[str, ...]
    acting_person: str | None = None


@dataclass(frozen=True)
class Client:
    party: str
    secret_sha256: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_clients(path: Path) -> dict[str, Client]:
    """{party: {"secret": "…"} | {"secret_sha256": "…"}} — production files hold only the hash."""
    raw = json.loads(path.read_text())
    clients = {}
    for party, entry in raw.items():
        digest = entry.get("secret_sha256") or _sha256(entry["secret"])
        clients[party] = Client(party, digest)
    return clients


def ensure_clients_file(path: Path, parties: Iterable[str]) -> None:
    """Embedded default: give every party a random secret, readable by the owner only."""
    existing = json.loads(path.read_text()) if path.exists() else {}
    missing = [p for p in parties if p not in existing]
    if not missing:
        return
    for party in missing:
        existing[party] = {"secret": secrets.token_urlsafe(32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(existing, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def ensure_token_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        os.chmod(path, 0o600)
    return path.read_text().strip()


class TokenIssuer:
    def __init__(self, key: str, clients: dict[str, Client], roles: dict[str, tuple[str, ...]],
                 ttl_seconds: int = 300):
        self._key, self._clients, self._roles, self._ttl = key, clients, roles, ttl_seconds

    def issue(self, client_id: str, client_secret: str, acting_person: str | None = None) -> dict[str, Any]:
        client = self._clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret_sha256, _sha256(client_secret)):
            raise NotAuthenticated("unknown client or wrong secret", code="invalid_client")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": client_id, "iat": now, "exp": now + self._ttl,
            "jti": str(uuid.uuid4()), "scope": " ".join(self._roles.get(client_id, ())),
        }
        if acting_person:
            claims["act"] = {"sub": acting_person}
        token = jwt.encode(claims, self._key, algorithm="HS256")
        return {"access_token": token, "token_type": "Bearer", "expires_in": self._ttl,
                "scope": claims["scope"]}

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "jti"]})
        except jwt.ExpiredSignatureError as err:
            raise NotAuthenticated("token expired", code="token_expired") from err
        except jwt.PyJWTError as err:
            raise NotAuthenticated("token not valid", code="invalid_token") from err
        party = claims["sub"]
        if party not in self._clients:
            raise NotAuthenticated("token names no known party", code="invalid_token")
        return Caller(party, tuple(claims.get("scope", "").split()), (claims.get("act") or {}).get("sub"))
