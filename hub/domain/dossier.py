"""The dossier's life as the combined procedure moves it (seeds/002: the common order; Art. 18, 27).

    submitted ⇄ incomplete                      additional documents requested / supplied (Art. 20 §4)
        │ admissibility decision (the region): complete, the decision clock starts
        ▼
    under_examination ── residence / work decision ──► residence_decided | work_decided
        │ (deemed authorisation: Blue Card, 61/27-4 §2)        │ the other part
        ▼                                                      ▼
    decided  (both parts known; a work permit or professional card: the work part; or one part
        │      refused, withdrawn or ended: one negative decision decides the single permit, the other
        │      part is no longer needed — it may still come in before notification, and is recorded)
        │ single act notified, or (a negative decision) the Art. 24 negative-decision notice
        ▼
    notified ── appeal lodged ──► appeal_pending ── appeal ended ──► closed
        │  ▲                                     └─ decision annulled ─► under_examination
        └──┘ a later withdrawal or end of the permit is decided, then notified again

A message whose flow asks for a move the table does not allow is refused (409 invalid_transition)
before anything is stored. `change` returns every column the move writes: the state, the outcomes
and kinds of decision (Art. 18), the dates the clocks, retention and statistics read, and
`retain_until` (Art. 27).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from hub.domain.envelope import as_utc
from hub.domain.errors import InvalidTransition

__all__ = ["STATES", "EXAMINING", "NEGATIVE", "DEEMED", "ENDING", "change", "outcome_of", "parts_needed", "retain_until", "retention", "add_years"]

STATES: tuple[str, ...] = (
    "submitted", "incomplete", "under_examination", "residence_decided", "work_decided", "decided",
    "notified", "appeal_pending", "closed",
)
EXAMINING = frozenset({"under_examination", "residence_decided", "work_decided"})
FINAL = frozenset({"notified", "closed"})
NEGATIVE = frozenset({"refused", "withdrawn", "ended"})
DEEMED = "deemed_authorisation"
ENDING = ("_withdrawal", "_end")   # kinds of decision that end a permit already granted (Art. 18)

# Art. 27: 10 years from submission when granted, 5 years from notification of a refusal, end or
# withdrawal; a pending appeal holds the dossier, then 1 year after it definitively ends.
GRANTED_YEARS, NEGATIVE_YEARS, AFTER_APPEAL_YEARS = 10, 5, 1


def parts_needed(application_kind: str) -> tuple[str, ...]:
    """A single permit needs both DVZ's residence and the region's work decision (61/27-1 §4); a work
    permit or a professional card only the region's."""
    return ("residence", "work") if application_kind == "single_permit" else ("work",)


def outcome_of(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(residence outcome, work outcome) that a decision message carries, by its kind (Art. 18)."""
    kind, outcome = payload.get("decision_kind") or "", payload.get("outcome")
    if kind.startswith("residence_"):
        return outcome, None
    if kind.startswith(("work_", "professional_card_")):
        return None, outcome
    return None, None


def change(dossier: Mapping[str, Any], target: str | None, payload: Mapping[str, Any],
           at: datetime) -> dict[str, Any]:
    """The columns a message moving `dossier` towards `target` writes; raises InvalidTransition.

    `dossier` holds the row's current values (state, application_kind, created_at, the outcomes,
    kinds and dates); `at` is when the hub received the message.
    """
    current = dossier["state"]
    values: dict[str, Any] = {"state": current}
    if target is None:
        if current == "decided" and _notice_of_negative(dossier, payload):
            # Art. 24: the negative decision is notified to the person, the authorities told it was taken
            return {"state": "notified", "notified_at": at, "closed_at": None}
        return values
    if target == "incomplete":
        # Art. 20 §4 before admissibility; afterwards DVZ's request for more does not stop the clock (61/27-4 §3)
        if current in ("submitted", "incomplete"):
            return {"state": "incomplete", "incomplete_since": at}
        if current in EXAMINING:
            return {**values, "incomplete_since": at}
    elif target == "submitted":           # the additional documents are in
        if current == "incomplete":
            return {"state": "submitted", "incomplete_since": None}
        if current in ("submitted", "decided", *EXAMINING):
            return {**values, "incomplete_since": None}
    elif target == "under_examination":   # the region's admissibility decision: complete
        if current in ("submitted", "incomplete"):
            return {"state": "under_examination", "complete_at": at, "incomplete_since": None}
    elif target in ("residence_decided", "work_decided"):
        if current in EXAMINING or (current in FINAL and _ends_a_permit(payload)):
            return _decision(dossier, payload, at)
        if current == "decided" and _late_part(dossier, payload):
            return _late_decision(dossier, payload)
    elif target == "decided":             # deemed authorisation: no decision within the deadline
        if current in EXAMINING and not any(dossier.get(f"{p}_outcome") in NEGATIVE for p in ("residence", "work")):
            kinds = {f"{part}_decision_kind": DEEMED for part in ("residence", "work")}
            return {"state": "decided", "residence_outcome": "granted", "work_outcome": "granted",
                    **kinds, "decided_at": at}
    elif target == "notified":
        if current == "decided":
            return {"state": "notified", "notified_at": at, "closed_at": None}
        if current == "notified" and _negative(dossier):
            # a negative decision already notified with its Art. 24 notice: the single act that follows
            # keeps the first notification (Art. 27 counts from it)
            return values
    elif target == "appeal_pending":
        if current in FINAL:
            return {"state": "appeal_pending", "appeal_lodged_at": at, "appeal_ended_at": None,
                    "closed_at": None}
    elif target == "closed":              # the appeal ended
        if current == "appeal_pending":
            if payload.get("appeal_outcome") == "annulled":   # the authority decides again
                return {"state": "under_examination", "appeal_ended_at": at, "decided_at": None,
                        "residence_outcome": None, "work_outcome": None,
                        "residence_decision_kind": None, "work_decision_kind": None}
            return {"state": "closed", "appeal_ended_at": at, "closed_at": at}
    raise InvalidTransition({"from": current, "to": target}, code="invalid_transition")


def _ends_a_permit(payload: Mapping[str, Any]) -> bool:
    """After notification only a withdrawal or an end of the permit is a new decision (Art. 18)."""
    return (payload.get("decision_kind") or "").endswith(ENDING)


def _negative(d: Mapping[str, Any]) -> bool:
    """A part of the dossier is refused, withdrawn or ended: the procedure's outcome is negative."""
    return any(d.get(f"{part}_outcome") in NEGATIVE for part in ("residence", "work"))


