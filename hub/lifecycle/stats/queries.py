"""What DVZ and the regions draw from the anonymous fact table (Art. 31–32).

Two breakdowns over `stats_facts`, grouped by any subset of DIMENSIONS and filtered by year,
quarter, region and permit type (SQLAlchemy Core; the same answer on SQLite and PostgreSQL):

- `counts`: applications (counted in the year/quarter they were *submitted*) and decisions (counted
  in the year/quarter they were *decided*), the decisions split by their outcome (granted — deemed
  authorisations included —, refused, withdrawn, ended) and the deemed authorisations among them.
  The `decision_kind` dimension is the deciding act's kind (Art. 18); NULL while undecided. A
  later withdrawal or end of a granted permit (`ended_kind`) counts as a decision of its own
  year/quarter; the grant stays counted in its year.
- `processing_times`: whole days from "complete" to the decision, median and p90 per group, over
  the decisions taken in the year/quarter. A later withdrawal or end of a permit is not the
  processing of an application and is left out.

Percentiles are **nearest-rank** on the sorted days (the smallest value with at least p % of the
values at or below it: `sorted[ceil(p/100·n) − 1]`), computed in Python so that both stores give
the same whole-day answer; the median is the nearest-rank 50th percentile (the lower median when n
is even).

Small-cell suppression: these figures leave the platform. In any breakdown that includes
`nationality`, a count from 1 to `min_cell − 1` (default 5) is published as the string "<5" (with
the threshold used), and a processing-time group with fewer than `min_cell` decisions shows "<5"
for its count and null for its median and p90 (they would reveal a person's days). Zero stays 0.
The overall totals are never suppressed (as asked); a lone suppressed cell in a column can then be
recovered by subtraction from the total — publishers who need that closed should publish the
nationality breakdown without its total, or raise `min_cell`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Integer, case, func, literal_column, select, union_all

from hub.domain.dossier import ENDING
from hub.domain.errors import MalformedMessage
from hub.infra.store import reader
from hub.infra.store.schema import stats_facts as f

__all__ = [
    "DIMENSIONS", "PERMIT_TYPES", "PERMIT_LABELS", "REGIONS", "DEFAULT_MIN_CELL", "COUNT_MEASURES",
    "StatsFilter", "Breakdown", "counts", "processing_times", "percentile", "parse_by",
]

# The list of permit types (Art. 31), keyed by the application's category.
PERMIT_LABELS: dict[str, str] = {
    "single_permit": "single permit",
    "eu_blue_card": "Blue Card",
    "seasonal_worker": "seasonal",
    "intra_corporate_transferee": "ICT",
    "ict_long_term_mobility": "ICT mobility",
    "researcher": "researcher",
    "researcher_mobility": "researcher mobility",
    "trainee": "trainee",
    "volunteer": "volunteer",
    "work_permit": "work permit",
    "professional_card": "professional card",
    "other_eu_directive": "other",
}
PERMIT_TYPES: tuple[str, ...] = tuple(PERMIT_LABELS)
REGIONS: tuple[str, ...] = ("flanders", "wallonia", "brussels", "german_speaking")
DIMENSIONS: tuple[str, ...] = ("permit_type", "decision_kind", "region", "nationality", "year", "quarter")
COUNT_MEASURES: tuple[str, ...] = ("applications", "decisions", "granted", "refused", "withdrawn", "ended",
                                   "deemed")
TIME_MEASURES: tuple[str, ...] = ("decisions", "median_days", "p90_days")
DEFAULT_MIN_CELL = 5



@dataclass(frozen=True)
class StatsFilter:
    """Which facts count. Year and quarter are the period of the measure (submission for
    applications, decision for decisions and processing times)."""

    year: int | None = None
    quarter: int | None = None
    region: str | None = None
    permit_type: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.year is not None and not 1900 <= self.year <= 9999:
            problems.append({"in": "query", "name": "year", "detail": "a four-digit year"})
        if self.quarter is not None and self.quarter not in (1, 2, 3, 4):
            problems.append({"in": "query", "name": "quarter", "detail": "1, 2, 3 or 4"})
        if self.region is not None and self.region not in REGIONS:
            problems.append({"in": "query", "name": "region", "detail": f"one of {', '.join(REGIONS)}"})
        if self.permit_type is not None and self.permit_type not in PERMIT_LABELS:
            problems.append({"in": "query", "name": "permit_type", "detail": f"one of {', '.join(PERMIT_TYPES)}"})
        if problems:
            raise MalformedMessage(problems, code="invalid_request")

    def kinds(self) -> list[str]:
        """The names of the filters set (for the audit trail's reason)."""
        return [k for k in ("year", "quarter", "region", "permit_type") if getattr(self, k) is not None]


@dataclass
class Breakdown:
    """A table of groups: `rows` hold the dimension values then the measures; `total` the measures
    over everything the filter let through (never suppressed)."""

    by: tuple[str, ...]
    measures: tuple[str, ...]
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    min_cell: int
    suppressed: bool = False
    filter: StatsFilter = field(default_factory=StatsFilter)

    def as_json(self) -> dict[str, Any]:
        rows = [dict(r, permit_type_label=PERMIT_LABELS.get(r["permit_type"], r["permit_type"]))
                if "permit_type" in r else r for r in self.rows]
        return {"by": list(self.by), "measures": list(self.measures),
                "filter": {k: getattr(self.filter, k) for k in self.filter.kinds()},
                "suppression": {"applied": self.suppressed, "min_cell": self.min_cell,
                                "shown_as": f"<{self.min_cell}"},
                "rows": rows, "total": self.total}


def parse_by(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"permit_type,region"` (or a list) → the dimensions, checked; raises MalformedMessage."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(n.strip() for n in items if n and n.strip())
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown or len(set(names)) != len(names):
        raise MalformedMessage([{"in": "query", "name": "by", "detail": f"distinct names among {', '.join(DIMENSIONS)}"
                                 + (f"; unknown: {', '.join(unknown)[:80]}" if unknown else "")}],
                               code="invalid_request")
    return names


def counts(engine: Engine, by: Sequence[str] = (), where: StatsFilter = StatsFilter(),
           min_cell: int = DEFAULT_MIN_CELL) -> Breakdown:
    """Art. 31–32: applications and decisions (granted, refused, withdrawn, ended; deemed) per group."""
    by = parse_by(by)
    apps = _branch(by, where, f.c.submitted_year, f.c.submitted_quarter, f.c.decision_kind, decided=False)
    decs = _branch(by, where, f.c.decided_year, f.c.decided_quarter, f.c.decision_kind, decided=True)
    # a later withdrawal or end of a granted permit is a decision of its own period; the grant stays
    ends = _branch(by, where, f.c.ended_year, f.c.ended_quarter, f.c.ended_kind, decided=True)
    both = union_all(apps, decs, ends).subquery("m")
    sums = [func.coalesce(func.sum(both.c[m]), 0).label(m) for m in COUNT_MEASURES]
    dims = [both.c[d] for d in by]
    with reader(engine).connect() as conn:
        rows = [dict(r) for r in conn.execute(select(*dims, *sums).group_by(*dims)).mappings()]
    total = {m: sum(int(r[m]) for r in rows) for m in COUNT_MEASURES}
    suppress = "nationality" in by
    for r in rows:
        for m in COUNT_MEASURES:
            r[m] = _cell(int(r[m]), min_cell) if suppress else int(r[m])
    return Breakdown(by, COUNT_MEASURES, _sorted(rows, by), total, min_cell, suppress, where)


def _branch(by: Sequence[str], where: StatsFilter, year, quarter, kind, decided: bool):
    """One measure's rows: its period columns stand for `year` and `quarter`, its kind of decision
    for `decision_kind`."""
    source = {"permit_type": f.c.permit_type, "decision_kind": kind, "region": f.c.region,
              "nationality": f.c.nationality, "year": year, "quarter": quarter}
    one, zero = literal_column("1", Integer), literal_column("0", Integer)
    deemed = f.c.deemed_authorised.is_(True) if kind is f.c.decision_kind else None

    def share(cond):
        return case((cond, one), else_=zero) if decided and cond is not None else zero

    measures = [
        (zero if decided else one).label("applications"),
        (one if decided else zero).label("decisions"),
        share(ends_with(kind, "_authorisation")).label("granted"),
        share(ends_with(kind, "_refusal")).label("refused"),
        share(ends_with(kind, "_withdrawal")).label("withdrawn"),
        share(ends_with(kind, "_end")).label("ended"),
        share(deemed).label("deemed"),
    ]
    conds = _conditions(where, year, quarter)
    if decided:
        conds.append(year.is_not(None))
    return select(*[source[d].label(d) for d in by], *measures).select_from(f).where(*conds)


def _conditions(where: StatsFilter, year, quarter) -> list:
    conds = []
    if where.year is not None:
        conds.append(year == where.year)
    if where.quarter is not None:
        conds.append(quarter == where.quarter)
    if where.region is not None:
        conds.append(f.c.region == where.region)
    if where.permit_type is not None:
        conds.append(f.c.permit_type == where.permit_type)
    return conds


def processing_times(engine: Engine, by: Sequence[str] = (), where: StatsFilter = StatsFilter(),
                     min_cell: int = DEFAULT_MIN_CELL) -> Breakdown:
    """Art. 31–32 and the 2019 law's clocks: days from complete to decision, median and p90
    (nearest rank) per group; year and quarter are those of the decision."""
    by = parse_by(by)
    source = {"permit_type": f.c.permit_type, "decision_kind": f.c.decision_kind, "region": f.c.region,
              "nationality": f.c.nationality, "year": f.c.decided_year, "quarter": f.c.decided_quarter}
    conds = _conditions(where, f.c.decided_year, f.c.decided_quarter)
    conds += [f.c.days_to_decision.is_not(None), f.c.decided_year.is_not(None)]
    conds += [~ends_with(func.coalesce(f.c.decision_kind, ""), s) for s in ENDING]   # later acts on a granted permit
    query = select(*[source[d].label(d) for d in by], f.c.days_to_decision).where(*conds)
    groups: dict[tuple, list[int]] = defaultdict(list)
    everything: list[int] = []
    with reader(engine).connect() as conn:
        for row in conn.execute(query):
            groups[tuple(row[:-1])].append(row[-1])
            everything.append(row[-1])
    suppress = "nationality" in by
    rows = []
    for key, days in groups.items():
        days.sort()
        row: dict[str, Any] = dict(zip(by, key))
        if suppress and len(days) < min_cell:
            row.update(decisions=f"<{min_cell}", median_days=None, p90_days=None)
        else:
            row.update(decisions=len(days), median_days=percentile(days, 50), p90_days=percentile(days, 90))
        rows.append(row)
    everything.sort()
    total = {"decisions": len(everything), "median_days": percentile(everything, 50),
             "p90_days": percentile(everything, 90)}
    return Breakdown(by, TIME_MEASURES, _sorted(rows, by), total, min_cell, suppress, where)


def percentile(sorted_values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile of already sorted values; None for none."""
    if not sorted_values:
        return None
    if not 0 < p <= 100:
        raise ValueError("p in (0, 100]")
    return sorted_values[max(math.ceil(p / 100 * len(sorted_values)), 1) - 1]


def ends_with(column, suffix: str):
    """LIKE with the underscore taken literally (it is a wildcard in LIKE)."""
    return column.like("%" + suffix.replace("_", "\\_"), escape="\\")


def _cell(n: int, min_cell: int) -> int | str:
    return f"<{min_cell}" if 0 < n < min_cell else n


def _sorted(rows: list[dict[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    """Same order on both stores: by the dimensions, None last, permit types in the issue's order."""
    order = {p: i for i, p in enumerate(PERMIT_TYPES)}

    def key(r):
        out = []
        for d in by:
            v = r[d]
            rank = order.get(v, len(order)) if d == "permit_type" else 0
            out.append((v is None, rank, v if v is not None else 0))
        return out
    return sorted(rows, key=key)
