"""Art. 27: automatic deletion of the dossiers whose retention period has ended.

Each dossier carries `retain_until` (hub.domain.dossier computes it on every change; NULL keeps it:
undecided, or on legal hold while an appeal or procedure is pending). When it has passed, the
dossier is deleted with everything the hub holds about it:

    dossiers (the application, its documents)      messages (payloads)    outbox (their relay rows)
    deliveries (the projections in every inbox)    enrichment_jobs        enrichments (Art. 14 data)
    dossier_clocks

Kept: `stats_facts` (anonymous, Art. 31-32; only the dossier pointed to its row, and that pointer
goes with the dossier) and the audit trail (append-only, hashes and ids only; it must stay
verifiable), which gains one `deleted` event per dossier, in the deleting transaction.
`rights_requests` are not dossier data (a request is kept for the controller's own accountability)
and are left alone.

The work goes in batches, one transaction each, in (retain_until, id) order. Each batch selects
its dossiers *inside* its transaction with `retain_until <= now` (PostgreSQL: FOR UPDATE SKIP
LOCKED), so a dossier whose appeal was lodged meanwhile (retain_until back to NULL) survives, and a
dossier a message is changing right now is left for the next run. Every statement is set-based
(`= ANY(array)` on PostgreSQL, `IN (...)` on SQLite): no round trip per row.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import (
    ARRAY, Connection, Engine, String, bindparam, cast, delete, func, or_, select,
)
from sqlalchemy.sql.elements import ColumnElement

from hub.audit import AuditEvent
from hub.domain.dossier import retention
from hub.domain.envelope import as_utc
from hub.domain.parties import PLATFORM
from hub.infra.store.db import reader
from hub.infra.store.schema import (
    deliveries, dossier_clocks, dossiers, enrichment_jobs, enrichments, messages, outbox,
)
from hub.infra.store.unit_of_work import UnitOfWork

__all__ = ["ExpiredDossier", "RetentionResult", "RULES", "TABLES", "expired", "rule_of", "run"]

# Art. 27, as hub.domain.dossier applies it; the rule is named in the audit event's reason.
RULES: dict[str, str] = {
    "granted": "granted: 10 years from submission",
    "negative": "refused, ended or withdrawn: 5 years from notification",
    "after_appeal": "appeal or procedure ended: 1 year after",
    "retain_until": "retain_until reached",   # a date the rules above do not explain (set by hand)
}
# The tables a deletion touches, in the order the result reports them.
TABLES: tuple[str, ...] = ("dossiers", "messages", "outbox", "deliveries", "enrichment_jobs",
                           "enrichments", "dossier_clocks")
LEGAL_BASIS = ("Art. 27",)
_SQLITE_CHUNK = 5000   # bound parameters per IN list on SQLite (its limit is 32766)


@dataclass(frozen=True)
class ExpiredDossier:
    """A dossier whose retention ended: ids and dates only, no personal data."""

    id: str
    category: str
    state: str
    retain_until: datetime
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "retain_until": self.retain_until.isoformat()}


@dataclass
class RetentionResult:
    """What one run deleted (or, dry, would delete): dossiers, rows per table, time taken."""

    now: datetime
    dry_run: bool
    dossiers: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    by_rule: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    elapsed_s: float = 0.0
    remaining: int = 0     # still expired after the run: locked by a change at that moment; next run

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_s(self) -> float:
        return self.total_rows / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def dossiers_per_s(self) -> float:
        return self.dossiers / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "dry_run": self.dry_run, "dossiers": self.dossiers,
                "rows": dict(self.rows), "total_rows": self.total_rows, "by_rule": dict(self.by_rule),
                "batches": self.batches, "elapsed_s": round(self.elapsed_s, 3),
                "rows_per_s": round(self.rows_per_s, 1), "dossiers_per_s": round(self.dossiers_per_s, 1),
                "remaining": self.remaining}


def rule_of(row: Any) -> str:
    """Which Art. 27 rule gives the dossier's retain_until (a key of RULES), from its columns."""
    values = row if isinstance(row, dict) else row._mapping
    until, rule = retention(values)
    stored = values["retain_until"]
    if rule is not None and stored is not None and until == as_utc(stored):
        return rule
    return "retain_until"


