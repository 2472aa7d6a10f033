"""DmfA answers → the hub's canonical record (contracts/enrichment/onss.dmfa.schema.json).

A published `DmfAConsultationAnswer` (DmfAConsultationAnswer_20224.xsd) has one `Form` per
employer declaration; each becomes one canonical line `{quarter, employer, nsso_number,
joint_committee, days, hours, gross_pay_cents}` for the worker asked about. DmfA counts days
(`ServiceNbrDays`) and hours (`ServiceNbrHours`) in hundredths and amounts (`RemunAmount`) in euro
cents. Only the last four complete quarters before the reference date are kept.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from lxml import etree

from hub.ports import EnrichmentRecord, Subject, utcnow

SOURCE = "onss.dmfa"
CONTRACT, VERSION = "dmfa-consultation", "20224"


class MalformedAnswer(ValueError):
    """An answer that lacks what the contract promises."""


def quarter_label(code: int | str) -> str:
    """DmfA `Quarter` (yyyyq, e.g. 20263) → "2026Q3"."""
    text = str(code).strip()
    if len(text) != 5 or not text.isdigit() or text[4] not in "1234":
        raise MalformedAnswer(f"not a DmfA quarter: {code!r}")
    return f"{text[:4]}Q{text[4]}"


def quarter_code(label: str) -> int:
    """"2026Q3" → 20263."""
    return int(label[:4]) * 10 + int(label[5])


def last_quarters(reference: date, n: int = 4) -> list[str]:
    """The last `n` complete quarters before the quarter of `reference`, newest first."""
    year, q = reference.year, (reference.month - 1) // 3 + 1
    out = []
    for _ in range(n):
        year, q = (year, q - 1) if q > 1 else (year - 1, 4)
        out.append(f"{year}Q{q}")
    return out


def _hundredths(value: int) -> int | float:
    return value // 100 if value % 100 == 0 else value / 100


def _text(element: etree._Element, path: str) -> str:
    value = element.findtext(path)
    if value is None or not value.strip():
        raise MalformedAnswer(f"DmfA answer without {path}")
    return value.strip()


def from_answer(answer: etree._Element, insz: str) -> list[dict[str, Any]]:
    """A published `DmfAConsultationAnswer` → canonical quarter lines of worker `insz`."""
    if etree.QName(answer).localname != "DmfAConsultationAnswer":
        raise MalformedAnswer(f"not a DmfAConsultationAnswer: {answer.tag}")
    lines = []
    for decl in answer.iterfind("Form/EmployerDeclarationConsult"):
        noss = decl.findtext("NOSSRegistrationNbr")
        nsso_number = "0" + noss.strip().zfill(9) if noss and noss.strip() else ""
        header = {"quarter": quarter_label(_text(decl, "Quarter")),
                  "employer": _text(decl, "CompanyID").zfill(10), "nsso_number": nsso_number}
        for person in decl.iterfind("NaturalPersonConsult"):
            if _text(person, "INSS").zfill(11) != insz:
                continue
            days = hours = pay = 0
            committee = None
            for record in person.iterfind("WorkerRecordConsult"):
                for occ in record.iterfind("OccupationConsultation"):
                    committee = committee or (occ.findtext("JointCommissionNbr") or "").strip() or None
                    for svc in occ.iterfind("ServiceAction"):
                        days += int(_text(svc, "ServiceNbrDays"))
                        hours += int(svc.findtext("ServiceNbrHours") or 0)
                    for rem in occ.iterfind("RemunAction"):
                        pay += int(_text(rem, "RemunAmount"))
            lines.append({**header, "joint_committee": committee, "days": _hundredths(days),
                          "hours": _hundredths(hours), "gross_pay_cents": pay})
    return lines


def sort_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(lines, key=lambda x: (x["quarter"], x["employer"]), reverse=True)


def record_data(lines: list[dict[str, Any]], quarters: list[str]) -> dict[str, Any]:
    """The canonical `data`: the lines of the asked quarters only, newest first."""
    wanted = set(quarters)
    return {"quarters": sort_lines([x for x in lines if x["quarter"] in wanted])}


def to_record(subject: Subject, lines: list[dict[str, Any]], elapsed_ms: float, *,
              retrieved_at: datetime | None = None) -> EnrichmentRecord:
    """An EnrichmentRecord: found when the worker has a DmfA line in the last four quarters."""
    data = record_data(lines, last_quarters(subject.reference_date))
    return EnrichmentRecord(source=SOURCE, contract=CONTRACT, contract_version=VERSION,
                            status="found" if data["quarters"] else "no_data",
                            retrieved_at=retrieved_at or utcnow(), elapsed_ms=elapsed_ms, data=data)
