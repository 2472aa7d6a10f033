"""Statistics (Art. 31–32) against a generated population of anonymous facts with known counts:
every breakdown, median and p90, small-cell suppression, the Eurostat file, the API's recipients
and the `wib-hub stats` commands.

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

import csv
import io
import itertools
from collections import Counter

import pytest

from hub.domain.errors import MalformedMessage
from hub.infra.store import migrate, open_engine
from hub.lifecycle.stats import eurostat
from hub.lifecycle.stats.queries import (
    DEFAULT_MIN_CELL,
    DIMENSIONS,
    PERMIT_LABELS,
    PERMIT_TYPES,
    StatsFilter,
    counts,
    processing_times,
)
from tests.support.stats import (
    FACTS,
    expected_counts,
    expected_times,
    fill,
    nearest_rank,
)


@pytest.fixture
def store(store_url):
    engine = open_engine(store_url)
    migrate(engine)
    fill(engine)
    yield engine
    engine.dispose()


def _key(row: dict, by) -> tuple:
    return tuple(row[d] for d in by)


BREAKDOWNS = [(), ("permit_type",), ("decision_kind",), ("region", "year"), ("year", "quarter"),
              ("permit_type", "region", "quarter"), ("permit_type", "decision_kind", "region", "year", "quarter")]


FILTERS = [StatsFilter(), StatsFilter(year=2024), StatsFilter(year=2025, quarter=2, region="brussels"),
           StatsFilter(permit_type="eu_blue_card"), StatsFilter(region="flanders", permit_type="single_permit")]


def test_counts_match_the_population_for_every_breakdown_and_filter(store):
    for by, where in itertools.product(BREAKDOWNS, FILTERS):
        table = counts(store, by, where)
        expected = expected_counts(by, where)
        got = {_key(r, by): {m: r[m] for m in table.measures} for r in table.rows}
        assert got == {k: {m: c[m] for m in table.measures} for k, c in expected.items()}, (by, where)
        assert not table.suppressed
        assert table.total == {m: sum(c[m] for c in expected.values()) for m in table.measures}
    everything = counts(store).total
    assert everything["applications"] == 420
    assert everything["decisions"] == sum(1 for f in FACTS if f["decided_year"]) + sum(1 for f in FACTS if f["ended_year"])
    assert everything["decisions"] == sum(everything[m] for m in ("granted", "refused", "withdrawn", "ended"))
    assert everything["deemed"] == sum(f["deemed_authorised"] for f in FACTS) > 0


def test_every_dimension_alone_and_rows_in_a_stable_order(store):
    for dim in DIMENSIONS:
        table = counts(store, [dim], min_cell=1)      # min_cell 1: nothing to suppress, even by nationality
        expected = expected_counts([dim])
        assert {_key(r, [dim]): r["applications"] for r in table.rows} == \
            {k: c["applications"] for k, c in expected.items()}, dim
        keys = [r[dim] for r in table.rows]
        present = [k for k in keys if k is not None]
        assert keys == present + [None] * (len(keys) - len(present)), dim      # None last, on both stores
        if dim != "permit_type":
            assert present == sorted(present), dim
    assert [r["permit_type"] for r in counts(store, ["permit_type"]).rows] == list(PERMIT_TYPES)
    labelled = counts(store, ["permit_type"]).as_json()["rows"]
    assert [r["permit_type_label"] for r in labelled] == list(PERMIT_LABELS.values())
    assert PERMIT_LABELS["other_eu_directive"] == "other" and PERMIT_LABELS["eu_blue_card"] == "Blue Card"


def test_breakdowns_by_nationality_suppress_small_cells_but_not_totals(store):
    for by, min_cell in ((("nationality",), DEFAULT_MIN_CELL), (("nationality", "year"), DEFAULT_MIN_CELL),
                         (("permit_type", "nationality"), 3)):
        table = counts(store, by, min_cell=min_cell)
        assert table.suppressed and table.as_json()["suppression"] == {"applied": True, "min_cell": min_cell,
                                                                      "shown_as": f"<{min_cell}"}
        expected = expected_counts(by)
        shown = 0
        for row in table.rows:
            for m in table.measures:
                n = expected[_key(row, by)][m]
                assert row[m] == (f"<{min_cell}" if 0 < n < min_cell else n), (by, row, m)
                shown += row[m] == f"<{min_cell}"
        assert shown > 0   # the rare nationalities are there to be hidden
        assert table.total == {m: sum(c[m] for c in expected.values()) for m in table.measures}
    # the same breakdown without nationality is exact
    assert all(isinstance(r[m], int) for r in counts(store, ["permit_type", "year"]).rows for m in ("applications",))


def test_processing_times_median_and_p90_match_a_direct_computation(store):
    for by, where in itertools.product(BREAKDOWNS, FILTERS):
        table = processing_times(store, by, where)
        expected = expected_times(by, where)
        got = {_key(r, by): (r["decisions"], r["median_days"], r["p90_days"]) for r in table.rows}
        assert got == {k: (len(v), nearest_rank(v, 50), nearest_rank(v, 90)) for k, v in expected.items()}, by
        every = [d for v in expected.values() for d in v]
        assert table.total == ({"decisions": len(every), "median_days": nearest_rank(every, 50),
                                "p90_days": nearest_rank(every, 90)} if every else
                               {"decisions": 0, "median_days": None, "p90_days": None})
    # withdrawals and ends of a permit are not the processing of an application
    kinds = {r["decision_kind"] for r in processing_times(store, ["decision_kind"]).rows}
    assert kinds and not any(k.endswith(("_withdrawal", "_end")) for k in kinds)
    assert {r["decision_kind"]: r["median_days"] for r in processing_times(
        store, ["decision_kind"]).rows}["deemed_authorisation"] == 90


def test_processing_times_by_nationality_hide_small_groups(store):
    table = processing_times(store, ["nationality"])
    expected = expected_times(["nationality"])
    hidden = [r for r in table.rows if r["decisions"] == "<5"]
    assert hidden and all(r["median_days"] is None and r["p90_days"] is None for r in hidden)
    for r in table.rows:
        days = expected[(r["nationality"],)]
        assert (len(days) < 5) == (r in hidden)
    assert table.total["decisions"] == sum(len(v) for v in expected.values())


def test_bad_filters_and_dimensions_are_refused(store):
    for bad in ({"quarter": 5}, {"region": "atlantis"}, {"permit_type": "tourist"}, {"year": 99}):
        with pytest.raises(MalformedMessage) as err:
            StatsFilter(**bad)
        assert err.value.code == "invalid_request"
    for by in (["colour"], ["region", "region"]):
        with pytest.raises(MalformedMessage):
            counts(store, by)


def expected_eurostat(year: int) -> Counter:
    cells: Counter = Counter()
    for f in FACTS:
        if f["application_kind"] != "single_permit":
            continue
        issued = f["decided_year"] == year and (f["decision_kind"] or "").endswith("_authorisation")
        withdrawn = f["ended_year"] == year and (f["ended_kind"] or "").endswith("_withdrawal")
        months = f["validity_months"]
        if months is not None and months < 3:
            continue
        validity = "UNK" if months is None else "M3-5" if months <= 5 else "M6-11" if months <= 11 else "M12-MAX"
        reason, citizenship = eurostat.REASONS[f["permit_type"]], f["nationality"] or "UNK"
        if issued:
            kind = {"first": "FIRST", "change": "CHANGE", "renewal": "RENEWAL"}[f["request_type"]]
            cells[(reason, citizenship, validity, kind)] += 1
        if withdrawn:
            cells[(reason, citizenship, validity, "WITHDRAWN")] += 1
    return cells


def test_eurostat_rows_for_a_year(store):
    for year in (2023, 2024, 2025, 2026):
        table = eurostat.rows(store, year)
        expected = expected_eurostat(year)
        assert {(r["reason"], r["citizenship"], r["validity"], r["kind"]): r["count"] for r in table} == dict(expected)
        assert all(r["year"] == year for r in table)
        assert len(table) == len(expected)
    table = eurostat.rows(store, 2024)
    assert {r["reason"] for r in table} <= {"EMP_BC", "EMP_RES", "EMP_SEAS", "EMP_ICT", "EMP_OTH", "EDUC_OTH"}
    assert {r["kind"] for r in table} == {"FIRST", "CHANGE", "RENEWAL", "WITHDRAWN"}
    assert {r["validity"] for r in table} == {"M3-5", "M6-11", "M12-MAX", "UNK"}
    # work permits and professional cards are not residence permits
    assert sum(r["count"] for r in table) == sum(expected_eurostat(2024).values())
    parsed = list(csv.DictReader(io.StringIO(eurostat.to_csv(table))))
    assert tuple(parsed[0]) == eurostat.COLUMNS == ("year", "reason", "citizenship", "validity", "kind", "count")
    assert [{k: str(v) for k, v in r.items()} for r in table] == parsed
    masked = eurostat.rows(store, 2024, min_cell=3)
    assert [r["count"] if r["count"] >= 3 else "<3" for r in table] == [r["count"] for r in masked]
