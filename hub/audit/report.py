"""The security officer's report on the audit trail (Art. 8 §2, Art. 16, Art. 17; GDPR art. 32).

Four sections over a time range:
  * denied attempts per party — every `rejected` event, by the party that tried (or "unauthenticated"),
    each counting as the occurrences it stands for (its `count`: aggregated repeats, hub/audit/refusals.py;
    an event without one counts 1);
  * special-category accesses per person — health (Art. 15–16) and criminal-record (Art. 17) data that
    reached someone: `delivered` to a party, `acknowledged` or `consulted` by a person of a party
    (the acting person; the party itself when no person is named);
  * consultations outside office hours — `consulted` events whose local time falls outside the
    configured office hours (default Mon–Fri 08:00–18:00 Europe/Brussels);
  * flows used by a party for the first time — the first event in the range where a party sent on
    (`accepted`) or received on (`delivered`) a flow it had never used before the range starts.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.table import Table
from sqlalchemy import Engine, func, select, union

from hub.audit.query import AuditFilter, stream
from hub.domain.categories import SPECIAL_CATEGORIES
from hub.domain.envelope import as_utc
from hub.domain.errors import MalformedMessage
from hub.infra.store.db import reader
from hub.infra.store.schema import audit_events

ACCESS_EVENTS = ("delivered", "acknowledged", "consulted")
# A message taken in: `accepted` (one event for the checks it passed); trails written before it
# have `received` (then validated, authorised, stored) instead.
SENT_EVENTS = ("accepted", "received")
UNAUTHENTICATED = "(unauthenticated)"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_OFFICE_HOURS = "Mon-Fri 08:00-18:00 Europe/Brussels"
_SPEC = re.compile(r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})\s+(?P<tz>\S+)\s*$")


@dataclass(frozen=True)
class OfficeHours:
    """Working days (0 = Monday), a local start and end time, and the time zone they are in."""

    days: frozenset[int]
    start: time
    end: time
    tz: ZoneInfo

    @classmethod
    def parse(cls, spec: str) -> "OfficeHours":
        """"Mon-Fri 08:00-18:00 Europe/Brussels"; days as a range or a list ("Mon,Wed,Fri")."""
        m = _SPEC.match(spec or "")
        bad = MalformedMessage(f"office hours {spec[:60]!r} do not read like {DEFAULT_OFFICE_HOURS!r}",
                               code="invalid_office_hours")
        if not m:
            raise bad
        days: set[int] = set()
        try:
            for part in m["days"].lower().split(","):
                first, _, last = part.partition("-")
                a, b = DAYS.index(first[:3]), DAYS.index((last or first)[:3])
                days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
            start, end = time.fromisoformat(m["start"].zfill(5)), time.fromisoformat(m["end"].zfill(5))
            tz = ZoneInfo(m["tz"])
        except (ValueError, ZoneInfoNotFoundError):
            raise bad from None
        if start >= end:
            raise bad
        return cls(frozenset(days), start, end, tz)

    def contains(self, ts: datetime) -> bool:
        local = as_utc(ts).astimezone(self.tz)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def __str__(self) -> str:
        days = ",".join(DAYS[d].capitalize() for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.tz.key}"


@dataclass
class SecurityReport:
    since: datetime | None
    until: datetime | None
    office_hours: OfficeHours
    events_read: int = 0
    denied: list[dict[str, Any]] = field(default_factory=list)
    special_access: list[dict[str, Any]] = field(default_factory=list)
    after_hours: list[dict[str, Any]] = field(default_factory=list)
    first_use: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def iso(v: Any) -> Any:
            return v.isoformat() if isinstance(v, datetime) else v
        return {
            "since": iso(self.since), "until": iso(self.until), "office_hours": str(self.office_hours),
            "events_read": self.events_read,
            "denied_attempts_per_party": [{k: iso(v) for k, v in r.items()} for r in self.denied],
            "special_category_access_per_person": [{k: iso(v) for k, v in r.items()} for r in self.special_access],
            "consultations_outside_office_hours": [{k: iso(v) for k, v in r.items()} for r in self.after_hours],
            "flows_used_for_the_first_time": [{k: iso(v) for k, v in r.items()} for r in self.first_use],
        }


_COLUMNS = ("seq", "ts", "event", "outcome", "flow_id", "dossier_id", "actor", "acting_person", "recipient",
            "data_categories", "reason", "count")


def count_events(engine: Engine, since: datetime | None, until: datetime | None) -> int:
    with reader(engine).connect() as conn:
        return conn.execute(select(func.count()).select_from(audit_events)
                            .where(*AuditFilter(since=since, until=until).clauses())).scalar_one()


def _used_before(conn: Any, since: datetime | None) -> set[tuple[str, str]]:
    """(party, flow) pairs a party sent or received on before `since`."""
    if since is None:
        return set()
    c = audit_events.c
    sent = select(c.actor, c.flow_id).where(c.event.in_(SENT_EVENTS), c.ts < since, c.flow_id.is_not(None))
    got = select(c.recipient, c.flow_id).where(c.event == "delivered", c.ts < since, c.flow_id.is_not(None))
    return {(party, flow) for party, flow in conn.execute(union(sent, got)) if party}


def build_report(engine: Engine, since: datetime | None = None, until: datetime | None = None,
                 hours: OfficeHours | None = None,
                 progress: Callable[[int], None] | None = None) -> SecurityReport:
    """One pass over the range's events, in sequence order; `progress(n)` is told every 1 000 events."""
    criteria = AuditFilter(since=since, until=until)
    report = SecurityReport(criteria.since, criteria.until, hours or OfficeHours.parse(DEFAULT_OFFICE_HOURS))
    denied: dict[str, dict[str, Any]] = {}
    special: dict[tuple[str, str | None], dict[str, Any]] = {}
    with reader(engine).connect() as conn:
        seen = _used_before(conn, criteria.since)
        for n, ev in enumerate(stream(conn, criteria, _COLUMNS), 1):
            _denied(denied, ev)
            _special(special, ev)
            if ev["event"] == "consulted" and not report.office_hours.contains(ev["ts"]):
                report.after_hours.append({
                    "seq": ev["seq"], "ts": ev["ts"], "local_time": ev["ts"].astimezone(report.office_hours.tz),
                    "actor": ev["actor"], "acting_person": ev["acting_person"], "dossier_id": ev["dossier_id"],
                    "data_categories": list(ev["data_categories"] or []), "reason": ev["reason"]})
            _first_use(report.first_use, seen, ev)
            report.events_read = n
            if progress and n % 1000 == 0:
                progress(n)
    if progress:
        progress(report.events_read)
    for row in denied.values():
        row["codes"] = dict(row["codes"].most_common())
        row["flows"] = sorted(row["flows"])
    report.denied = sorted(denied.values(), key=lambda r: (-r["attempts"], r["party"]))
    for row in special.values():
        row["dossiers"] = len(row.pop("_dossiers"))
    report.special_access = sorted(special.values(), key=lambda r: (r["party"], r["person"]))
    return report