def _notice_of_negative(dossier: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """The Art. 24 notice (single-permit.negative-decision-notice) of the dossier's negative decision."""
    return payload.get("negative_decision_taken") is True and _negative(dossier)


def _late_part(dossier: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """A decision on the part still open when a negative decision on the other ended the procedure."""
    if not _negative(dossier) or dossier.get("notified_at") is not None:
        return False
    residence, work = outcome_of(payload)
    part = "residence" if residence else "work" if work else None
    return part is not None and dossier.get(f"{part}_outcome") is None


def _late_decision(dossier: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded, the dossier stays decided as it was (the negative decision decided it, Art. 18)."""
    values = {k: v for k, v in _decision(dossier, payload, dossier["decided_at"]).items()
              if k.endswith(("_outcome", "_decision_kind"))}
    return {"state": "decided", **values}


def _decision(dossier: Mapping[str, Any], payload: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    residence, work = outcome_of(payload)
    values: dict[str, Any] = {}
    if residence:
        values.update(residence_outcome=residence, residence_decision_kind=payload.get("decision_kind"))
    if work:
        values.update(work_outcome=work, work_decision_kind=payload.get("decision_kind"))
    known = {part: values.get(f"{part}_outcome", dossier.get(f"{part}_outcome")) for part in ("residence", "work")}
    needed = parts_needed(dossier.get("application_kind") or "single_permit")
    if all(known[p] for p in needed) or any(known[p] in NEGATIVE for p in needed):
        # every needed part known, or one refused, withdrawn or ended: that decides the whole (Art. 18)
        values.update(state="decided", decided_at=at)
    else:
        values["state"] = "residence_decided" if known["residence"] else "work_decided"
    return values


def retain_until(d: Mapping[str, Any]) -> datetime | None:
    """Art. 27 for a dossier's values after a change; None keeps it (undecided, or on legal hold)."""
    return retention(d)[0]


def retention(d: Mapping[str, Any]) -> tuple[datetime | None, str | None]:
    """(retain_until, the Art. 27 rule that gives it: granted | negative | after_appeal)."""
    if d["state"] not in FINAL or d.get("notified_at") is None:
        return None, None
    needed = parts_needed(d.get("application_kind") or "single_permit")
    if all(d.get(f"{p}_outcome") == "granted" for p in needed):
        until, rule = add_years(as_utc(d["created_at"]), GRANTED_YEARS), "granted"
    else:
        until, rule = add_years(as_utc(d["notified_at"]), NEGATIVE_YEARS), "negative"
    if d.get("appeal_ended_at") is not None:
        after = add_years(as_utc(d["appeal_ended_at"]), AFTER_APPEAL_YEARS)
        if after > until:
            until, rule = after, "after_appeal"
    return until, rule


def add_years(t: datetime, years: int) -> datetime:
    """The same day `years` later (29 February → 28 February in a common year)."""
    try:
        return t.replace(year=t.year + years)
    except ValueError:
        return t.replace(year=t.year + years, day=28)


def days_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole days from start to end (statistics: complete → decision)."""
    if start is None or end is None:
        return None
    return (as_utc(end) - as_utc(start)) // timedelta(days=1)
