"""OAuth2 client credentials with a `private_key_jwt` client assertion, as the ONSS REST APIs use.

Client side: `PrivateKeyJwt`, an httpx.Auth that signs an RS256 assertion (iss = sub = client id,
aud = token URL, jti, iat, exp), trades it for a bearer token, caches the token until shortly
before it expires, and on a 401 fetches a fresh one and replays the request once.

Simulator side: `TokenService` checks assertions against registered public keys (signature, aud,
exp, jti never seen before) and issues opaque tokens with their scopes.
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def generate_key() -> tuple[bytes, bytes]:
    """A new RSA key pair for a client (PEM private, PEM public)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def client_assertion(client_id: str, private_key_pem: bytes, audience: str, lifetime_s: int = 60) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": str(uuid.uuid4()),
              "iat": now, "exp": now + lifetime_s}
    return jwt.encode(claims, private_key_pem, algorithm="RS256")


class TokenError(Exception):
    pass


class PrivateKeyJwt(httpx.Auth):
    """httpx.Auth for a REST source: bearer token from client credentials + private_key_jwt."""

    requires_response_body = True

    def __init__(self, client_id: str, private_key_pem: bytes, token_url: str, scopes: Iterable[str] = (),
                 clock: Callable[[], float] = time.time):
        self.client_id, self.key, self.token_url = client_id, private_key_pem, token_url
        self.scope = " ".join(scopes)
        self.clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def _token_request(self) -> httpx.Request:
        data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(self.client_id, self.key, self.token_url)}
        if self.scope:
            data["scope"] = self.scope
        return httpx.Request("POST", self.token_url, data=data)

    def _store(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise TokenError(f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
            token, ttl = body["access_token"], float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as err:
            raise TokenError("token endpoint answered a malformed token") from err
        self._token, self._expires = token, self.clock() + ttl - 30

    def auth_flow(self, request: httpx.Request):
        with self._lock:
            fresh = self._token is not None and self.clock() < self._expires
        if not fresh:
            self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:  # revoked or expired early: one new token, one replay
            self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


@dataclass
class TokenService:
    """The token endpoint of a simulator: registered clients' public keys → short-lived bearer tokens."""

    audience: str                                   # the token URL the assertion must name
    clients: dict[str, tuple[bytes, frozenset[str]]] = field(default_factory=dict)  # id → (public PEM, scopes)
    ttl_s: int = 300
    tokens: dict[str, tuple[str, frozenset[str], float]] = field(default_factory=dict)
    seen_jti: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def register(self, client_id: str, public_pem: bytes, scopes: Iterable[str]) -> None:
        self.clients[client_id] = (public_pem, frozenset(scopes))

    def issue(self, form: dict[str, str]) -> tuple[int, dict]:
        """The answer to a token request: (status, JSON body) per RFC 6749 §5."""
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != ASSERTION_TYPE:
            return 400, {"error": "unsupported_grant_type"}
        assertion = form.get("client_assertion", "")
        try:
            client_id = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            public, allowed = self.clients[client_id]
            claims = jwt.decode(assertion, public, algorithms=["RS256"], audience=self.audience,
                                options={"require": ["iss", "sub", "aud", "jti", "exp", "iat"]})
        except (jwt.PyJWTError, KeyError, TypeError):
            return 401, {"error": "invalid_client"}
        if claims["sub"] != client_id:
            return 401, {"error": "invalid_client"}
        wanted = frozenset((form.get("scope") or "").split()) or allowed
        if not wanted <= allowed:
            return 400, {"error": "invalid_scope"}
        now = time.time()
        with self._lock:
            if claims["jti"] in self.seen_jti:
                return 401, {"error": "invalid_client", "error_description": "assertion replayed"}
            self.seen_jti = {j: t for j, t in self.seen_jti.items() if t > now}
            self.seen_jti[claims["jti"]] = float(claims["exp"])
            token = secrets.token_urlsafe(24)
            self.tokens[token] = (client_id, wanted, now + self.ttl_s)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl_s,
                     "scope": " ".join(sorted(wanted))}

    def check(self, authorization: str | None, scope: str) -> int:
        """200 when the bearer token is live and carries `scope`, else 401 or 403."""
        if not authorization or not authorization.startswith("Bearer "):
            return 401
        entry = self.tokens.get(authorization[7:])
        if entry is None or entry[2] < time.time():
            return 401
        return 200 if scope in entry[1] else 403

    def revoke_all(self) -> None:
        self.tokens.clear()
