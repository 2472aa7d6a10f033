"""The yearly Eurostat residence-permit file (Art. 31; Regulation (EC) 862/2007 art. 6, as amended
by Regulation (EU) 2020/851): permits issued and withdrawn, by reason, citizenship, length of
validity and kind, drawn from the anonymous fact table.

Scope: only residence permits, i.e. facts of `application_kind` single_permit (the combined
procedure issues a residence authorisation); a regional work permit or a professional card alone is
not a residence permit and is left out, as is a permit valid less than 3 months (Eurostat: a
residence permit is valid at least 3 months). A permit counts as *issued* in the year of its
decision when the final act's kind is an authorisation (deemed authorisations included); as
*withdrawn* in the year of the withdrawal (`ended_kind` residence_withdrawal or work_withdrawal:
the single act falls with either part). A permit issued in one year and withdrawn in a later one is
counted issued in the first and withdrawn in the second (the fact keeps both).

CSV columns (header row first, one row per non-empty cell, sorted by reason, citizenship, validity,
kind):

    year         the reference year (calendar year of the decision)
    reason       Eurostat reason code (REASONS: EMP_BC, EMP_RES, EMP_SEAS, EMP_ICT, EMP_OTH, EDUC_OTH)
    citizenship  the worker's nationality as the application carries it (ISO 3166-1 alpha-3); UNK
                 when not given. Eurostat's own country codes (alpha-2, EL, UK) are set at
                 transmission.
    validity     length of validity: M3-5 (3–5 months), M6-11 (6–11 months), M12-MAX (12 months and
                 over), UNK (not recorded)
    kind         FIRST (first permit), CHANGE (change of immigration status or reason), RENEWAL,
                 WITHDRAWN
    count        number of permits; exact by default (the file goes to Eurostat, which applies its
                 own confidentiality rules); with `min_cell`, 1..min_cell−1 is written "<min_cell"
                 as in the published breakdowns (hub/lifecycle/stats/queries.py)
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, literal, select

from hub.domain.errors import MalformedMessage
from hub.lifecycle.stats.queries import ends_with
from hub.infra.store import reader
from hub.infra.store.schema import stats_facts as f

__all__ = ["COLUMNS", "REASONS", "VALIDITY", "KINDS", "rows", "to_csv", "validity_class"]

COLUMNS: tuple[str, ...] = ("year", "reason", "citizenship", "validity", "kind", "count")

# Our permit types → Eurostat's reason for the first permit (RESPER code list, remunerated
# activities EMP_*, education reasons EDUC_*; check the codes against the RESPER technical
# guidelines of the reference year before transmission). None: not a residence permit.
REASONS: dict[str, str | None] = {
    "eu_blue_card": "EMP_BC",                  # highly skilled workers: EU Blue Card (Dir. 2021/1883)
    "researcher": "EMP_RES",                   # researchers (Dir. 2016/801)
    "researcher_mobility": "EMP_RES",          # researchers' long-term mobility (Dir. 2016/801 art. 29)
    "seasonal_worker": "EMP_SEAS",             # seasonal workers (Dir. 2014/36)
    "intra_corporate_transferee": "EMP_ICT",   # intra-corporate transferees (Dir. 2014/66)
    "ict_long_term_mobility": "EMP_ICT",       # ICT long-term mobility (Dir. 2014/66 art. 22)
    "single_permit": "EMP_OTH",                # other remunerated activities (Dir. 2011/98)
    "other_eu_directive": "EMP_OTH",           # other remunerated activities under another directive
    "trainee": "EDUC_OTH",                     # education reasons, other: trainees (Dir. 2016/801)
    "volunteer": "EDUC_OTH",                   # education reasons, other: volunteers (Dir. 2016/801)
    "work_permit": None,                       # the region's work permit alone: no residence permit
    "professional_card": None,                 # self-employed professional card alone: no residence permit
}
_REASON_ORDER = ("EMP_BC", "EMP_RES", "EMP_SEAS", "EMP_ICT", "EMP_OTH", "EDUC_OTH")
VALIDITY: tuple[str, ...] = ("M3-5", "M6-11", "M12-MAX", "UNK")
KINDS: dict[str, str] = {"first": "FIRST", "change": "CHANGE", "renewal": "RENEWAL"}   # from request_type
_KIND_ORDER = ("FIRST", "CHANGE", "RENEWAL", "WITHDRAWN")
UNKNOWN = "UNK"


def validity_class(months: int | None) -> str | None:
    """Eurostat's length-of-validity class; None below 3 months (not a residence permit)."""
    if months is None:
        return UNKNOWN
    if months < 3:
        return None
    return "M3-5" if months < 6 else "M6-11" if months < 12 else "M12-MAX"


def rows(engine: Engine, year: int, min_cell: int | None = None) -> list[dict[str, Any]]:
    """Reg. 862/2007 art. 6: the year's permits issued (first, change, renewal) and withdrawn."""
    if not 1900 <= year <= 9999:
        raise MalformedMessage([{"path": "/year", "message": "a four-digit year"}], code="invalid_request")
    dims = (f.c.permit_type, f.c.nationality, f.c.validity_months, f.c.request_type)
    issued = (select(*dims, literal(False).label("w"), func.count().label("n"))
              .where(f.c.decided_year == year, f.c.application_kind == "single_permit",
                     ends_with(f.c.decision_kind, "_authorisation"))
              .group_by(*dims))
    withdrawn = (select(*dims, literal(True).label("w"), func.count().label("n"))
                 .where(f.c.ended_year == year, f.c.application_kind == "single_permit",
                        ends_with(f.c.ended_kind, "_withdrawal"))
                 .group_by(*dims))
    cells: Counter[tuple[str, str, str, str]] = Counter()
    with reader(engine).connect() as conn:
        for query in (issued, withdrawn):
            for permit_type, nationality, months, request_type, w, n in conn.execute(query):
                reason, validity = REASONS.get(permit_type), validity_class(months)
                if reason is None or validity is None:
                    continue
                permit_kind = "WITHDRAWN" if w else KINDS.get(request_type, "FIRST")
                cells[(reason, nationality or UNKNOWN, validity, permit_kind)] += n

    def order(key: tuple[str, str, str, str]):
        reason, citizenship, validity, permit_kind = key
        return (_REASON_ORDER.index(reason), citizenship, VALIDITY.index(validity), _KIND_ORDER.index(permit_kind))

    out = []
    for key in sorted(cells, key=order):
        n = cells[key]
        count: int | str = f"<{min_cell}" if min_cell and 0 < n < min_cell else n
        out.append(dict(zip(COLUMNS, (year, *key, count))))
    return out


def to_csv(table: list[dict[str, Any]]) -> str:
    """The rows as CSV text (RFC 4180 line ends, header first)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()
