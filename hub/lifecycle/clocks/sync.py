"""One pass over the statutory clocks: start, stop, expire, remind (Law of 15 December 1980, 61/27-4,
61/27-5, 61/29-4, 61/29-5 as contracts/clocks.yaml lays them down).

    start   a dossier that a rule applies to and whose start date is set gets its clock (idempotent:
            unique on dossier, rule and start); one already stopped gets it in its final state
    stop    a running (or expired) clock whose stop condition holds (decided, refused, supplied):
            met / overtaken / late
    expire  a running clock past its due day: `report` → expired (listed, audited);
            `deemed_authorisation` → single-permit.deemed-authorisation through the ingress
    remind  a running clock at its reminder time: platform.clock-reminder to the holder

Every step is a set-based statement (a few per rule at most); only the messages go each on its own
through the hub's ingress (several at a time, so that its group commit batches them), so they are
validated, routed and audited like any other. Message ids are
derived from the clock's id: a pass that is repeated (a crash, two workers) sends nothing twice.
Time is `now`, injected; nothing here reads the wall clock.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, and_, case, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hub.audit import AuditEvent
from hub.domain.clocks import DEEMED_FLOW, REMINDER_FLOW, ClockRule, ClockRules
from hub.domain.dossier import NEGATIVE
from hub.domain.envelope import as_utc
from hub.domain.errors import HubError
from hub.domain.parties import DVZ, PLATFORM
from hub.infra.store.schema import dossier_clocks, dossiers, messages
from hub.infra.store.unit_of_work import Transaction
from hub.messaging.ingress import Ingress, Submission, submit

__all__ = ["SyncResult", "sync"]

log = structlog.get_logger("hub.lifecycle.clocks")
OPEN = ("running", "expired")
_CHUNK = 500
_PARALLEL = 16               # submissions in flight at once (the ingress commits them in groups)
c, d = dossier_clocks.c, dossiers.c


@dataclass
class SyncResult:
    started: int = 0
    stopped: int = 0
    voided: int = 0                                       # the dossier is gone (retention)
    expired: list[int] = field(default_factory=list)      # clock ids
    deemed: list[str] = field(default_factory=list)       # dossier ids deemed authorised
    reminded: list[int] = field(default_factory=list)     # clock ids
    failed: list[tuple[int, str]] = field(default_factory=list)   # clock id, error code

    def as_json(self) -> dict[str, Any]:
        return {"started": self.started, "stopped": self.stopped, "voided": self.voided,
                "expired": len(self.expired), "deemed_authorised": list(self.deemed),
                "reminded": len(self.reminded), "failed": [{"clock": i, "error": e} for i, e in self.failed]}


def sync(ingress: Ingress, rules: ClockRules, now: datetime) -> SyncResult:
    """Bring every clock up to `now` (aware): start, stop, expire, remind. Safe to run again, and
    from several workers at once."""
    now = as_utc(now)
    work, result = ingress.work, SyncResult()
    with work.engine.begin() as conn:
        result.started = _start(conn, rules)
    with work.engine.begin() as conn:
        result.voided = conn.execute(update(dossier_clocks).where(c.outcome.in_(OPEN))
                                     .where(~exists().where(d.id == c.dossier_id))
                                     .values(outcome="void", stopped_at=now)).rowcount
        for rule in rules:
            result.stopped += _stop(conn, rule, now)
    with work.transaction() as tx:
        result.expired = _expire_reported(tx, rules, now)
    _deem(ingress, rules, now, result)
    _remind(ingress, rules, now, result)
    if result.started or result.stopped or result.expired or result.deemed or result.reminded or result.failed:
        log.info("clocks_synced", started=result.started, stopped=result.stopped, voided=result.voided,
                 expired=len(result.expired), deemed=len(result.deemed), reminded=len(result.reminded),
                 failed=len(result.failed))
    return result


# --- start -------------------------------------------------------------------------------------------

def _start(conn: Connection, rules: ClockRules) -> int:
    """Insert the clocks that are not there yet: per start date, one SELECT of the dossiers with a
    start and no clock of that start yet (only these have their application fields read), then
    one batched INSERT."""
    rows = []
    for starts in sorted({r.starts for r in rules}):
        group = [r for r in rules if r.starts == starts]
        start = d[starts]
        fields = sorted({name for r in group for name in r.application})
        q = select(d.id, d.category, d.application_kind, d.competent_region, start.label("started_at"),
                   d.complete_at, d.incomplete_since, d.decided_at, d.residence_outcome, d.work_outcome,
                   d.application["request_type"].as_string().label("request_type"),
                   *(d.application[name].as_boolean().label(f"f_{i}") for i, name in enumerate(fields))) \
            .where(start.is_not(None)).where(d.category.in_(sorted({x for r in group for x in r.categories}))) \
            .where(~exists().where(c.dossier_id == d.id, c.started_at == start, c.rule.in_([r.id for r in group])))
        for r in conn.execute(q):
            values = {name: bool(r._mapping[f"f_{i}"]) for i, name in enumerate(fields)}   # absent: false
            rule = next((x for x in group if x.matches(r.category, r.application_kind, r.request_type or "first",
                                                       values, r._mapping)), None)
            if rule is None:   # e.g. documents asked for before admissibility: no statutory clock
                continue
            due_at, remind_at = rules.schedule(rule, as_utc(r.started_at))
            outcome, stopped_at = _already_stopped(rule, r, due_at)
            rows.append(dict(dossier_id=r.id, rule=rule.id, holder=rule.holder_for(r.competent_region),
                             started_at=r.started_at, due_at=due_at, remind_at=remind_at, outcome=outcome,
                             stopped_at=stopped_at))
    if not rows:
        return 0
    # one compiled statement, executemany (batched "insertmanyvalues"); a clock another worker
    # started meanwhile is skipped by the unique key
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(dossier_clocks).on_conflict_do_nothing(
        index_elements=["dossier_id", "rule", "started_at"]).returning(c.id)
    return len(conn.execute(stmt, rows).all())


def _already_stopped(rule: ClockRule, r: Any, due_at: datetime) -> tuple[str, datetime | None]:
    """A dossier found already past its stop condition (decided before the first scan) gets its clock
    in the final state, so later scans skip it."""
    for condition, outcome in rule.stops.items():
        if condition == "decided" and r.decided_at is not None:
            late = outcome == "met" and as_utc(r.decided_at) > due_at
            return ("late" if late else outcome), r.decided_at
        if condition == "supplied" and r.incomplete_since != r.started_at:
            return outcome, None
        if condition == "refused" and (r.residence_outcome in NEGATIVE or r.work_outcome in NEGATIVE):
            return outcome, None
    return "running", None


# --- stop --------------------------------------------------------------------------------------------

def _stop(conn: Connection, rule: ClockRule, now: datetime) -> int:
    """Stop the open clocks of `rule` whose condition holds, conditions in the rule's order."""
    stopped = 0
    for condition, outcome in rule.stops.items():
        base = update(dossier_clocks).where(c.rule == rule.id).where(c.outcome.in_(OPEN))
        if condition == "decided":
            decided_at = select(d.decided_at).where(d.id == c.dossier_id).scalar_subquery()
            stmt = base.where(exists().where(d.id == c.dossier_id, d.decided_at.is_not(None)))
            if outcome == "met":
                value = case((or_(c.outcome == "expired", decided_at > c.due_at), "late"), else_="met")
            else:
                value = outcome
            stmt = stmt.values(outcome=value, stopped_at=decided_at)
        else:
            if condition == "supplied":   # the request this clock counts from is no longer the open one
                stmt = base.where(~exists().where(d.id == c.dossier_id, d.incomplete_since == c.started_at))
            else:                         # refused: one part refused, withdrawn or ended decides the case
                stmt = base.where(exists().where(d.id == c.dossier_id, or_(d.residence_outcome.in_(sorted(NEGATIVE)),
                                                                           d.work_outcome.in_(sorted(NEGATIVE)))))
            value = case((c.outcome == "expired", "late"), else_="met") if outcome == "met" else outcome
            stmt = stmt.values(outcome=value, stopped_at=now)
        stopped += conn.execute(stmt).rowcount
    return stopped


