"""A deterministic synthetic population shared by every simulator.

Any valid INSZ can be asked about: what the person has (Dimona periods, DmfA quarters, Limosa
postings, self-employed periods) is derived from a hash of (seed, INSZ), so the Dimona, DmfA,
Limosa and INASTI simulators tell one consistent story about the same person, and two runs with
the same seed give the same answers. No real person is in it.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from hub.domain.identifiers import make_enterprise_number, make_insz
from hub.domain.territory import POSTCODE_RANGES

# joint committees (paritair comité / commission paritaire) common for single-permit workers
JOINT_COMMITTEES = ("200", "124", "302", "144", "145", "218", "226", "111", "140", "330")
SOCIAL_INSURANCE_FUNDS = ("Acerta", "Liantis", "Partena", "Securex", "Xerius", "UCM", "Group S")
SECTORS = ("construction", "meat processing", "cleaning", "IT consultancy", "transport", "horticulture")
COUNTRIES = ("PL", "RO", "PT", "BG", "IN", "TR", "UA", "MA")

@dataclass(frozen=True)
class Employment:
    period_id: str                     # Dimona period id, 12 digits
    employer: str                      # enterprise number
    nsso_number: str                   # ONSS registration number of the employer
    start: date
    end: date | None                   # None: still running
    joint_committee: str
    worker_type: str                   # Dimona worker type: OTH (ordinary), STU, FLX, …
    postcode: str                      # place of work


@dataclass(frozen=True)
class Quarter:
    quarter: str                       # yyyyQn
    employer: str
    nsso_number: str
    joint_committee: str
    days: int
    hours: float
    gross_pay_cents: int


@dataclass(frozen=True)
class Posting:
    declaration_id: str                # Limosa L1 number
    foreign_employer: str              # name of the employer abroad
    employer_country: str
    belgian_client: str                # enterprise number of the Belgian client
    start: date
    end: date
    sector: str
    workplace_postcodes: tuple[str, ...]


@dataclass(frozen=True)
class SelfEmployedPeriod:
    start: date
    end: date | None
    kind: str                          # main | secondary
    status: str                        # active | assimilated


@dataclass(frozen=True)
class Person:
    insz: str
    employments: tuple[Employment, ...]
    quarters: tuple[Quarter, ...]
    postings: tuple[Posting, ...]
    self_employed: tuple[SelfEmployedPeriod, ...]
    social_insurance_fund: str | None
    contributions_paid: bool | None

    def employments_at(self, day: date) -> list[Employment]:
        return [e for e in self.employments if e.start <= day and (e.end is None or e.end >= day)]


@dataclass(frozen=True)
class Population:
    seed: int = 2026
    today: date = date(2026, 11, 1)
    employed_share: float = 0.85
    posted_share: float = 0.10
    self_employed_share: float = 0.08

    def person(self, insz: str) -> Person:
        return _person(self, insz)

    def employer_pool(self) -> tuple[str, ...]:
        return _employer_pool(self.seed)

    def sample(self, n: int, start: int = 0) -> list[tuple[str, str]]:
        """n (INSZ, postcode) pairs; the same n and seed give the same list."""
        out = []
        for i in range(start, start + n):
            rng = random.Random(f"{self.seed}:sample:{i}")
            # (day, serial) from i one to one: distinct INSZ for up to 997 × 16,000 people
            born = date(1960, 1, 1) + timedelta(days=(i // 997) * 37 % 16_000)
            insz = make_insz(born, 1 + i % 997)
            person = self.person(insz)
            running = person.employments_at(self.today)
            postcode = running[0].postcode if running else str(rng.choice((1000, 2000, 4000, 4700, 9000)))
            out.append((insz, postcode))
        return out


@lru_cache(maxsize=8)
def _employer_pool(seed: int) -> tuple[str, ...]:
    rng = random.Random(f"{seed}:employers")
    return tuple(make_enterprise_number(rng.randrange(2_000_000, 9_999_999)) for _ in range(2_000))


def _nsso_number(employer: str) -> str:
    """The employer's ONSS registration number, "0" + 7 digits + 2 check digits (published range ≤ 199999934)."""
    base = int(employer[1:8]) % 1_999_999
    return f"0{base:07d}{97 - base % 97:02d}"


