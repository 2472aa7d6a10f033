"""Data-subject requests (Art. 28–29; GDPR arts. 12, 15–21): routed to the competent controller,
each with a dated acknowledgment of receipt and a due date (the export: rights/export.py).

Routing (Art. 29): DVZ answers about the residence authorisation; the competent region about the
work authorisation, the professional card and the single permit. A request is due one calendar
month after receipt (GDPR art. 12(3)), counted as Regulation 1182/71 counts months: the same date
of the next month, or that month's last day when it has no such date (31 Jan → 28/29 Feb), to the
end of that day in Brussels, moved to the next working day when it falls on a Saturday, a Sunday or
a Belgian public holiday.
"""
from __future__ import annotations

import calendar
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping

from sqlalchemy import Engine, and_, func, or_, select, update

from hub.audit import AuditEvent
from hub.domain.clocks import Calendar
from hub.domain.envelope import as_utc, iso_utc
from hub.domain.errors import InvalidTransition, MalformedMessage, NotAuthorised, NotFound
from hub.domain.flows import REGION_PARTIES, Registry, region_party
from hub.domain.identifiers import is_valid_insz
from hub.domain.parties import DVZ
from hub.infra.store.schema import dossiers, rights_requests
from hub.infra.store.unit_of_work import UnitOfWork

__all__ = [
    "KINDS", "CONCERNING", "EXPORT_KINDS", "OUTCOMES", "EXPORT_FORMAT", "RightsRequest",
    "submit_request", "acknowledgment", "get_request", "list_requests", "count_overdue", "answer", "extend",
    "record_listing", "check_identifiers", "may_bring_requests", "due_date", "add_months",
    "normalise_passport", "own_request", "subject_filter", "request_from_row", "require_controller",
]

KINDS = ("access", "rectification", "erasure", "restriction", "portability", "objection")
GDPR_ARTICLE = {"access": "GDPR art. 15", "rectification": "GDPR art. 16", "erasure": "GDPR art. 17",
                "restriction": "GDPR art. 18", "portability": "GDPR art. 20", "objection": "GDPR art. 21"}
CONCERNING = ("residence", "work", "single_permit", "professional_card")
EXPORT_KINDS = frozenset({"access", "portability"})
OUTCOMES = ("granted", "partly_granted", "refused", "no_data")
EXPORT_FORMAT = "wib-hub.subject-export/1"
LEGAL_BASIS = ("Art. 28", "Art. 29", "GDPR art. 12(3)")
CALENDAR = Calendar("Europe/Brussels", "BE")   # the statutory clocks' calendar (hub.domain.clocks)
_PASSPORT = re.compile(r"[A-Z0-9]{5,20}")   # as the application contract has it
_NEXT_STEPS = {
    "access": "The controller checks your identity and sends you a copy of your data held on the platform.",
    "portability": "The controller checks your identity and sends you the data you provided, as a JSON file.",
    "rectification": "The controller examines the correction you ask for and tells you what it changed.",
    "erasure": "The controller examines whether your data may be erased before the end of the legal "
               "retention period (Art. 27) and tells you its decision.",
    "restriction": "The controller examines whether the processing must be restricted and tells you its decision.",
    "objection": "The controller examines your objection and tells you its decision.",
}


# --- the month of GDPR art. 12(3) ------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """The same date `months` later; the last day of that month when it has no such date (31 Jan → 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def due_date(received_at: datetime) -> datetime:
    """GDPR art. 12(3): one month from receipt (module docstring: how the month is counted), as the
    last second of the due day in Brussels, in UTC."""
    return CALENDAR.end_of(_working_day(add_months(CALENDAR.local_date(received_at), 1)))


def _working_day(day: date) -> date:
    while not CALENDAR.is_working_day(day):
        day += timedelta(days=1)
    return day


# --- the request -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RightsRequest:
    id: str
    kind: str
    concerning: str
    controller: str
    submitted_by: str
    subject_insz: str | None
    subject_passport: str | None
    details: dict[str, Any] | None
    received_at: datetime
    acknowledged_at: datetime
    due_at: datetime
    state: str
    answered_at: datetime | None = None
    answer: dict[str, Any] | None = None
    extended_at: datetime | None = None
    extension_reason: str | None = None

    def overdue(self, now: datetime) -> bool:
        """Still open after its due date (answered late counts as late, not overdue)."""
        return self.state == "open" and now > self.due_at

    def as_json(self, now: datetime) -> dict[str, Any]:
        out = {k: iso_utc(v) for k, v in asdict(self).items()}
        out["overdue"] = self.overdue(now)
        out["late"] = self.answered_at is not None and self.answered_at > self.due_at
        return out


