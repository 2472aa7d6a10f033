"""The one message shape that crosses the hub: ids, flow, sender, recipients, purpose, payload."""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from hub.domain import jsonbytes


def canonical_json(value: Any) -> bytes:
    """Stable bytes for hashing: sorted keys, no spaces, UTF-8 (hub.domain.jsonbytes.canonical)."""
    return jsonbytes.canonical(value)


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(ts: datetime | None) -> datetime | None:
    """Aware UTC; a time without an offset is taken as UTC (SQLite hands back naive UTC times)."""
    if ts is None:
        return None
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def iso_utc(ts: Any) -> Any:
    """ISO 8601 with its offset; SQLite hands datetimes back naive, and they were written in UTC."""
    if isinstance(ts, datetime):
        return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).isoformat()
    return ts


@dataclass(frozen=True, slots=True)
class Envelope:
    message_id: str
    flow_id: str
    sender: str
    recipients: tuple[str, ...]
    purpose: int
    correlation_id: str
    payload: dict[str, Any]
    dossier_id: str | None = None
    acting_person: str | None = None
    received_at: datetime = field(default_factory=utcnow)
    payload_hash: str = ""          # computed once, then carried along (the audit records it at each step)

    def __post_init__(self) -> None:
        if not self.payload_hash:
            object.__setattr__(self, "payload_hash", payload_hash(self.payload))

    def to_bytes(self) -> bytes:
        header = {name: getattr(self, name) for name in _HEADER}   # no deep copy, unlike asdict
        header["recipients"] = list(self.recipients)
        header["received_at"] = self.received_at.isoformat()
        return envelope_bytes(header, jsonbytes.dumps(self.payload))

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        data = jsonbytes.loads(raw)
        data["recipients"] = tuple(data["recipients"])
        data["received_at"] = datetime.fromisoformat(data["received_at"])
        return cls(**data)


_HEADER = tuple(f.name for f in fields(Envelope) if f.name != "payload")   # what goes with the payload


def envelope_bytes(header: dict[str, Any], payload_json: bytes) -> bytes:
    """The bytes of an envelope whose payload is JSON text already (as stored): the other fields
    (JSON-ready: recipients a list, received_at ISO 8601) encoded, the payload spliced in as it is."""
    return jsonbytes.dumps(header)[:-1] + b',"payload":' + payload_json + b"}"