# the columns a batch reads: enough to name the rule, nothing about the person
_COLUMNS = (dossiers.c.id, dossiers.c.category, dossiers.c.state, dossiers.c.retain_until,
            dossiers.c.application_kind, dossiers.c.residence_outcome, dossiers.c.work_outcome,
            dossiers.c.created_at, dossiers.c.notified_at, dossiers.c.appeal_ended_at)


def _due(now: datetime, after: tuple[datetime, str] | None):
    """Expired dossiers in (retain_until, id) order, after the keyset position `after`."""
    q = select(*_COLUMNS).where(dossiers.c.retain_until <= now)
    if after is not None:
        ru, last_id = after
        # the >= bound lets the index on retain_until start at the position, not at the beginning
        q = q.where(dossiers.c.retain_until >= ru,
                    or_(dossiers.c.retain_until > ru, dossiers.c.id > last_id))
    return q.order_by(dossiers.c.retain_until, dossiers.c.id)


def _expired_of(rows: Iterable[Any]) -> list[ExpiredDossier]:
    return [ExpiredDossier(r.id, r.category, r.state, as_utc(r.retain_until), rule_of(r)) for r in rows]


def expired(engine: Engine, now: datetime, limit: int | None = None) -> list[ExpiredDossier]:
    """Art. 27: the dossiers whose retain_until is at or before `now`, oldest first (no personal data)."""
    now = as_utc(now)
    q = _due(now, None)
    if limit is not None:
        q = q.limit(limit)
    with reader(engine).connect() as conn:
        return _expired_of(conn.execute(q))


def count_expired(engine: Engine, now: datetime) -> int:
    """How many dossiers are due for deletion at `now`."""
    with reader(engine).connect() as conn:
        return conn.execute(select(func.count()).select_from(dossiers)
                            .where(dossiers.c.retain_until <= as_utc(now))).scalar_one()


# --- one batch -------------------------------------------------------------------------------------

class _Sets:
    """`column IN the set` for one dialect: `IN (SELECT unnest(:name))` with the set as one array
    literal on PostgreSQL (formatted here: psycopg's list adapter costs more than the deletion's
    statements; `= ANY(:name)` compared every row with every id when the planner chose a scan),
    an expanding IN elsewhere (chunked on SQLite, whose statements take a bounded number of parameters)."""

    def __init__(self, conn: Connection):
        self.pg = conn.dialect.name == "postgresql"

    def has(self, column, name: str) -> ColumnElement[bool]:
        if self.pg:   # a semi-join on the unnested array: hashed, whatever the planner thinks of the table
            return column.in_(select(func.unnest(cast(bindparam(name, type_=String), ARRAY(String)))))
        return column.in_(bindparam(name, expanding=True))

    def chunks(self, values: Sequence[str]) -> list[Any]:
        """The values as parameters of `has`: one array literal (PostgreSQL) or lists of at most _SQLITE_CHUNK."""
        if self.pg:
            return ["{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"]
        return [list(values[i:i + _SQLITE_CHUNK]) for i in range(0, len(values), _SQLITE_CHUNK)]


# what each table is deleted by: its dossier_id column, or (outbox, enrichment_jobs: keyed by
# message) the ids of the dossier's messages; deliveries and enrichments carry the dossier_id of
# their message. Messages first: deleting them returns their ids.
_BY = (("messages", messages, messages.c.dossier_id, "ids"),
       ("outbox", outbox, outbox.c.message_id, "mids"),
       ("deliveries", deliveries, deliveries.c.dossier_id, "ids"),
       ("enrichment_jobs", enrichment_jobs, enrichment_jobs.c.message_id, "mids"),
       ("enrichments", enrichments, enrichments.c.dossier_id, "ids"),
       ("dossier_clocks", dossier_clocks, dossier_clocks.c.dossier_id, "ids"),
       ("dossiers", dossiers, dossiers.c.id, "ids"))


