"""Reading the clocks: what is due (`wib-hub clocks due`, GET /v1/clocks) and a dossier's clocks.

The statutory clocks are held by DVZ (residence) and the regional authorities (work); each holder
sees its own, and a dossier's clocks are for DVZ and the dossier's competent region. Every read by
an authority is one `consulted` audit event, with counts, never personal data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from hub.audit import AuditEvent
from hub.domain.clocks import ClockRules
from hub.domain.envelope import as_utc
from hub.domain.errors import MalformedMessage, NotAuthorised, UnknownDossier
from hub.domain.flows import Registry
from hub.domain.parties import DVZ
from hub.infra.store.db import reader
from hub.infra.store.schema import dossier_clocks, dossiers
from hub.infra.store.unit_of_work import UnitOfWork

__all__ = ["ClockView", "due", "clock_of", "parse_duration", "holder_clocks", "dossier_clocks_for"]

c = dossier_clocks.c


@dataclass(frozen=True)
class ClockView:
    """One clock of one dossier; ids, rule, holder and dates only (no personal data)."""

    id: int | None            # None: a clock the next scan will start (clock_of with rules)
    dossier_id: str
    rule: str
    holder: str
    started_at: datetime
    due_at: datetime
    remind_at: datetime | None
    reminded_at: datetime | None
    stopped_at: datetime | None
    outcome: str

    def overdue(self, now: datetime) -> bool:
        return self.outcome in ("running", "expired", "pending") and self.due_at < as_utc(now)

    def as_json(self, now: datetime | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "dossier_id": self.dossier_id, "clock": self.rule, "holder": self.holder,
            "outcome": self.outcome, "started_at": _iso(self.started_at), "due_at": _iso(self.due_at),
            "remind_at": _iso(self.remind_at), "reminded_at": _iso(self.reminded_at),
            "stopped_at": _iso(self.stopped_at)}
        if now is not None:
            body["overdue"] = self.overdue(now)
            body["hours_left"] = round((self.due_at - as_utc(now)) / timedelta(hours=1), 1)
        return body


def due(engine: Engine, now: datetime, within: timedelta, holder: str | None = None,
        limit: int | None = None) -> list[ClockView]:
    """Running clocks due by `now + within`, and overdue ones (expired, still undecided), soonest first."""
    now = as_utc(now)
    q = select(dossier_clocks).where(or_(and_(c.outcome == "running", c.due_at <= now + within),
                                         c.outcome == "expired")).order_by(c.due_at, c.id)
    if holder is not None:
        q = q.where(c.holder == holder)
    if limit is not None:
        q = q.limit(limit)
    with reader(engine).connect() as conn:
        return [_view(r) for r in conn.execute(q).mappings()]


def clock_of(engine: Engine, dossier_id: str, rules: ClockRules | None = None) -> list[ClockView]:
    """Every clock a dossier ever had, in the order they started. With `rules`, also the clocks its
    rules give it that the next scan will start (outcome `pending`, id None): the demo and the API
    show a dossier's deadline as soon as it is complete."""
    q = select(dossier_clocks).where(c.dossier_id == dossier_id).order_by(c.started_at, c.id)
    with reader(engine).connect() as conn:
        views = [_view(r) for r in conn.execute(q).mappings()]
        if rules is not None:
            views += _pending(conn, rules, dossier_id, {(v.rule, v.started_at) for v in views})
    return sorted(views, key=lambda v: (v.started_at, v.id or 0))


def _pending(conn: Any, rules: ClockRules, dossier_id: str, started: set[tuple[str, datetime]]) -> list[ClockView]:
    d = dossiers.c
    fields = sorted({name for r in rules for name in r.application})
    row = conn.execute(select(d.category, d.application_kind, d.competent_region, d.complete_at, d.incomplete_since,
                              d.application["request_type"].as_string().label("request_type"),
                              *(d.application[n].as_boolean().label(f"f_{i}") for i, n in enumerate(fields)))
                       .where(d.id == dossier_id)).mappings().first()
    if row is None:
        return []
    values = {n: bool(row[f"f_{i}"]) for i, n in enumerate(fields)}
    out = []
    for rule in rules:
        start = row[rule.starts]
        if start is None or (rule.id, as_utc(start)) in started:
            continue
        if rule.matches(row["category"], row["application_kind"], row["request_type"] or "first", values, row):
            due_at, remind_at = rules.schedule(rule, as_utc(start))
            out.append(ClockView(None, dossier_id, rule.id, rule.holder_for(row["competent_region"]), as_utc(start),
                                 due_at, remind_at, None, None, "pending"))
    return out