# --- expire ------------------------------------------------------------------------------------------

def _expire_reported(tx: Transaction, rules: ClockRules, now: datetime) -> list[int]:
    """`report`: the clock is listed as expired from now on; one audit event per clock (ids only)."""
    conn = tx.conn
    reported = [r.id for r in rules if r.on_expiry == "report"]
    if not reported:
        return []
    rows = conn.execute(select(c.id, c.dossier_id, c.rule).where(c.outcome == "running")
                        .where(c.due_at < now).where(c.rule.in_(reported))).all()
    ids = [r.id for r in rows]
    for i in range(0, len(ids), _CHUNK):
        conn.execute(update(dossier_clocks).where(c.id.in_(ids[i:i + _CHUNK])).where(c.outcome == "running")
                     .values(outcome="expired"))
    if rows:
        tx.record([AuditEvent("clock_expired", dossier_id=r.dossier_id, actor=PLATFORM,
                              legal_basis=rules.get(r.rule).legal_basis, reason=f"clock {r.rule}")
                   for r in rows])
    return ids


def _deem(ingress: Ingress, rules: ClockRules, now: datetime, result: SyncResult) -> None:
    """`deemed_authorisation` (61/27-4 §2, 61/27-5 §3): no decision on both parts in time, so residence
    and work are deemed authorised; DVZ and the competent region are told, the dossier is decided."""
    deemed = [r.id for r in rules if r.on_expiry == "deemed_authorisation"]
    if not deemed:
        return
    with ingress.work.reads.connect() as conn:
        rows = conn.execute(select(c.id, c.dossier_id, c.rule, c.due_at, d.complete_at, d.competent_region)
                            .join(dossiers, d.id == c.dossier_id).where(c.outcome == "running")
                            .where(c.due_at < now).where(c.rule.in_(deemed)).order_by(c.due_at)).all()

    def submission(r: Any) -> Submission:
        rule = rules.get(r.rule)
        payload = {"dossier_id": r.dossier_id, "clock": rule.id, "complete_at": as_utc(r.complete_at).isoformat(),
                   "due_at": _local_iso(rules, r.due_at), "legal_basis": rule.legal_basis_text}
        return Submission(DEEMED_FLOW, PLATFORM, payload, recipients=(DVZ, r.competent_region),
                          dossier_id=r.dossier_id, message_id=f"clock-{r.id}-deemed")

    refusals = _send_all(ingress, [submission(r) for r in rows])
    sent = [r for r, refused in zip(rows, refusals) if refused is None]
    failed = [(r, refused) for r, refused in zip(rows, refusals) if refused is not None]
    with ingress.work.engine.begin() as conn:
        # a concurrent pass may have marked one meanwhile (its stop pass saw the decision this message
        # made, or its own submission lost the race): the message went out, so this is the outcome
        _update(conn, [r.id for r in sent], OPEN + ("met", "late"), outcome="deemed_authorised", stopped_at=now)
        # the dossier could not be deemed authorised (it moved meanwhile): listed as expired rather
        # than tried again every scan; a decision that raced in turns it into `late` next time
        _update(conn, [r.id for r, _ in failed], ("running",), outcome="expired")
    result.deemed += [r.dossier_id for r in sent]
    result.failed += [(r.id, refused) for r, refused in failed]


