"""Who is calling: OAuth2 client credentials → short-lived JWT access tokens, one client per party.

Secure exchange between the competent services (Art. 2 §1 3°, Art. 6 3°) and the processor's
security of processing (Art. 8 §2, GDPR art. 32) start with knowing who calls. Each party is an
OAuth2 client. The production path is `private_key_jwt` (RFC 7523): the party registers a public
key and proves itself with a short-lived assertion signed by its private key, so the hub holds no
secret of theirs. A client secret (or only its SHA-256) still works for the embedded default and
can be switched off (HUB_ALLOW_CLIENT_SECRETS=false). Optionally, a TLS-terminating proxy may pass
the verified client-certificate subject in a header (HUB_MTLS_HEADER), mapped to a party here.

At /oauth/token a client secret comes in the form (client_id, client_secret) or, as RFC 6749 §2.3.1
prefers, by HTTP Basic: `Authorization: Basic base64(urlencode(client_id) ":" urlencode(client_secret))`
(client_basic). One method per request. The `aud` of an assertion is the configured token URL
(HUB_TOKEN_URL), never one built from the request.

Access tokens name the party (`sub`), its roles (`scope`) and, when a person rather than a system
acts, that person (`act.sub`, Art. 16: the persons with access are designated and traceable).

Clients file (JSON), one entry per party; every field optional, at least one credential:
    {"dvz": {"public_key_pem": "-----BEGIN PUBLIC KEY-----…",   # or a list of PEMs (key rollover)
             "jwks": {"keys": [{…}]},                           # alternative to public_key_pem
             "secret_sha256": "…", "secret": "…",               # client secret (hash preferred)
             "certificate_subject": "CN=dvz-hub,O=…"}}           # mTLS subject, if HUB_MTLS_HEADER is on
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from hub.domain.errors import MalformedMessage, NotAuthenticated

ISSUER = "wib-hub"
AUDIENCE = "wib-hub-api"
ACCESS_TOKEN_ALG = "HS256"  # the hub's own signature; pinned on verify
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("RS256", "ES256", "EdDSA")  # never none, never HS* (a shared secret is no key proof)
MAX_ASSERTION_SECONDS = 300
CLOCK_SKEW_SECONDS = 30
_ACTING_PERSON = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


def valid_acting_person(value: object) -> bool:
    """Whether `value` can name the person acting for a party (a token's `act.sub`; the AMQP
    ingress's `acting-person` header): a user id of 1-128 letters, digits or ._:@-."""
    return isinstance(value, str) and _ACTING_PERSON.fullmatch(value) is not None
BASIC_CHALLENGE = 'Basic realm="wib-hub"'   # WWW-Authenticate of the token endpoint's 401s
# C0 and C1 controls and DEL: never in a client id, a secret or any other token-request parameter
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Caller:
    party: str
    roles: tuple[str, ...]
    acting_person: str | None = None


@dataclass(frozen=True)
class PublicKey:
    key: Any
    alg: str
    kid: str | None = None


@dataclass(frozen=True)
class Client:
    party: str
    secret_sha256: str | None = None
    public_keys: tuple[PublicKey, ...] = ()
    certificate_subject: str | None = None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _alg_for(key: Any, where: str) -> str:
    """Each key signs with exactly one algorithm: an RSA key can never be used as an HMAC secret."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"{where}: RSA keys need at least 2048 bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ValueError(f"{where}: only RSA (RS256), P-256 (ES256) and Ed25519 (EdDSA) public keys are accepted")


def _public_keys(party: str, entry: dict[str, Any]) -> tuple[PublicKey, ...]:
    keys: list[PublicKey] = []
    pems = entry.get("public_key_pem") or []
    for pem in [pems] if isinstance(pems, str) else pems:
        key = load_pem_public_key(pem.encode())
        keys.append(PublicKey(key, _alg_for(key, f"clients file: {party}: public_key_pem")))
    for jwk in (entry.get("jwks") or {}).get("keys", []):
        if "d" in jwk:
            raise ValueError(f"clients file: {party}: jwks holds a private key; register the public key only")
        key = jwt.PyJWK(jwk).key
        keys.append(PublicKey(key, _alg_for(key, f"clients file: {party}: jwks"), jwk.get("kid")))
    return tuple(keys)


def load_clients(path: Path) -> dict[str, Client]:
    """Read the clients file (format in the module docstring); a party without credential is an error."""
    raw = json.loads(path.read_text())
    clients = {}
    for party, entry in raw.items():
        digest = entry.get("secret_sha256") or (_sha256(entry["secret"]) if entry.get("secret") else None)
        subject = (entry.get("certificate_subject") or "").strip() or None
        client = Client(party, digest, _public_keys(party, entry), subject)
        if not (client.secret_sha256 or client.public_keys or client.certificate_subject):
            raise ValueError(f"clients file: {party}: no secret, public key or certificate subject")
        clients[party] = client
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


class ReplayCache:
    """Assertion ids (`jti`) seen, kept until the assertion expires, in this process (unit tests, a
    single API process). The hub uses StoredReplayCache: shared by every API process."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def first_use(self, client_id: str, jti: str, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            for k in [k for k, exp in self._seen.items() if exp < now]:
                del self._seen[k]
            if (client_id, jti) in self._seen:
                return False
            self._seen[(client_id, jti)] = expires_at + CLOCK_SKEW_SECONDS
            return True


class StoredReplayCache:
    """Assertion ids in the store (`assertion_ids`, unique per client and jti, the jti hashed): an
    assertion replayed to any API process of the hub is refused. Expired ids are pruned now and then."""

    PRUNE_EVERY = 1000

    def __init__(self, engine: Any) -> None:
        self._engine, self._uses, self._lock = engine, 0, threading.Lock()

    def first_use(self, client_id: str, jti: str, expires_at: float) -> bool:
        from sqlalchemy import delete
        from sqlalchemy.exc import IntegrityError

        from hub.infra.store.schema import assertion_ids
        with self._lock:
            self._uses += 1
            prune = self._uses % self.PRUNE_EVERY == 1
        try:
            with self._engine.begin() as conn:
                if prune:
                    conn.execute(delete(assertion_ids).where(assertion_ids.c.expires_at < time.time()))
                conn.execute(assertion_ids.insert().values(
                    client_id=client_id[:64], jti_sha256=_sha256(jti), expires_at=expires_at + CLOCK_SKEW_SECONDS))
        except IntegrityError:
            return False
        return True


def _refuse(detail: str, code: str = "invalid_client") -> NotAuthenticated:
    return NotAuthenticated(detail, code=code)


def basic_refusal(detail: str) -> NotAuthenticated:
    """401 invalid_client answered with `WWW-Authenticate: Basic realm="wib-hub"` (RFC 6749 §5.2):
    the error carries the challenge as `www_authenticate`."""
    err = NotAuthenticated(detail, code="invalid_client")
    err.www_authenticate = BASIC_CHALLENGE  # type: ignore[attr-defined]
    return err


def client_basic(authorization: str | None) -> tuple[str, str] | None:
    """The (client_id, client_secret) of an `Authorization: Basic …` header (RFC 6749 §2.3.1, RFC
    7617): base64 of `urlencode(client_id) ":" urlencode(client_secret)`, each form-url-decoded as
    UTF-8. None without the header; a header that is not exactly that is refused (401 invalid_client)."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise basic_refusal("the token endpoint takes HTTP Basic client authentication, or credentials in the form")
    try:
        text = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise basic_refusal("HTTP Basic credentials are not base64 of UTF-8 text") from None
    encoded_id, colon, encoded_secret = text.partition(":")
    if not colon:
        raise basic_refusal("HTTP Basic credentials are urlencode(client_id):urlencode(client_secret)")
    try:
        client_id = unquote_plus(encoded_id, errors="strict")
        client_secret = unquote_plus(encoded_secret, errors="strict")
    except UnicodeDecodeError:
        raise basic_refusal("HTTP Basic client_id or client_secret is not URL-encoded UTF-8") from None
    if not client_id or not client_secret:
        raise basic_refusal("HTTP Basic credentials need a client_id and a client_secret")
    if CONTROL_CHARACTERS.search(client_id) or CONTROL_CHARACTERS.search(client_secret):
        raise basic_refusal("HTTP Basic credentials hold a control character")
    return client_id, client_secret


class TokenIssuer:
    def __init__(self, key: str, clients: dict[str, Client], roles: dict[str, tuple[str, ...]],
                 ttl_seconds: int = 300, replays: ReplayCache | StoredReplayCache | None = None):
        self._key, self._clients, self._roles, self._ttl = key, clients, roles, ttl_seconds
        self._replays = replays or ReplayCache()
        self._subjects = {c.certificate_subject: c.party for c in clients.values() if c.certificate_subject}

    # -- client authentication at /oauth/token --------------------------------------------------

    def authenticate(self, form: dict[str, str], *, audiences: Iterable[str],
                     allow_client_secrets: bool = True, basic: tuple[str, str] | None = None) -> str:
        """The party a token request proves to be: private_key_jwt, else (if allowed) a client secret,
        in the form or by HTTP Basic (`basic`: the header's client id and secret, client_basic).
        One method per request (RFC 6749 §2.3): Basic beside a secret or an assertion in the form is
        invalid_request. `audiences`: the token URL an assertion must name (none: no assertion passes)."""
        if basic is not None:
            if form.get("client_secret") or form.get("client_assertion") or form.get("client_assertion_type"):
                raise MalformedMessage("use one client authentication method: HTTP Basic, or client_secret or "
                                       "client_assertion in the form", code="invalid_request")
            client_id, client_secret = basic
            if form.get("client_id") and form["client_id"] != client_id:
                raise MalformedMessage("client_id in the form differs from the HTTP Basic client id",
                                       code="invalid_request")
            if not allow_client_secrets:
                raise basic_refusal("client secrets are disabled; authenticate with private_key_jwt")
            return self.check_secret(client_id, client_secret)
        if form.get("client_assertion") or form.get("client_assertion_type"):
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise MalformedMessage(f"client_assertion_type must be {ASSERTION_TYPE}", code="invalid_request")
            if form.get("client_secret"):
                raise MalformedMessage("use one client authentication method", code="invalid_request")
            return self.check_assertion(form.get("client_assertion", ""), list(audiences), form.get("client_id"))
        if not form.get("client_id") or not form.get("client_secret"):
            raise MalformedMessage("client_id with client_assertion (private_key_jwt) or client_secret is required",
                                   code="invalid_request")
        if not allow_client_secrets:
            raise _refuse("client secrets are disabled; authenticate with private_key_jwt")
        return self.check_secret(form["client_id"], form["client_secret"])

    def check_secret(self, client_id: str, client_secret: str) -> str:
        client = self._clients.get(client_id)
        expected = client.secret_sha256 if client and client.secret_sha256 else _sha256(secrets.token_hex(16))
        if not hmac.compare_digest(expected, _sha256(client_secret)) or client is None:
            raise _refuse("unknown client or wrong secret")
        return client_id

    def check_assertion(self, assertion: str, audiences: list[str], client_id: str | None = None) -> str:
        """RFC 7523 §3: iss = sub = client_id, aud = the token URL, short-lived, signed by the
        party's registered key with RS256/ES256/EdDSA, and each `jti` used once."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise _refuse("client assertion is not a JWT") from err
        if header.get("alg") not in ASSERTION_ALGS:
            raise _refuse(f"client assertion algorithm must be one of {', '.join(ASSERTION_ALGS)}")
        issuer = unverified.get("iss")
        client = self._clients.get(issuer) if isinstance(issuer, str) else None
        if client is None or not client.public_keys:
            raise _refuse("unknown client or no public key registered")
        if client_id is not None and client_id != issuer:
            raise _refuse("client_id differs from the assertion's issuer")
        if not audiences:
            raise _refuse("no token URL is configured (HUB_TOKEN_URL): no assertion can be checked")
        kid = header.get("kid")
        candidates = [k for k in client.public_keys
                      if k.alg == header["alg"] and (kid is None or k.kid in (None, kid))]
        claims = None
        for candidate in candidates:
            try:
                claims = jwt.decode(assertion, candidate.key, algorithms=[candidate.alg], audience=audiences,
                                    issuer=issuer, leeway=CLOCK_SKEW_SECONDS,
                                    options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError as err:
                raise _refuse("client assertion expired") from err
            except jwt.PyJWTError as err:
                raise _refuse(f"client assertion not valid: {type(err).__name__}") from err
        if claims is None:
            raise _refuse("client assertion signature does not match a registered key")
        now = time.time()
        if claims["sub"] != issuer:
            raise _refuse("client assertion sub must equal iss")
        if not isinstance(claims["iat"], (int, float)) or claims["iat"] > now + CLOCK_SKEW_SECONDS:
            raise _refuse("client assertion issued in the future")
        if claims["exp"] > now + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
            raise _refuse(f"client assertion lives longer than {MAX_ASSERTION_SECONDS} s")
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise _refuse("client assertion needs a jti")
        if not self._replays.first_use(issuer, claims["jti"], claims["exp"]):
            raise _refuse("client assertion already used", code="assertion_replayed")
        return issuer

    def party_for_certificate(self, subject: str) -> str:
        """mTLS terminated at a trusted proxy: the certificate subject it verified → the party."""
        party = self._subjects.get(subject.strip())
        if party is None:
            raise _refuse("certificate subject names no registered party", code="invalid_certificate")
        return party

    # -- access tokens ----------------------------------------------------------------------------

    def caller(self, party: str, acting_person: str | None = None) -> Caller:
        return Caller(party, tuple(self._roles.get(party, ())), acting_person)

    def issue_for(self, party: str, acting_person: str | None = None) -> dict[str, Any]:
        """A short-lived access token for an authenticated party (and the person acting, if any)."""
        if acting_person is not None and not valid_acting_person(acting_person):
            raise MalformedMessage("acting_person must be a user id of 1-128 letters, digits or ._:@-",
                                   code="invalid_request")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": party, "iat": now, "exp": now + self._ttl,
            "jti": str(uuid.uuid4()), "scope": " ".join(self._roles.get(party, ())),
        }
        if acting_person:
            claims["act"] = {"sub": acting_person}
        token = jwt.encode(claims, self._key, algorithm=ACCESS_TOKEN_ALG)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self._ttl,
                "scope": claims["scope"]}

    def issue(self, client_id: str, client_secret: str, acting_person: str | None = None) -> dict[str, Any]:
        """Client-secret shortcut (embedded default and tools)."""
        return self.issue_for(self.check_secret(client_id, client_secret), acting_person)

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(token, self._key, algorithms=[ACCESS_TOKEN_ALG], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "jti"]})
        except jwt.ExpiredSignatureError as err:
            raise NotAuthenticated("token expired", code="token_expired") from err
        except jwt.PyJWTError as err:
            raise NotAuthenticated("token not valid", code="invalid_token") from err
        party = claims["sub"]
        if party not in self._clients:
            raise NotAuthenticated("token names no known party", code="invalid_token")
        return Caller(party, tuple(claims.get("scope", "").split()), (claims.get("act") or {}).get("sub"))


