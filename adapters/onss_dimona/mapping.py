"""Dimona answers → the hub's canonical record (contracts/enrichment/onss.dimona.schema.json).

REST periods (dimona-rest-v2 `Period`) and the published personnel-file answer
(PersonnelFileConsultationAnswer_20223.xsd, `DimonaPeriod`) both become canonical periods
`{period_id, employer, nsso_number, start, end, joint_committee, worker_type, postcode?}`; the
record adds whether a period runs on the subject's reference date, and whether one with the
applicant employer does (cooperation agreement on the single permit, Art. 14).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable

from lxml import etree

from hub.ports import EnrichmentRecord, Subject, utcnow

SOURCE = "onss.dimona"
REST_CONTRACT, REST_VERSION = "dimona-rest", "v2"
SOAP_CONTRACT, SOAP_VERSION = "personnel-file-consultation", "20223"


class MalformedAnswer(ValueError):
    """An answer that lacks what the contract promises (a missing field, a bad date)."""


def from_rest(period: dict[str, Any]) -> dict[str, Any]:
    """One REST `Period` → one canonical period."""
    try:
        out = {"period_id": period["id"], "employer": period["employer"]["enterpriseNumber"],
               "nsso_number": period["employer"]["employerId"], "start": period["startDate"],
               "end": period.get("endDate"), "joint_committee": period["features"]["jointCommissionNumber"],
               "worker_type": period["features"]["workerType"]}
    except (KeyError, TypeError) as err:
        raise MalformedAnswer(f"Dimona period without {err}") from err
    postcode = (period.get("placeOfWork") or {}).get("postCode")
    if postcode:
        out["postcode"] = postcode
    return out


def from_personnel_file(answer: etree._Element) -> dict[str, list[dict[str, Any]]]:
    """A published `PersonnelFileConsultationAnswer` → canonical periods by INSZ.

    The employer is the one of the file (`NOSSRegistrationNbr`, `CompanyID`); the published answer
    has no place of work, and names only some joint committees (others come back as null).
    """
    consult = answer.find("Form/PersonnelFileConsult")
    if consult is None:
        raise MalformedAnswer("personnel file answer without PersonnelFileConsult")
    company = _text(consult, "CompanyID").zfill(10)
    noss = consult.findtext("NOSSRegistrationNbr")
    nsso_number = "0" + noss.strip().zfill(9) if noss else ""
    out: dict[str, list[dict[str, Any]]] = {}
    for p in consult.findall("DimonaPeriod"):
        if p.findtext("IsCancelled", "0").strip() == "1":
            continue
        insz = _text(p, "NaturalPerson/INSS").zfill(11)
        out.setdefault(insz, []).append({
            "period_id": _text(p, "DimonaPeriodId").zfill(12), "employer": company, "nsso_number": nsso_number,
            "start": _text(p, "StartingDate"), "end": (p.findtext("EndingDate") or "").strip() or None,
            "joint_committee": (p.findtext("DimonaFeatures/JointCommissionNbr") or "").strip() or None,
            "worker_type": (p.findtext("DimonaFeatures/WorkerType") or "OTH").strip()})
    return {insz: sort_periods(periods) for insz, periods in out.items()}


def _text(element: etree._Element, path: str) -> str:
    value = element.findtext(path)
    if value is None or not value.strip():
        raise MalformedAnswer(f"personnel file answer without {path}")
    return value.strip()


def sort_periods(periods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(periods, key=lambda p: (p["start"], p["period_id"]))


def _runs_on(period: dict[str, Any], day: date) -> bool:
    try:
        start = date.fromisoformat(period["start"])
        end = date.fromisoformat(period["end"]) if period["end"] else None
    except (TypeError, ValueError) as err:
        raise MalformedAnswer(f"Dimona period with a bad date: {err}") from err
    return start <= day and (end is None or end >= day)


def record_data(periods: list[dict[str, Any]], subject: Subject) -> dict[str, Any]:
    """The canonical `data` for `subject` from its canonical periods."""
    running = [p for p in periods if _runs_on(p, subject.reference_date)]
    employer = subject.employer
    return {"periods": periods, "active_on_reference_date": bool(running),
            "with_applicant_employer": employer is not None and any(p["employer"] == employer for p in running)}


def to_record(subject: Subject, periods: list[dict[str, Any]], started: float, now: float, *,
              retrieved_at: datetime | None = None, contract: str = REST_CONTRACT,
              version: str = REST_VERSION) -> EnrichmentRecord:
    """An EnrichmentRecord: found when the worker has any Dimona period, else no_data."""
    periods = sort_periods(periods)
    return EnrichmentRecord(source=SOURCE, contract=contract, contract_version=version,
                            status="found" if periods else "no_data", retrieved_at=retrieved_at or utcnow(),
                            elapsed_ms=(now - started) * 1000, data=record_data(periods, subject))
