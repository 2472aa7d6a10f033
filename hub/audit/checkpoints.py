"""Signed checkpoints of the audit chain (Ed25519): tamper evidence beyond the hash chain.

The flow log of the protocol agreement (REQUIREMENTS: audit trail, "who exchanged or consulted
what, why and when"; ONSS as processor under protocol agreement Art. 8 §2: GDPR Art. 5(1)(f)
integrity and Art. 32(1)(b) security of processing) is a hash
chain; a chain alone can be rewritten from the first changed event onwards by whoever can write
the table. A checkpoint signs, with a key the database does not hold:

    seq        the last event it covers (the chain head at that moment)
    head_hash  that event's hash
    count      how many events the chain then holds (= seq: sequence numbers have no gaps)
    from_seq   the first event of its interval (the previous checkpoint's seq + 1)
    digest     SHA-256 over the hex hashes of the events from_seq..seq, concatenated
    ts         when it was written (microseconds since the epoch, UTC)

A rewrite, a deletion or a truncated tail up to the last checkpoint no longer fits a signature;
events after the last checkpoint are reported as *unsealed*. The interval digest lets an export
prove that a dossier's events are in the sealed chain by listing only the other events' hashes,
never their content (see hub/audit/bundle.py).

Checkpoints are written inside `hub.audit.chain.append` (same transaction) when the CheckpointPolicy
passed with the events says one is due (a multiple of N events crossed, or T seconds since the
policy last sealed); `checkpoint_now` seals the current head on demand (CLI, worker). The policy
belongs to the store's unit of work, built by bootstrap from the settings; no module state.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, func, select

from hub.infra.store.schema import audit_checkpoints, audit_events, audit_head

MESSAGE_PREFIX = b"wib-hub audit checkpoint v1\n"


def micros(ts: datetime) -> int:
    """Exact microseconds since the epoch (checkpoint time; naive datetimes are UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    delta = ts - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def message(seq: int, head_hash: str, count: int, from_seq: int, digest: str, ts_us: int) -> bytes:
    """The canonical bytes a checkpoint signature covers."""
    return MESSAGE_PREFIX + (f"seq={seq}\nhead={head_hash}\ncount={count}\nfrom={from_seq}\n"
                             f"digest={digest}\nts={ts_us}\n").encode()


def interval_digest(hashes: Iterable[str]) -> str:
    h = hashlib.sha256()
    for x in hashes:
        h.update(x.encode())
    return h.hexdigest()


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def verify_signature(key: Ed25519PublicKey, signature_hex: str, data: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), data)
        return True
    except (InvalidSignature, ValueError):
        return False


class Signer:
    """An Ed25519 private key and what the verifier needs to know of it."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, data: bytes) -> str:
        return self._key.sign(data).hex()

    def public_pem(self) -> str:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def ensure_key(path: Path) -> Signer:
    """Load the Ed25519 private key (PEM); generate it (mode 0600) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    return load_signer(path)


def load_signer(path: Path) -> Signer:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the audit signing key must be an Ed25519 private key (PEM)")
    return Signer(key)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM file holding either the public or the private key."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_signer(path).public_key
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass
class CheckpointPolicy:
    """When `append` seals: every `every_events` events, or once `every_seconds` passed since this
    policy last sealed. Held by the unit of work of a store (hub.infra.store.unit_of_work) and
    passed to `append` with every batch of events; without one, nothing is sealed as it goes."""

    signer: Signer
    every_events: int = 1000
    every_seconds: float = 60.0
    last_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.every_events = max(1, self.every_events)

    def after_append(self, conn: Connection, old_seq: int, new_seq: int, head_hash: str, now: datetime) -> None:
        """Called by `append` inside its transaction: write a checkpoint when one is due."""
        due_by_count = new_seq // self.every_events > old_seq // self.every_events
        due_by_time = time.monotonic() - self.last_at >= self.every_seconds
        if due_by_count or due_by_time:
            write(conn, self.signer, new_seq, head_hash, now)
            self.last_at = time.monotonic()


def write(conn: Connection, signer: Signer, seq: int, head_hash: str, now: datetime) -> dict[str, Any] | None:
    """Sign the chain up to `seq` (the locked head of this transaction); None if already sealed."""
    last = conn.execute(select(func.max(audit_checkpoints.c.seq))).scalar() or 0
    if seq <= last:
        return None
    hashes = conn.execute(select(audit_events.c.hash).where(audit_events.c.seq > last,
                                                            audit_events.c.seq <= seq)
                          .order_by(audit_events.c.seq)).scalars()
    digest = interval_digest(hashes)
    ts_us = micros(now)
    row = {"seq": seq, "from_seq": last + 1, "count": seq, "head_hash": head_hash, "digest": digest,
           "ts_us": ts_us, "key_id": signer.key_id,
           "signature": signer.sign(message(seq, head_hash, seq, last + 1, digest, ts_us))}
    conn.execute(audit_checkpoints.insert(), row)
    return row


def checkpoint_now(engine: Engine, signer: Signer, now: datetime | None = None) -> dict[str, Any] | None:
    """Seal the current chain head now (idle hub, shutdown, CLI); None when nothing is unsealed."""
    with engine.begin() as conn:
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                            .where(audit_head.c.id == 1).with_for_update()).one()
        if head.seq == 0:
            return None
        return write(conn, signer, head.seq, head.hash, now or datetime.now(timezone.utc))


def load_all(engine_or_conn) -> list[dict[str, Any]]:
    query = select(audit_checkpoints).order_by(audit_checkpoints.c.seq)
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
    return [dict(r) for r in engine_or_conn.execute(query).mappings()]


def check(cp: dict[str, Any], key: Ed25519PublicKey, expected_from: int) -> str | None:
    """What is wrong with a checkpoint's own fields and signature (None: nothing)."""
    if cp["from_seq"] != expected_from:
        return (f"checkpoint {cp['seq']} starts at {cp['from_seq']}, expected {expected_from}: "
                "a checkpoint is missing")
    if cp["count"] != cp["seq"]:
        return f"checkpoint {cp['seq']} counts {cp['count']} events"
    data = message(cp["seq"], cp["head_hash"], cp["count"], cp["from_seq"], cp["digest"], cp["ts_us"])
    if cp["key_id"] != key_id(key) or not verify_signature(key, cp["signature"], data):
        return f"checkpoint {cp['seq']}: signature does not verify with the audit key"
    return None
