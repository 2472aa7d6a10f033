"""The anonymous fact behind the statistics (Art. 31–32): one `stats_facts` row per dossier.

No dossier id, no person: only the permit type, region, nationality, year and quarter, the outcome
and kind of the decision and whole days from complete to decision. The dossier points to its fact
(`dossiers.fact_id`), never the other way, so when retention deletes the dossier (Art. 27) the link
goes with it and the fact stays, anonymous. The message path writes it in the same transaction as
the dossier change (hub.messaging.dossiers); this module only says what it holds.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from hub.domain.dossier import DEEMED, ENDING, days_between

__all__ = ["new_fact", "fact_changes", "validity_months", "decision_kind"]


def new_fact(dossier: Mapping[str, Any]) -> dict[str, Any]:
    """The fact row of a dossier being created (its id goes into dossiers.fact_id)."""
    application, submitted = dossier["application"], dossier["created_at"]
    return dict(
        id=str(uuid.uuid4()), permit_type=dossier["category"], application_kind=dossier["application_kind"],
        request_type=application.get("request_type", "first"), region=application["competent_region"],
        nationality=(application.get("worker") or {}).get("nationality"),
        submitted_year=submitted.year, submitted_quarter=(submitted.month - 1) // 3 + 1,
        state=dossier["state"], residence_outcome=None, work_outcome=None, decision_kind=None,
        decided_year=None, decided_quarter=None, days_to_decision=None, validity_months=None,
        deemed_authorised=False, ended_kind=None, ended_year=None, ended_quarter=None)


def fact_changes(dossier: Mapping[str, Any], validity: int | None = None) -> dict[str, Any]:
    """The columns of the dossier's fact after a change: state, outcome and kind of the decision, its
    period and days from complete; a later withdrawal or end of the permit is recorded apart."""
    kind = decision_kind(dossier)
    if dossier.get("notified_at") is not None and kind and kind.endswith(ENDING):
        # the permit, decided and notified before, is withdrawn or ended: that decision stays counted
        at = dossier["decided_at"]
        changing = {"state": dossier["state"], "ended_kind": kind, "ended_year": at.year,
                    "ended_quarter": (at.month - 1) // 3 + 1}
    else:
        changing = {
            "state": dossier["state"],
            "residence_outcome": dossier.get("residence_outcome"),
            "work_outcome": dossier.get("work_outcome"),
            "decision_kind": kind,
            "deemed_authorised": DEEMED in (dossier.get("residence_decision_kind"), dossier.get("work_decision_kind")),
            **_decided(dossier),
        }
    if validity is not None:
        changing["validity_months"] = validity
    return changing


def decision_kind(d: Mapping[str, Any]) -> str | None:
    """The kind of the act that decided the dossier (Art. 18): a negative part decides the whole."""
    kinds = [k for k in (d.get("residence_decision_kind"), d.get("work_decision_kind")) if k]
    negative = [k for k in kinds if not k.endswith("_authorisation")]
    return (negative or kinds or [None])[0]


def _decided(d: Mapping[str, Any]) -> dict[str, Any]:
    at: datetime | None = d.get("decided_at")
    if at is None:
        return {"decided_year": None, "decided_quarter": None, "days_to_decision": None}
    return {"decided_year": at.year, "decided_quarter": (at.month - 1) // 3 + 1,
            "days_to_decision": days_between(d.get("complete_at"), at)}


def validity_months(payload: Mapping[str, Any]) -> int | None:
    """Whole months between a decision's valid_from and valid_until (Eurostat: length of validity)."""
    start, end = payload.get("valid_from"), payload.get("valid_until")
    if not (start and end):
        return None
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    months = (b.year - a.year) * 12 + (b.month - a.month) - (1 if b.day < a.day else 0)
    return max(months, 0)
