"""Searching the audit trail, for the security officer (Art. 8 §2; GDPR art. 32 and 33).

A search is itself a consultation of the trail: `record_consultation` writes one `consulted`
event naming the officer and the kinds of filter used, never their values (a person's id or a
dossier number never ends up in an audit reason).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import Connection, Engine, or_, select

from hub.audit.chain import AuditEvent, Recorder
from hub.domain.envelope import as_utc
from hub.domain.errors import MalformedMessage
from hub.infra.store.db import reader
from hub.infra.store.schema import audit_events

MAX_LIMIT = 1000

# What the trail records (AuditEvent `event`, `outcome`) as the hub writes them (hub/messaging,
# hub/lifecycle, hub/audit): the values a search may filter on. tests/unit/test_cli_usability.py
# holds the lists to the events the code appends.
EVENTS: tuple[str, ...] = (
    "accepted", "rejected", "routed", "delivered", "acknowledged",
    "consulted", "enriched", "enrichment_pending", "batch_enriched", "exported", "deleted", "clock_expired",
    "rights_request", "rights_answered", "rights_extended")
OUTCOMES: tuple[str, ...] = ("ok", "rejected", "refused", "delayed")

# What a search returns of an event: everything but the previous-hash link (the chain is `verify`'s job).
# `count`: how many occurrences the event stands for (aggregated refusals); None means one.
COLUMNS = (
    "seq", "ts", "event", "outcome", "flow_id", "message_id", "correlation_id", "dossier_id", "actor",
    "acting_person", "recipient", "purpose", "legal_basis", "data_categories", "reason", "payload_hash", "hash",
    "count",
)


@dataclass(frozen=True)
class AuditFilter:
    """The officer's criteria; every one given must match. `party` matches actor or recipient."""

    dossier: str | None = None
    party: str | None = None
    acting_person: str | None = None
    flow: str | None = None
    purpose: int | None = None
    outcome: str | None = None
    event: str | None = None
    since: datetime | None = None    # inclusive
    until: datetime | None = None    # exclusive

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", as_utc(self.since))
        object.__setattr__(self, "until", as_utc(self.until))
        if self.since and self.until and self.since >= self.until:
            raise MalformedMessage("since must be before until", code="invalid_time_range")
        if self.purpose is not None and not 1 <= self.purpose <= 9:
            raise MalformedMessage("purpose is one of Art. 10 1°–9°", code="invalid_purpose")

    def kinds(self) -> list[str]:
        """The names of the filters in use: what an audit reason may say about a search."""
        return [f.name for f in fields(self) if getattr(self, f.name) not in (None, "")]

    def clauses(self) -> list[Any]:
        c = audit_events.c
        found = []
        for name, column in (("dossier", c.dossier_id), ("acting_person", c.acting_person), ("flow", c.flow_id),
                             ("purpose", c.purpose), ("outcome", c.outcome), ("event", c.event)):
            value = getattr(self, name)
            if value not in (None, ""):
                found.append(column == value)
        if self.party:
            found.append(or_(c.actor == self.party, c.recipient == self.party))
        if self.since:
            found.append(c.ts >= self.since)
        if self.until:
            found.append(c.ts < self.until)
        return found


@dataclass(frozen=True)
class SearchPage:
    items: list[dict[str, Any]]
    next_after: int | None   # pass as `after` for the next page; None when this page is the last

    def as_json(self) -> dict[str, Any]:
        return {"items": [jsonable(r) for r in self.items], "next_after": self.next_after}


def _row(r: Any) -> dict[str, Any]:
    row = {name: r[name] for name in COLUMNS}
    row["ts"] = as_utc(row["ts"])
    row["legal_basis"] = list(row["legal_basis"] or [])
    row["data_categories"] = list(row["data_categories"] or [])
    return row


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "ts": row["ts"].isoformat()}


def search(engine: Engine, criteria: AuditFilter, *, after: int = 0, limit: int = 100) -> SearchPage:
    """One page of matching events in sequence order, starting after sequence number `after`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise MalformedMessage(f"limit is between 1 and {MAX_LIMIT}", code="invalid_limit")
    stmt = (select(*(audit_events.c[n] for n in COLUMNS)).where(audit_events.c.seq > after, *criteria.clauses())
            .order_by(audit_events.c.seq).limit(limit + 1))
    with reader(engine).connect() as conn:
        rows = [_row(r) for r in conn.execute(stmt).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return SearchPage(rows, rows[-1]["seq"] if more else None)


def stream(conn: Connection, criteria: AuditFilter, columns: Sequence[str] = COLUMNS) -> Iterator[dict[str, Any]]:
    """Every matching event in sequence order, read in batches (for reports over long ranges)."""
    stmt = (select(*(audit_events.c[n] for n in columns)).where(*criteria.clauses())
            .order_by(audit_events.c.seq))
    for r in conn.execution_options(yield_per=5000).execute(stmt).mappings():
        row = dict(r)
        if "ts" in row:
            row["ts"] = as_utc(row["ts"])
        yield row


def record_consultation(recorder: Recorder, what: str, actor: str, acting_person: str | None,
                        kinds: Sequence[str], channel: str, dossier_id: str | None = None) -> None:
    """The trace of the officer's own look at the trail (GDPR art. 32: access to logs is logged too).

    The reason names the tool, the channel and the kinds of filter, never their values.
    """
    reason = f"{channel} audit {what}: " + (",".join(kinds) if kinds else "no filter")
    recorder.record([AuditEvent("consulted", actor=actor, acting_person=acting_person,
                                dossier_id=dossier_id, reason=reason)])