def _dossier_rows(conn: Connection, sets: _Sets, ids: list[str], *, count: bool) -> dict[str, int]:
    """Delete (or count) every row of these dossiers and of their messages; rows per table."""
    keys: dict[str, list[str]] = {"ids": ids, "mids": []}
    counts: dict[str, int] = {}
    for name, table, column, key in _BY:
        n = 0
        cond = sets.has(column, key)
        for chunk in sets.chunks(keys[key]) if keys[key] else ():
            if table is messages:   # their ids select the outbox rows and enrichment jobs
                stmt = select(messages.c.id) if count else delete(messages).returning(messages.c.id)
                found = conn.execute(stmt.where(cond), {key: chunk}).scalars().all()
                keys["mids"] += found
                n += len(found)
                continue
            stmt = select(func.count()).select_from(table).where(cond) if count else delete(table).where(cond)
            result = conn.execute(stmt, {key: chunk})
            n += result.scalar_one() if count else result.rowcount
        counts[name] = n
    return counts


def _deleted_event(d: ExpiredDossier) -> AuditEvent:
    return AuditEvent("deleted", dossier_id=d.id, correlation_id=d.id, actor=PLATFORM,
                      legal_basis=LEGAL_BASIS,
                      reason=f"retention Art. 27: {RULES[d.rule]} (retain until {d.retain_until.date().isoformat()})")


def _batch(conn: Connection, now: datetime, after: tuple[datetime, str] | None, size: int, *,
           record: Callable[[list[AuditEvent]], None] | None
           ) -> tuple[list[ExpiredDossier], dict[str, int], tuple[datetime, str] | None]:
    """One batch inside the caller's transaction: select (re-checking retain_until <= now), then
    delete or count (no `record`: a dry run). Returns the dossiers, rows per table, and the keyset
    position after them."""
    dry_run = record is None
    sets = _Sets(conn)
    q = _due(now, after).limit(size)
    if sets.pg and not dry_run:
        # a dossier a message is changing right now is skipped (and its new retain_until re-read
        # next run); one whose appeal committed meanwhile no longer matches and is not returned
        q = q.with_for_update(of=dossiers, skip_locked=True)
    rows = conn.execute(q).all()
    if not rows:
        return [], {}, None
    position = (rows[-1].retain_until, rows[-1].id)
    found = _expired_of(rows)
    ids = [d.id for d in found]
    counts = _dossier_rows(conn, sets, ids, count=dry_run)
    if record is not None:   # stamped with the clock: when the deletion happened, whatever `now` judged it
        record([_deleted_event(d) for d in found])
    return found, counts, position


def run(work: UnitOfWork, now: datetime, *, batch: int = 1000, dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None) -> RetentionResult:
    """Art. 27 §2: delete every dossier whose retain_until is at or before `now`, with its messages,
    outbox rows, deliveries, enrichment and clocks; one transaction and one `deleted` audit event
    per dossier per batch. Statistics (stats_facts) and the audit trail stay.

    `dry_run` counts what would go and changes nothing. `progress(done, total)` is called at the
    start and after each batch with the dossiers done so far and the number expired at the start.
    `stop` (the worker's) ends the run between two batches; the rest is left for the next run.
    The `deleted` events carry the clock's time, the decision is taken against `now`.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    now = as_utc(now)
    started = time.perf_counter()
    result = RetentionResult(now=now, dry_run=dry_run)
    total = count_expired(work.reads, now)
    rules: Counter[str] = Counter()
    after: tuple[datetime, str] | None = None
    if progress is not None:
        progress(0, total)
    while stop is None or not stop.is_set():
        if dry_run:
            with work.reads.begin() as conn:
                found, counts, after = _batch(conn, now, after, batch, record=None)
        else:   # a transaction of its own per batch: its rows locked, its `deleted` events in it
            with work.transaction() as tx:
                found, counts, after = _batch(tx.conn, now, after, batch, record=tx.record)
        if not found:
            break
        result.batches += 1
        result.dossiers += counts["dossiers"]
        for name, n in counts.items():
            result.rows[name] += n
        rules.update(d.rule for d in found)
        if progress is not None:
            progress(result.dossiers, max(total, result.dossiers))
    result.by_rule = dict(rules)
    result.remaining = 0 if dry_run else count_expired(work.reads, now)
    result.elapsed_s = time.perf_counter() - started
    return result