def request_from_row(r: Mapping[str, Any]) -> RightsRequest:
    row = dict(r)
    for k in ("received_at", "acknowledged_at", "due_at", "answered_at", "extended_at"):
        row[k] = as_utc(row[k])
    return RightsRequest(**row)


def normalise_passport(value: str) -> str:
    """A passport number as the application contract stores it: capitals and digits, no spaces or dashes."""
    return re.sub(r"[\s.\-]", "", value).upper()


def check_identifiers(insz: str | None, passport: str | None) -> tuple[str | None, str | None]:
    """At least one identifier; a valid INSZ (check digits); a passport number as the contract has it."""
    if not insz and not passport:
        raise MalformedMessage("give the person's INSZ or passport number (or both)", code="no_identifier")
    if insz is not None and not is_valid_insz(insz):
        raise MalformedMessage("insz: not a valid INSZ/NISS (11 digits, check digits)", code="invalid_insz")
    if passport is not None:
        passport = normalise_passport(passport)
        if not _PASSPORT.fullmatch(passport):
            raise MalformedMessage("passport: 5 to 20 letters and digits", code="invalid_passport")
    return insz or None, passport or None


def subject_filter(table, insz: str | None, passport: str | None):
    clauses = []
    if insz:
        clauses.append(table.c.subject_insz == insz)
    if passport:
        clauses.append(table.c.subject_passport == passport)
    return or_(*clauses)


def _region(value: str) -> str:
    """A dossier's or a request's region as the regional authority's party id."""
    return value if value in REGION_PARTIES.values() else region_party(value)


def is_controller(party: str) -> bool:
    """Art. 29: requests are handled by DVZ (residence) and the regions (work, single permit, card)."""
    return party == DVZ or party in REGION_PARTIES.values()


def require_controller(party: str) -> None:
    if not is_controller(party):
        raise NotAuthorised("rights requests are handled by DVZ and the regions (Art. 29)", code="not_a_controller")


def may_bring_requests(registry: Registry, party: str) -> bool:
    """Art. 28–29: the portal, on the data subject's behalf, or a controller that received one directly."""
    p = registry.parties.get(party)
    return p is not None and (p.kind == "portal" or is_controller(party))


def _controller(conn, concerning: str, insz: str | None, passport: str | None, region: str | None) -> str:
    """Art. 29: DVZ for residence; else the region competent for the person's most recent dossier of
    that kind (any dossier when none), or the region the request names when the hub has no dossier."""
    if concerning == "residence":
        return DVZ
    rows = conn.execute(select(dossiers.c.competent_region, dossiers.c.application_kind)
                        .where(subject_filter(dossiers, insz, passport))
                        .order_by(dossiers.c.created_at.desc(), dossiers.c.id.desc())).all()
    wanted = {"professional_card"} if concerning == "professional_card" else {"single_permit", "work_permit"}
    for r in rows:
        if r.application_kind in wanted:
            return _region(r.competent_region)
    if rows:
        return _region(rows[0].competent_region)
    if region:
        return _region(region)
    raise MalformedMessage("the person has no dossier on the platform: name the competent region",
                           code="controller_unknown")