def _rng(pop: Population, insz: str, topic: str) -> random.Random:
    digest = hashlib.blake2b(f"{pop.seed}:{insz}:{topic}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _postcode(rng: random.Random) -> str:
    region = rng.choices(list(POSTCODE_RANGES), weights=(20, 30, 2, 48))[0]
    lo, hi = rng.choice(POSTCODE_RANGES[region])
    return str(rng.randrange(lo, hi + 1) // 10 * 10 or lo)


@lru_cache(maxsize=200_000)
def _person(pop: Population, insz: str) -> Person:
    rng = _rng(pop, insz, "person")
    employers = pop.employer_pool()
    employments: list[Employment] = []
    if rng.random() < pop.employed_share:
        day = pop.today - timedelta(days=rng.randrange(90, 1_500))
        for n in range(rng.randrange(1, 4)):
            employer = rng.choice(employers)
            length = rng.randrange(30, 700)
            end = day + timedelta(days=length)
            last = n == 2 or rng.random() < 0.5
            running = last and rng.random() < 0.8
            employments.append(Employment(
                period_id=str(rng.randrange(10**11, 10**12)), employer=employer,
                nsso_number=_nsso_number(employer), start=day,
                end=None if running or end >= pop.today else end,
                joint_committee=rng.choice(JOINT_COMMITTEES), worker_type="OTH",
                postcode=_postcode(rng)))
            if running or end >= pop.today or last:
                break
            day = end + timedelta(days=rng.randrange(1, 60))
    quarters = tuple(_quarters(pop, rng, employments))
    postings: tuple[Posting, ...] = ()
    if rng.random() < pop.posted_share:
        start = pop.today - timedelta(days=rng.randrange(0, 300))
        postings = (Posting(
            declaration_id=f"L1-{rng.randrange(10**9, 10**10)}", foreign_employer=f"Synthetic Works {rng.randrange(1000)}",
            employer_country=rng.choice(COUNTRIES), belgian_client=rng.choice(employers), start=start,
            end=start + timedelta(days=rng.randrange(30, 365)), sector=rng.choice(SECTORS),
            workplace_postcodes=tuple(_postcode(rng) for _ in range(rng.randrange(1, 4)))),)
    self_employed: tuple[SelfEmployedPeriod, ...] = ()
    fund, paid = None, None
    if rng.random() < pop.self_employed_share:
        start = pop.today - timedelta(days=rng.randrange(100, 3_000))
        self_employed = (SelfEmployedPeriod(start, None, rng.choice(("main", "main", "secondary")),
                                            rng.choice(("active", "active", "active", "assimilated"))),)
        fund, paid = rng.choice(SOCIAL_INSURANCE_FUNDS), rng.random() < 0.9
    return Person(insz, tuple(employments), quarters, postings, self_employed, fund, paid)


def _quarters(pop: Population, rng: random.Random, employments: list[Employment]):
    """The last four complete quarters, one DmfA line per quarter and employer the person worked for."""
    year, q = pop.today.year, (pop.today.month - 1) // 3 + 1
    for _ in range(4):
        year, q = (year, q - 1) if q > 1 else (year - 1, 4)
        first = date(year, 3 * q - 2, 1)
        last = (date(year + (q == 4), (3 * q) % 12 + 1, 1)) - timedelta(days=1)
        for e in employments:
            if e.start <= last and (e.end is None or e.end >= first):
                days = rng.randrange(20, 66)
                yield Quarter(f"{year}Q{q}", e.employer, e.nsso_number, e.joint_committee, days,
                              round(days * rng.choice((7.6, 8.0, 4.0)), 2), days * rng.randrange(9_000, 22_000))