def _denied(acc: dict[str, dict[str, Any]], ev: dict[str, Any]) -> None:
    if ev["outcome"] != "rejected":
        return
    party = ev["actor"] or UNAUTHENTICATED
    row = acc.setdefault(party, {"party": party, "attempts": 0, "codes": Counter(), "flows": set(),
                                 "first": ev["ts"], "last": ev["ts"]})
    n = ev.get("count") or 1   # an aggregated event stands for `count` refusals; one without it for one
    row["attempts"] += n
    # reasons start with the refusal's machine-readable code ("not_authorised /v1/messages")
    row["codes"][(ev["reason"] or "unspecified").split()[0]] += n
    if ev["flow_id"]:
        row["flows"].add(ev["flow_id"])
    row["last"] = ev["ts"]


def _special(acc: dict[tuple[str, str | None], dict[str, Any]], ev: dict[str, Any]) -> None:
    if ev["event"] not in ACCESS_EVENTS or ev["outcome"] == "rejected":
        return
    found = [c for c in sorted(SPECIAL_CATEGORIES) if c in (ev["data_categories"] or ())]
    if not found:
        return
    party = ev["recipient"] if ev["event"] == "delivered" else ev["actor"]
    person = None if ev["event"] == "delivered" else ev["acting_person"]
    party = party or UNAUTHENTICATED
    row = acc.setdefault((party, person), {
        "person": person or party, "party": party, "person_named": person is not None,
        "health": 0, "criminal_record": 0, "delivered": 0, "acknowledged": 0, "consulted": 0,
        "_dossiers": set(), "first": ev["ts"], "last": ev["ts"]})
    for c in found:
        row[c] += 1
    row[ev["event"]] += 1
    if ev["dossier_id"]:
        row["_dossiers"].add(ev["dossier_id"])
    row["last"] = ev["ts"]


