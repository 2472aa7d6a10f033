"""From a SelfEmployed v2 answer to the hub's canonical record (contracts/enrichment/inasti.self-employed.schema.json).

The answer is the zeep result serialised to plain dicts (`zeep.helpers.serialize_object`). Kept:
the career periods (begin, end, occupation, kind), the name of the social insurance fund and
whether contributions are paid; dropped: the fund number and the echoed SSIN (Art. 11, only what
the recipients need). CBSS status DATA_FOUND gives status "found", NO_DATA_FOUND "no_data".
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Mapping

from hub.ports import EnrichmentRecord, SourceRefused, SourceUnavailable

SOURCE = "inasti.self-employed"
CONTRACT = "self-employed"
CONTRACT_VERSION = "v2"


def no_data() -> dict[str, Any]:
    return {"career_periods": [], "social_insurance_fund": None, "contributions_paid": None}


class NoResult(SourceRefused):
    """CBSS status NO_RESULT: the register could not answer for this person (e.g. not integrated in
    the CBSS directory); asking again will not change that."""


class IncoherentAnswer(SourceUnavailable):
    """Valid against the XSD, but not coherent: DATA_FOUND without a result, or the SSIN of someone else."""


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value)[:10]).isoformat()


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def career_data(result: Any) -> dict[str, Any]:
    """The canonical `data` of a DATA_FOUND result (`SelfEmployedResultType`)."""
    periods = _get(_get(result, "careerPeriods"), "careerPeriod") or []
    career = [{"start": _iso(_get(p, "begin")), "end": _iso(_get(p, "end")),
               "occupation": str(_get(p, "occupation")), "kind": str(_get(p, "kind"))} for p in periods]
    career.sort(key=lambda p: (p["start"], p["end"] or "9999-12-31"))
    fund = _get(_get(result, "socialInsuranceFund"), "name")
    paid = _get(result, "contributionsPaid")
    return {"career_periods": career, "social_insurance_fund": None if fund is None else str(fund),
            "contributions_paid": None if paid is None else bool(paid)}


def to_record(answer: Any, ssin: str, retrieved_at: datetime, elapsed_ms: float) -> EnrichmentRecord:
    """The EnrichmentRecord of one answer (`ConsultSelfEmployedCareerResponseType`) about `ssin`."""
    value = _get(_get(answer, "status"), "value")
    if value == "NO_DATA_FOUND":
        return EnrichmentRecord(SOURCE, CONTRACT, CONTRACT_VERSION, "no_data", retrieved_at, elapsed_ms, no_data())
    if value == "NO_RESULT":
        raise NoResult(f"{SOURCE}: NO_RESULT ({_get(_get(answer, 'status'), 'code')})")
    result = _get(answer, "result")
    if value != "DATA_FOUND" or result is None:
        raise IncoherentAnswer(f"{SOURCE}: status {value!r} without a result")
    if _get(result, "ssin") != ssin:
        raise IncoherentAnswer(f"{SOURCE}: the answer is about another person")
    return EnrichmentRecord(SOURCE, CONTRACT, CONTRACT_VERSION, "found", retrieved_at, elapsed_ms,
                            career_data(result))
