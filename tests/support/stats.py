"""Shared by the unit and integration tests of test_stats."""
from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict

from hub.infra.store.schema import stats_facts
from hub.lifecycle.stats.queries import (
    PERMIT_TYPES,
    REGIONS,
    StatsFilter,
)

POSITIVE = {"single_permit": ["residence_authorisation", "work_authorisation"],
            "work_permit": ["work_authorisation"], "professional_card": ["professional_card_authorisation"]}


NEGATIVE = {"single_permit": ["residence_refusal", "work_refusal"], "work_permit": ["work_refusal"],
            "professional_card": ["professional_card_refusal"]}


# later acts on a granted permit (Art. 18): the fact keeps the grant and records these apart (ended_*)
ENDING = {"single_permit": ["residence_withdrawal", "work_withdrawal", "residence_end"],
          "work_permit": ["work_withdrawal"], "professional_card": ["professional_card_withdrawal"]}


# a few common nationalities and a tail of rare ones, so that breakdowns by nationality have small cells
NATIONALITIES = ["IND", "MAR", "TUR", "USA", "CHN", "BRA", "PHL", "NGA", "UKR", "JPN", "CAN", "PER", None]


NAT_WEIGHTS = [30, 22, 18, 12, 10, 3, 2, 2, 1, 1, 1, 1, 4]


def population(n: int = 420, seed: int = 862) -> list[dict]:
    """n facts as hub/domain/statistics.py makes them, drawn from a seeded generator."""
    rnd = random.Random(seed)
    facts = []
    for _ in range(n):
        permit_type = rnd.choice(PERMIT_TYPES)
        kind = permit_type if permit_type in ("work_permit", "professional_card") else "single_permit"
        submitted_year, submitted_quarter = rnd.choice([2023, 2024, 2025]), rnd.randint(1, 4)
        fact = {"id": str(uuid.UUID(int=rnd.getrandbits(128))), "permit_type": permit_type, "application_kind": kind,
                "request_type": rnd.choices(["first", "renewal", "change"], [6, 3, 1])[0],
                "region": rnd.choice(REGIONS), "nationality": rnd.choices(NATIONALITIES, NAT_WEIGHTS)[0],
                "submitted_year": submitted_year, "submitted_quarter": submitted_quarter,
                "state": "under_examination", "residence_outcome": None, "work_outcome": None, "decision_kind": None,
                "decided_year": None, "decided_quarter": None, "days_to_decision": None, "validity_months": None,
                "deemed_authorised": False, "ended_kind": None, "ended_year": None, "ended_quarter": None}
        if rnd.random() < 0.75:   # decided
            deemed = permit_type == "eu_blue_card" and rnd.random() < 0.2
            if deemed:
                decision_kind = "deemed_authorisation"
            elif rnd.random() < 0.6:
                decision_kind = rnd.choice(POSITIVE[kind])
            else:
                decision_kind = rnd.choice(NEGATIVE[kind])
            granted = decision_kind.endswith("_authorisation")
            later = rnd.random() < 0.3
            fact.update(state="notified", decision_kind=decision_kind, deemed_authorised=deemed,
                        decided_year=submitted_year + later,
                        decided_quarter=rnd.randint(1, 4) if later else rnd.randint(submitted_quarter, 4),
                        days_to_decision=90 if deemed else rnd.randint(0, 240),
                        validity_months=rnd.choice([1, 2, 3, 5, 6, 11, 12, 24, 36, None]) if granted else None)
            outcome = "granted" if granted else "refused"
            if kind == "single_permit":
                fact["residence_outcome"] = outcome if decision_kind.startswith(("residence", "deemed")) else "granted"
            fact["work_outcome"] = outcome if not decision_kind.startswith("residence") else "granted"
            if granted and rnd.random() < 0.25:   # withdrawn or ended later, maybe the next year
                fact.update(ended_kind=rnd.choice(ENDING[kind]), ended_year=fact["decided_year"] + rnd.randint(0, 1),
                            ended_quarter=rnd.randint(1, 4))
        facts.append(fact)
    return facts


FACTS = population()


def fill(engine, facts=FACTS) -> None:
    with engine.begin() as conn:
        conn.execute(stats_facts.insert(), facts)


PERIOD = {False: "submitted", True: "decided", "ended": "ended"}


def _value(fact: dict, dim: str, decided):
    if dim in ("year", "quarter"):
        return fact[f"{PERIOD[decided]}_{dim}"]
    if dim == "decision_kind" and decided == "ended":
        return fact["ended_kind"]
    return fact[dim]


def _passes(fact: dict, where: StatsFilter, decided) -> bool:
    if decided and fact[f"{PERIOD[decided]}_year"] is None:
        return False
    return ((where.year is None or _value(fact, "year", decided) == where.year)
            and (where.quarter is None or _value(fact, "quarter", decided) == where.quarter)
            and (where.region is None or fact["region"] == where.region)
            and (where.permit_type is None or fact["permit_type"] == where.permit_type))


def expected_counts(by, where=StatsFilter()) -> dict[tuple, Counter]:
    groups: dict[tuple, Counter] = defaultdict(Counter)
    for fact in FACTS:
        if _passes(fact, where, decided=False):
            groups[tuple(_value(fact, d, False) for d in by)]["applications"] += 1
        if _passes(fact, where, decided=True):
            c = groups[tuple(_value(fact, d, True) for d in by)]
            kind = fact["decision_kind"]
            c["decisions"] += 1
            for measure, suffix in (("granted", "_authorisation"), ("refused", "_refusal"),
                                    ("withdrawn", "_withdrawal"), ("ended", "_end")):
                c[measure] += kind.endswith(suffix)
            c["deemed"] += fact["deemed_authorised"]
        if _passes(fact, where, decided="ended"):   # the later withdrawal or end, in its own period
            c = groups[tuple(_value(fact, d, "ended") for d in by)]
            c["decisions"] += 1
            c["withdrawn" if fact["ended_kind"].endswith("_withdrawal") else "ended"] += 1
    return groups


def nearest_rank(values: list[int], p: float) -> int:
    """By the definition: the smallest value with at least p % of the values at or below it."""
    return min(v for v in values if sum(x <= v for x in values) >= p / 100 * len(values))


def expected_times(by, where=StatsFilter()) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for fact in FACTS:
        kind = fact["decision_kind"] or ""
        if _passes(fact, where, decided=True) and not kind.endswith(("_withdrawal", "_end")):
            groups[tuple(_value(fact, d, True) for d in by)].append(fact["days_to_decision"])
    return groups