# -- the clients file as the operator writes it (`wib-hub clients`) --------------------------------

def client_entry(party: str, entry: dict[str, Any]) -> Client:
    """One entry of the clients file checked as load_clients checks it (keys: RSA ≥ 2048, P-256 or
    Ed25519, never a private key; at least one credential); a fault is a ValueError naming it."""
    digest = entry.get("secret_sha256") or (_sha256(entry["secret"]) if entry.get("secret") else None)
    subject = (entry.get("certificate_subject") or "").strip() or None
    client = Client(party, digest, _public_keys(party, entry), subject)
    if not (client.secret_sha256 or client.public_keys or client.certificate_subject):
        raise ValueError(f"clients file: {party}: no secret, public key or certificate subject")
    return client


def public_key_from_pem(pem: str, where: str) -> PublicKey:
    """A party's public key (PEM) checked as load_clients checks it; a private key is refused."""
    if "PRIVATE KEY" in pem:
        raise ValueError(f"{where}: holds a private key; register the public key only")
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        raise ValueError(f"{where}: not a PEM public key") from None
    return PublicKey(key, _alg_for(key, where))


def key_fingerprint(key: Any) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of SHA-256 of its DER encoding."""
    from cryptography.hazmat.primitives import serialization
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def new_client_secret() -> tuple[str, str]:
    """A random client secret and its SHA-256 (the clients file keeps only the hash)."""
    secret = secrets.token_urlsafe(32)
    return secret, _sha256(secret)


def read_clients_file(path: Path) -> dict[str, Any]:
    """The clients file as JSON (none yet: empty)."""
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the clients file is a JSON object of parties")
    return raw


def write_clients_file(path: Path, entries: dict[str, Any]) -> None:
    """Write the clients file atomically (a temporary file in the same directory, renamed over it),
    readable by its owner only (0600). Every entry is checked as load_clients checks it first."""
    import tempfile
    for party, entry in entries.items():
        client_entry(party, entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(entries, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_token_key(path: Path, *, force: bool = False) -> None:
    """A new access-token signing key (as ensure_token_key makes it), written atomically, mode 0600;
    an existing file is kept unless `force` (FileExistsError)."""
    write_private_file(path, (secrets.token_urlsafe(48) + "\n").encode(), force=force)


def write_private_file(path: Path, data: bytes, *, force: bool = False) -> None:
    """`data` into `path` atomically, mode 0600; an existing file is kept unless `force` (FileExistsError)."""
    import tempfile
    if path.exists() and not force:
        raise FileExistsError(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if force:
            os.replace(tmp, path)
        else:   # never over a file that appeared meanwhile
            os.link(tmp, path)
            Path(tmp).unlink()
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