_DURATION = re.compile(r"(\d{1,5})([wdhm])")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(text: str) -> timedelta:
    """`7d`, `36h`, `2w`, `1d12h`, `90m` → a timedelta; ValueError otherwise."""
    value = (text or "").strip().lower()
    parts = _DURATION.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {text[:20]!r} (e.g. 7d, 36h, 2w, 1d12h)")
    return sum((int(n) * _UNITS[u] for n, u in parts), timedelta())


def _view(r: Any) -> ClockView:
    return ClockView(r["id"], r["dossier_id"], r["rule"], r["holder"], as_utc(r["started_at"]), as_utc(r["due_at"]),
                     as_utc(r["remind_at"]), as_utc(r["reminded_at"]), as_utc(r["stopped_at"]), r["outcome"])


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


# --- what an authority reads (GET /v1/clocks, GET /v1/dossiers/{id}/clocks) -----------------------

def holder_clocks(work: UnitOfWork, registry: Registry, rules: ClockRules, party: str, acting_person: str | None,
                  now: datetime, within: str, limit: int) -> dict[str, Any]:
    """The clocks `party` holds that are due within the window (e.g. "7d"), and its overdue ones."""
    _require_holder(registry, party)
    try:
        window = parse_duration(within)
    except ValueError as err:
        raise MalformedMessage([{"in": "query", "name": "within", "detail": str(err)}], code="invalid_request") from None
    views = due(work.reads, now, window, holder=party, limit=limit)
    _consulted(work, party, acting_person, f"GET /v1/clocks within={within} count={len(views)}")
    return {"holder": party, "now": now.isoformat(), "within": within,
            "clocks": [clock_json(rules, v, now) for v in views]}


def dossier_clocks_for(work: UnitOfWork, registry: Registry, rules: ClockRules, party: str,
                       acting_person: str | None, now: datetime, dossier_id: str) -> dict[str, Any]:
    """A dossier's clocks, for DVZ and its competent region."""
    _require_holder(registry, party)
    with work.reads.connect() as conn:
        region = conn.execute(select(dossiers.c.competent_region).where(dossiers.c.id == dossier_id)).scalar()
    if region is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    if party not in (DVZ, region):
        raise NotAuthorised("only DVZ and the competent region follow this dossier's clocks",
                            code="not_party_to_dossier")
    views = clock_of(work.reads, dossier_id, rules)
    _consulted(work, party, acting_person, f"GET /v1/dossiers/clocks count={len(views)}", dossier_id=dossier_id)
    return {"dossier_id": dossier_id, "now": now.isoformat(), "clocks": [clock_json(rules, v, now) for v in views]}


def clock_json(rules: ClockRules, view: ClockView, now: datetime) -> dict[str, Any]:
    rule = rules.get(view.rule)
    return {**view.as_json(now), "days_left": rules.calendar.days_left(view.due_at, now),
            "title": rule.title if rule else None, "legal_basis": list(rule.legal_basis) if rule else [],
            "on_expiry": rule.on_expiry if rule else None}


def _require_holder(registry: Registry, party_id: str) -> None:
    party = registry.parties.get(party_id)
    if party is None or party.examines is None:   # DVZ (residence) and the regional authorities (work)
        raise NotAuthorised("statutory clocks are held by DVZ and the regional authorities only",
                            code="not_clock_holder")


def _consulted(work: UnitOfWork, party: str, acting_person: str | None, reason: str,
               dossier_id: str | None = None) -> None:
    work.record([AuditEvent("consulted", actor=party, acting_person=acting_person, dossier_id=dossier_id,
                            data_categories=["administrative"], reason=reason)])
