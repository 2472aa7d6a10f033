"""Append-only, hash-chained audit events.

Each event's hash covers the previous event's hash and every field of the event, so a modified,
deleted, inserted or reordered event breaks the chain from that point on.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import Connection, Engine, bindparam, select, update

from hub.store.db import reader
from hub.store.schema import audit_events, audit_head

GENESIS = "0" * 64

# The fields an event's hash covers, in this order. Changing it changes every hash: don't.
HASHED_FIELDS = (
    "seq", "ts", "event", "outcome", "flow_id", "message_id", "correlation_id", "dossier_id",
    "actor", "acting_person", "recipient", "purpose", "legal_basis", "data_categories", "reason",
    "payload_hash",
)


@dataclass(slots=True)
class AuditEvent:
    """One step of one message (or one consultation), as ARCHITECTURE.md lists the fields."""

    event: str
    outcome: str = "ok"
    flow_id: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    dossier_id: str | None = None
    actor: str | None = None
    acting_person: str | None = None
    recipient: str | None = None
    purpose: int | None = None
    legal_basis: Sequence[str] = field(default_factory=tuple)
    data_categories: Sequence[str] = field(default_factory=tuple)
    reason: str | None = None
    payload_hash: str | None = None


def _micros(ts: datetime) -> int:
    # SQLite hands datetimes back naive; they were written in UTC.
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp() * 1_000_000)


def event_hash(prev_hash: str, row: dict[str, Any]) -> str:
    values = [row[name] for name in HASHED_FIELDS]
    values[1] = _micros(values[1])
    values[12] = list(values[12] or ())
    values[13] = sorted(values[13] or ())
    material = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode() + material.encode()).hexdigest()


# Built once: statement construction is a measurable share of a message's cost.
_LOCK_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_INSERT_EVENTS = audit_events.insert()
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1).values(seq=bindparam("new_seq"),
                                                                   hash=bindparam("new_hash"))


def append(conn: Connection, events: Iterable[AuditEvent], now: datetime | None = None) -> int:
    """Append events inside the caller's transaction; returns the last sequence number.

    The head row is locked (FOR UPDATE) so that concurrent transactions extend one line, never a fork.
    """
    events = list(events)
    if not events:
        return 0
    now = now or datetime.now(timezone.utc)
    head = conn.execute(_LOCK_HEAD).one()
    seq, prev = head.seq, head.hash
    rows = []
    for ev in events:
        seq += 1
        row = {
            "seq": seq, "ts": now, "event": ev.event, "outcome": ev.outcome, "flow_id": ev.flow_id,
            "message_id": ev.message_id, "correlation_id": ev.correlation_id, "dossier_id": ev.dossier_id,
            "actor": ev.actor, "acting_person": ev.acting_person, "recipient": ev.recipient,
            "purpose": ev.purpose, "legal_basis": list(ev.legal_basis),
            "data_categories": sorted(ev.data_categories), "reason": ev.reason,
            "payload_hash": ev.payload_hash,
        }
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(prev, row)
        rows.append(row)
    conn.execute(_INSERT_EVENTS, rows)
    conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    return seq


@dataclass(frozen=True)
class VerifyReport:
    intact: bool
    count: int
    head_seq: int
    first_bad_seq: int | None = None
    reason: str | None = None

    def __str__(self) -> str:
        if self.intact:
            return f"audit chain intact: {self.count} events, head {self.head_seq}"
        return f"audit chain BROKEN at sequence {self.first_bad_seq}: {self.reason}"


def _rows(engine: Engine) -> Iterator[dict[str, Any]]:
    with reader(engine).connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(
            select(audit_events).order_by(audit_events.c.seq))
        for row in result.mappings():
            yield dict(row)


def verify(engine: Engine) -> VerifyReport:
    """Recompute the chain from the genesis; name the first event that does not fit."""
    prev, expected, count = GENESIS, 1, 0
    for row in _rows(engine):
        if row["seq"] != expected:
            return VerifyReport(False, count, expected - 1, expected,
                                f"sequence {expected} missing (next stored is {row['seq']})")
        if row["prev_hash"] != prev:
            return VerifyReport(False, count, expected - 1, row["seq"], "previous-hash link broken")
        if event_hash(prev, row) != row["hash"]:
            return VerifyReport(False, count, expected - 1, row["seq"], "event content does not match its hash")
        prev, expected, count = row["hash"], expected + 1, count + 1
    with reader(engine).connect() as conn:
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    if head.seq != count or head.hash != prev:
        return VerifyReport(False, count, count, count + 1 if head.seq > count else head.seq,
                            f"chain head says {head.seq} events, {count} found: tail truncated or head altered")
    return VerifyReport(True, count, head.seq)


def tail(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with reader(engine).connect() as conn:
        rows = conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(limit)).mappings()
        found = [dict(r) for r in reversed(list(rows))]
    for r in found:  # SQLite hands datetimes back naive; they were written in UTC
        r["ts"] = r["ts"] if r["ts"].tzinfo else r["ts"].replace(tzinfo=timezone.utc)
    return found
