"""Limosa declarations (limosa-v1 `Declaration`) → the hub's canonical record
(contracts/enrichment/onss.limosa.schema.json): the worker's L1 declarations and whether one of
them covers the reference date (Programme Law (I) of 27 December 2006, Art. 137-153)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from hub.ports import EnrichmentRecord, Subject, utcnow

SOURCE = "onss.limosa"
CONTRACT, VERSION = "limosa", "v1"


class MalformedAnswer(ValueError):
    """A declaration that lacks what the contract promises."""


def from_declaration(d: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"declaration_id": d["id"], "employer_country": d["employer"]["country"],
                "foreign_employer": d["employer"]["name"], "belgian_client": d["belgianClient"]["enterpriseNumber"],
                "start": d["period"]["startDate"], "end": d["period"]["endDate"], "sector": d["services"]["sector"],
                "places_of_work": [p["postCode"] for p in d["placesOfWork"]]}
    except (KeyError, TypeError) as err:
        raise MalformedAnswer(f"Limosa declaration without {err}") from err


def covers(declaration: dict[str, Any], day: date) -> bool:
    try:
        return date.fromisoformat(declaration["start"]) <= day <= date.fromisoformat(declaration["end"])
    except (TypeError, ValueError) as err:
        raise MalformedAnswer(f"Limosa declaration with a bad date: {err}") from err


def record_data(declarations: list[dict[str, Any]], reference: date) -> dict[str, Any]:
    canonical = sorted((from_declaration(d) for d in declarations), key=lambda x: (x["start"], x["declaration_id"]))
    return {"declarations": canonical, "posted_on_reference_date": any(covers(x, reference) for x in canonical)}


def to_record(subject: Subject, declarations: list[dict[str, Any]], elapsed_ms: float, *,
              retrieved_at: datetime | None = None) -> EnrichmentRecord:
    data = record_data(declarations, subject.reference_date)
    return EnrichmentRecord(source=SOURCE, contract=CONTRACT, contract_version=VERSION,
                            status="found" if data["declarations"] else "no_data",
                            retrieved_at=retrieved_at or utcnow(), elapsed_ms=elapsed_ms, data=data)
