"""The dossier's state as the combined procedure moves it (seeds/002: the common order).

submitted → incomplete ↔ submitted → admissible → residence/work decided → decided → notified.
A message that would make an impossible move is refused (409) before anything is stored.
"""
from __future__ import annotations

from typing import Any

from hub.errors import InvalidTransition

_DECISION_STATES = {"admissible", "residence_decided", "work_decided"}


def next_state(current: str, target: str | None, *, residence: str | None, work: str | None) -> str:
    """Where a dossier in `current` goes when a flow asks for `target`.

    `residence` and `work` are the outcomes known after the message (a decision flow sets one):
    the single act is possible only once both are known (61/27-1 §4).
    """
    if target is None or target == current:
        return current
    if target == "incomplete":
        # Art. 20 §4 before admissibility; afterwards DVZ's request for more does not stop the clock (61/27-4 §3)
        if current in ("submitted", "incomplete"):
            return "incomplete"
        if current in _DECISION_STATES:
            return current
    elif target == "submitted":
        if current == "incomplete":
            return "submitted"
        if current != "notified":
            return current          # documents added later do not move the procedure back
    elif target == "admissible":
        if current in ("submitted", "incomplete"):
            return "admissible"
    elif target in ("residence_decided", "work_decided"):
        if current in _DECISION_STATES:
            if residence and work:
                return "decided"
            return "residence_decided" if residence else "work_decided"
    elif target == "notified":
        if current == "decided":
            return "notified"
    raise InvalidTransition({"from": current, "to": target},
                            code="invalid_transition")


def outcome_of(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(residence outcome, work outcome) that a decision message carries, by its kind (Art. 18)."""
    kind, outcome = payload.get("decision_kind") or "", payload.get("outcome")
    if kind.startswith("residence_"):
        return outcome, None
    if kind.startswith("work_"):
        return None, outcome
    return None, None