# --- remind ------------------------------------------------------------------------------------------

def _remind(ingress: Ingress, rules: ClockRules, now: datetime, result: SyncResult) -> None:
    """platform.clock-reminder to the holder of each running clock whose reminder time has come."""
    with ingress.work.reads.connect() as conn:
        rows = conn.execute(select(c.id, c.dossier_id, c.rule, c.holder, c.due_at)
                            .where(c.outcome == "running").where(c.reminded_at.is_(None))
                            .where(c.remind_at <= now).where(c.due_at >= now).order_by(c.due_at)).all()
        sent = set()
        for i in range(0, len(rows), _CHUNK):   # sent by an earlier pass that stopped before noting it
            ids = [_reminder_id(r.id) for r in rows[i:i + _CHUNK]]
            sent |= set(conn.execute(select(messages.c.id).where(messages.c.id.in_(ids))).scalars())
    # a rule taken out of clocks.yaml: its clocks stay, silent; one already sent: only noted
    todo = [r for r in rows if rules.get(r.rule) is not None and _reminder_id(r.id) not in sent]

    def submission(r: Any) -> Submission:
        rule = rules.get(r.rule)
        payload = {"dossier_id": r.dossier_id, "clock": rule.id, "due_at": _local_iso(rules, r.due_at),
                   "days_left": rules.calendar.days_left(as_utc(r.due_at), now), "legal_basis": rule.legal_basis_text}
        return Submission(REMINDER_FLOW, PLATFORM, payload, recipients=(r.holder,), dossier_id=r.dossier_id,
                          message_id=_reminder_id(r.id))

    refusals = dict(zip((r.id for r in todo), _send_all(ingress, [submission(r) for r in todo])))
    result.failed += [(i, refused) for i, refused in refusals.items() if refused is not None]
    result.reminded += [r.id for r in rows if refusals.get(r.id) is None and rules.get(r.rule) is not None]
    with ingress.work.engine.begin() as conn:   # refused ones too: not tried again every scan
        _update(conn, [r.id for r in rows], OPEN, c.reminded_at.is_(None), reminded_at=now)


def _reminder_id(clock_id: int) -> str:
    return f"clock-{clock_id}-reminder"


# --- helpers -----------------------------------------------------------------------------------------

def _send(ingress: Ingress, submission: Submission) -> str | None:
    """Submit through the ingress; None when the message is in (now, or from a concurrent pass whose
    write won the race: ours is then refused as a move of a dossier that moved meanwhile), else the
    refusal's code."""
    try:
        submit(ingress, submission)
        return None
    except HubError as err:
        with ingress.work.reads.connect() as conn:
            if conn.execute(select(messages.c.id).where(messages.c.id == submission.message_id)).first():
                return None
        log.warning("clock_message_refused", flow=submission.flow_id, message_id=submission.message_id,
                    dossier_id=submission.dossier_id, error=err.code)
        return err.code


def _send_all(ingress: Ingress, submissions: list[Submission]) -> list[str | None]:
    """Several at once, so that the ingress's group commit writes them in shared transactions."""
    if len(submissions) <= 1:
        return [_send(ingress, s) for s in submissions]
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(submissions)), thread_name_prefix="clocks") as pool:
        return list(pool.map(lambda s: _send(ingress, s), submissions))


def _update(conn: Connection, ids: list[int], when: tuple[str, ...], *also: Any, **values: Any) -> None:
    """Set `values` on the clocks `ids` that are still in one of the outcomes `when`."""
    for i in range(0, len(ids), _CHUNK):
        conn.execute(update(dossier_clocks).where(and_(c.id.in_(ids[i:i + _CHUNK]), c.outcome.in_(when), *also))
                     .values(**values))


def _local_iso(rules: ClockRules, t: datetime) -> str:
    return as_utc(t).astimezone(rules.calendar.zone).isoformat()