def submit_request(work: UnitOfWork, registry: Registry, *, kind: str, concerning: str, insz: str | None = None,
                   passport: str | None = None, details: dict[str, Any] | None = None, region: str | None = None,
                   submitted_by: str, acting_person: str | None = None, received_at: datetime | None = None,
                   now: datetime) -> RightsRequest:
    """Art. 28–29: record a request with the competent controller, acknowledged and dated on receipt.

    `received_at` is when the request reached the platform or, for a request a controller received
    directly, that controller (the month runs from then); it may not be in the future.
    """
    if not may_bring_requests(registry, submitted_by):
        raise NotAuthorised("rights requests come from the portal or a controller (DVZ, a region)",
                            code="not_rights_channel")
    if kind not in KINDS:
        raise MalformedMessage(f"kind: one of {', '.join(KINDS)}", code="unknown_kind")
    if concerning not in CONCERNING:
        raise MalformedMessage(f"concerning: one of {', '.join(CONCERNING)}", code="unknown_concerning")
    insz, passport = check_identifiers(insz, passport)
    if region is not None and region not in REGION_PARTIES and region not in REGION_PARTIES.values():
        raise MalformedMessage(f"region: one of {', '.join(REGION_PARTIES)}", code="unknown_region")
    now = now.astimezone(timezone.utc)
    received = (received_at or now).astimezone(timezone.utc)
    if received > now:
        raise MalformedMessage("received_at is in the future", code="invalid_request")
    with work.transaction(now) as tx:
        conn = tx.conn
        controller = _controller(conn, concerning, insz, passport, region)
        req = RightsRequest(id=str(uuid.uuid4()), kind=kind, concerning=concerning, controller=controller,
                            submitted_by=submitted_by, subject_insz=insz, subject_passport=passport,
                            details=details or None, received_at=received, acknowledged_at=now,
                            due_at=due_date(received), state="open")
        conn.execute(rights_requests.insert().values(**asdict(req)))
        tx.record([AuditEvent("rights_request", actor=submitted_by, acting_person=acting_person,
                              recipient=controller, legal_basis=LEGAL_BASIS + (GDPR_ARTICLE[kind],),
                              reason=f"{kind} {concerning} request {req.id}")])
    return req


def acknowledgment(req: RightsRequest, registry: Registry | None = None) -> dict[str, Any]:
    """Art. 29 §4: the dated acknowledgment of receipt — the reference, the controller, the dates and
    what happens next; nothing about the person (it may be read by whoever carries it)."""
    party = registry.parties.get(req.controller) if registry is not None else None
    return {
        "reference": req.id, "kind": req.kind, "right": GDPR_ARTICLE[req.kind], "concerning": req.concerning,
        "controller": req.controller, "controller_name": dict(party.name) if party else None,
        "received_at": iso_utc(req.received_at), "acknowledged_at": iso_utc(req.acknowledged_at),
        "due_at": iso_utc(req.due_at),
        "due_rule": "one calendar month from receipt (GDPR art. 12(3)), to the end of that day in Brussels; "
                    "the next working day when it is a Saturday, Sunday or public holiday",
        "next_steps": _NEXT_STEPS[req.kind] + " The controller may extend the period by two further months "
                      "for complex or numerous requests; it then tells you why within the first month.",
        "state": req.state,
    }


def get_request(reads: Engine, request_id: str) -> RightsRequest:
    with reads.connect() as conn:
        row = conn.execute(select(rights_requests).where(rights_requests.c.id == request_id)).mappings().first()
    if row is None:
        raise NotFound(f"no rights request {request_id[:40]}", code="unknown_request")
    return request_from_row(row)


def own_request(reads: Engine, request_id: str, controller: str) -> RightsRequest:
    """The request, if `controller` is the one it went to (Art. 29: each answers for its own)."""
    req = get_request(reads, request_id)
    if req.controller != controller:
        raise NotAuthorised("only the controller the request went to handles it", code="not_request_controller")
    return req


def list_requests(reads: Engine, controller: str | None, now: datetime, overdue_only: bool = False,
                  state: str | None = None, *, after: tuple[datetime, str] | None = None,
                  limit: int | None = None) -> list[RightsRequest]:
    """A controller's requests (all controllers' when None), oldest due first (then by id); overdue
    ones flagged by RightsRequest.overdue(now). A page: at most `limit`, those after the (due_at, id)
    of the previous page's last one."""
    q = _listing(select(rights_requests), controller, now, overdue_only, state)
    q = q.order_by(rights_requests.c.due_at, rights_requests.c.id)
    if after is not None:
        due, last = after
        q = q.where(or_(rights_requests.c.due_at > due,
                        and_(rights_requests.c.due_at == due, rights_requests.c.id > last)))
    if limit is not None:
        q = q.limit(limit)
    with reads.connect() as conn:
        return [request_from_row(r) for r in conn.execute(q).mappings()]