def _first_use(out: list[dict[str, Any]], seen: set[tuple[str, str]], ev: dict[str, Any]) -> None:
    if not ev["flow_id"] or ev["outcome"] == "rejected":
        return
    if ev["event"] in SENT_EVENTS:
        party, role = ev["actor"], "sent"
    elif ev["event"] == "delivered":
        party, role = ev["recipient"], "received"
    else:
        return
    if not party or (party, ev["flow_id"]) in seen:
        return
    seen.add((party, ev["flow_id"]))
    out.append({"party": party, "flow_id": ev["flow_id"], "role": role, "seq": ev["seq"], "ts": ev["ts"]})


# --- terminal rendering ------------------------------------------------------------------------

def _t(ts: datetime | None, tz: ZoneInfo) -> str:
    return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def tables(report: SecurityReport) -> list[Table]:
    """The four sections as rich tables, times shown in the office hours' time zone."""
    tz = report.office_hours.tz
    span = f"{_t(report.since, tz) or 'the start'} → {_t(report.until, tz) or 'now'} ({tz.key})"
    denied = Table(title=f"denied attempts per party — {span}")
    for col in ("party", "attempts", "codes", "flows", "first", "last"):
        denied.add_column(col, justify="right" if col == "attempts" else "left")
    for r in report.denied:
        denied.add_row(r["party"], str(r["attempts"]), ", ".join(f"{k} ×{v}" for k, v in r["codes"].items()),
                       ", ".join(f.split(".", 1)[-1] for f in r["flows"]), _t(r["first"], tz), _t(r["last"], tz))
    special = Table(title="special-category accesses per person (health: Art. 15–16, criminal record: Art. 17)",
                    caption="person: the acting person, or the party itself (italic) when none was named")
    for col in ("person", "party", "health", "criminal", "delivered", "acked", "consulted", "dossiers", "last"):
        special.add_column(col, justify="left" if col in ("person", "party", "last") else "right")
    for r in report.special_access:
        special.add_row(r["person"] if r["person_named"] else f"[italic]{r['person']}[/italic]", r["party"],
                        str(r["health"]), str(r["criminal_record"]), str(r["delivered"]), str(r["acknowledged"]),
                        str(r["consulted"]), str(r["dossiers"]), _t(r["last"], tz))
    after = Table(title=f"consultations outside office hours ({report.office_hours})")
    for col in ("seq", "local time", "party", "person", "dossier", "data", "reason"):
        after.add_column(col)
    for r in report.after_hours:
        after.add_row(str(r["seq"]), r["local_time"].strftime("%a %Y-%m-%d %H:%M:%S"), r["actor"] or "",
                      r["acting_person"] or "", (r["dossier_id"] or "")[:8], ",".join(r["data_categories"]),
                      r["reason"] or "")
    first = Table(title="flows used by a party for the first time",
                  caption="first event in the range on a flow the party had not used before the range")
    for col in ("party", "flow", "as", "seq", "time"):
        first.add_column(col)
    for r in report.first_use:
        first.add_row(r["party"], r["flow_id"], r["role"], str(r["seq"]), _t(r["ts"], tz))
    for table in (denied, special, after, first):
        if not table.row_count:
            table.add_row("none")
    return [denied, special, after, first]