def count_overdue(reads: Engine, controller: str | None, now: datetime) -> int:
    """How many of the controller's open requests are past their due date (all pages)."""
    q = _listing(select(func.count()).select_from(rights_requests), controller, now, True, None)
    with reads.connect() as conn:
        return conn.execute(q).scalar_one()


def _listing(q: Any, controller: str | None, now: datetime, overdue_only: bool, state: str | None) -> Any:
    if controller is not None:
        q = q.where(rights_requests.c.controller == controller)
    if overdue_only:
        q = q.where(rights_requests.c.state == "open").where(rights_requests.c.due_at < now.astimezone(timezone.utc))
    elif state is not None:
        q = q.where(rights_requests.c.state == state)
    return q


def record_listing(work: UnitOfWork, actor: str, acting_person: str | None, count: int, channel: str,
                   now: datetime) -> None:
    """A look at the request list (it names people) is on the record too: ids and counts only."""
    work.record([AuditEvent("consulted", actor=actor, acting_person=acting_person, legal_basis=LEGAL_BASIS,
                            reason=f"{channel} rights list: {count} requests")], at=now)


def answer(work: UnitOfWork, request_id: str, controller: str, reply: dict[str, Any], now: datetime,
           acting_person: str | None = None) -> RightsRequest:
    """Close a request with the controller's answer: {"outcome": granted|partly_granted|refused|no_data,
    "note": text}. Only the request's controller, only once (409 `already_answered`)."""
    if not isinstance(reply, dict) or reply.get("outcome") not in OUTCOMES:
        raise MalformedMessage(f"outcome: one of {', '.join(OUTCOMES)}", code="unknown_outcome")
    if set(reply) - {"outcome", "note"} or not isinstance(reply.get("note", ""), str) \
            or len(reply.get("note", "")) > 4000:
        raise MalformedMessage("an answer has an outcome and an optional note (text, at most 4000 characters)",
                               code="invalid_request")
    req = own_request(work.reads, request_id, controller)
    stored = {"outcome": reply["outcome"], "note": reply.get("note")}
    with work.transaction(now) as tx:
        done = tx.conn.execute(update(rights_requests).where(rights_requests.c.id == request_id)
                            .where(rights_requests.c.state == "open")
                            .values(state="answered", answered_at=now, answer=stored))
        if done.rowcount != 1:
            raise InvalidTransition({"from": req.state, "detail": "the request was already answered"},
                                    code="already_answered")
        late = " late" if now > req.due_at else ""
        tx.record([AuditEvent("rights_answered", actor=controller, acting_person=acting_person,
                              legal_basis=LEGAL_BASIS + (GDPR_ARTICLE[req.kind],),
                              reason=f"{req.kind} {reply['outcome']}{late} request {req.id}")])
    return get_request(work.reads, request_id)


def extend(work: UnitOfWork, request_id: str, controller: str, reason: str, now: datetime,
           acting_person: str | None = None) -> RightsRequest:
    """GDPR art. 12(3): the controller extends the period by two further months, once, for complex or
    numerous requests, and tells the person why within the first month: only an open request, before
    its first due date (409 `not_extendable`); the reason is kept for the person and the record."""
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= 2000:
        raise MalformedMessage("reason: why the request needs more time (1 to 2000 characters)", code="invalid_request")
    req = own_request(work.reads, request_id, controller)
    if req.state != "open" or req.extended_at is not None or now > req.due_at:
        raise InvalidTransition({"from": req.state, "detail": "a request is extended once, while open, "
                                 "before its first due date"}, code="not_extendable")
    due = CALENDAR.end_of(_working_day(add_months(CALENDAR.local_date(req.received_at), 3)))
    with work.transaction(now) as tx:
        done = tx.conn.execute(update(rights_requests).where(rights_requests.c.id == request_id)
                            .where(rights_requests.c.state == "open").where(rights_requests.c.extended_at.is_(None))
                            .values(due_at=due, extended_at=now, extension_reason=reason))
        if done.rowcount != 1:
            raise InvalidTransition({"from": req.state, "detail": "extended or answered meanwhile"},
                                    code="not_extendable")
        tx.record([AuditEvent("rights_extended", actor=controller, acting_person=acting_person,
                              legal_basis=LEGAL_BASIS + (GDPR_ARTICLE[req.kind],),
                              reason=f"{req.kind} request {req.id} due {due.date().isoformat()}")])
    return get_request(work.reads, request_id)
