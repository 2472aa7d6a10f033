"""Statistics (Art. 31–32) against a generated population of anonymous facts with known counts:
every breakdown, median and p90, small-cell suppression, the Eurostat file, the API's recipients
and the `wib-hub stats` commands."""
from __future__ import annotations

import csv
import io
import itertools
import json
import random
import uuid
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.interfaces.cli import stats as cli_stats
from hub.interfaces.cli.main import app
from hub.domain.errors import MalformedMessage
from hub.lifecycle.stats import eurostat
from hub.lifecycle.stats.queries import (
    DEFAULT_MIN_CELL, DIMENSIONS, PERMIT_LABELS, PERMIT_TYPES, REGIONS, StatsFilter, counts, percentile,
    processing_times,
)
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_events, stats_facts

runner = CliRunner()

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
    """n facts as the lead's hub/stats/facts.py writes them, drawn from a seeded generator."""
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


@pytest.fixture
def store(store_url):
    engine = open_engine(store_url)
    migrate(engine)
    fill(engine)
    yield engine
    engine.dispose()


# --- the expected answers, computed directly from the generated facts ----------------------------

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


def _key(row: dict, by) -> tuple:
    return tuple(row[d] for d in by)


BREAKDOWNS = [(), ("permit_type",), ("decision_kind",), ("region", "year"), ("year", "quarter"),
              ("permit_type", "region", "quarter"), ("permit_type", "decision_kind", "region", "year", "quarter")]
FILTERS = [StatsFilter(), StatsFilter(year=2024), StatsFilter(year=2025, quarter=2, region="brussels"),
           StatsFilter(permit_type="eu_blue_card"), StatsFilter(region="flanders", permit_type="single_permit")]


def test_the_population_is_what_the_tests_assume():
    decided = [f for f in FACTS if f["decided_year"]]
    assert len(FACTS) == 420 and 250 < len(decided) < 380
    assert {f["permit_type"] for f in FACTS} == set(PERMIT_TYPES)
    assert any(f["deemed_authorised"] for f in FACTS) and any(f["nationality"] is None for f in FACTS)
    assert any(f["decided_year"] != f["submitted_year"] for f in decided)
    assert any(f["ended_year"] and f["ended_year"] != f["decided_year"] for f in decided)   # grant and end apart


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


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([1, 2, 3, 4], 50) == 2            # the lower median, a whole day
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile(list(range(1, 12)), 90) == 10
    with pytest.raises(ValueError):
        percentile([1], 0)


def test_bad_filters_and_dimensions_are_refused(store):
    for bad in ({"quarter": 5}, {"region": "atlantis"}, {"permit_type": "tourist"}, {"year": 99}):
        with pytest.raises(MalformedMessage) as err:
            StatsFilter(**bad)
        assert err.value.code == "invalid_request"
    for by in (["colour"], ["region", "region"]):
        with pytest.raises(MalformedMessage):
            counts(store, by)


# --- Eurostat ------------------------------------------------------------------------------------

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


def test_eurostat_validity_classes_and_mapping():
    assert [eurostat.validity_class(m) for m in (None, 2, 3, 5, 6, 11, 12, 60)] == \
        ["UNK", None, "M3-5", "M3-5", "M6-11", "M6-11", "M12-MAX", "M12-MAX"]
    assert set(eurostat.REASONS) == set(PERMIT_TYPES)
    assert eurostat.REASONS["work_permit"] is None and eurostat.REASONS["eu_blue_card"] == "EMP_BC"


# --- API -----------------------------------------------------------------------------------------

def _last_event(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)).mappings().one())


def test_api_for_dvz_and_the_regions_only(embedded_hub):
    hc = embedded_hub
    engine = hc.hub.engine
    fill(engine)
    r = hc.get("dvz", "/v1/stats/applications", params={"by": "permit_type,region", "year": 2024})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = expected_counts(("permit_type", "region"), StatsFilter(year=2024))
    assert {(x["permit_type"], x["region"]): x["applications"] for x in body["rows"]} == \
        {k: c["applications"] for k, c in expected.items()}
    assert body["total"]["decisions"] == sum(c["decisions"] for c in expected.values())
    event = _last_event(engine)
    assert (event["event"], event["actor"], event["outcome"], event["dossier_id"]) == ("consulted", "dvz", "ok", None)
    assert event["reason"] == "GET /v1/stats/applications: by=permit_type,region,year"
    assert list(event["data_categories"]) == []

    r = hc.get("region.wallonia", "/v1/stats/processing-times", params={"by": "nationality"})
    assert r.status_code == 200, r.text
    assert r.json()["suppression"]["applied"] and any(x["decisions"] == "<5" for x in r.json()["rows"])
    assert _last_event(engine)["actor"] == "region.wallonia"

    r = hc.get("region.flanders", "/v1/stats/eurostat", params={"year": 2024})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == eurostat.to_csv(eurostat.rows(engine, 2024))
    assert _last_event(engine)["reason"] == "GET /v1/stats/eurostat: year"

    before = _last_event(engine)["seq"]
    for path in ("/v1/stats/applications", "/v1/stats/processing-times", "/v1/stats/eurostat?year=2024"):
        r = hc.get("portal", path)
        assert r.status_code == 403 and r.json()["error"] == "not_statistics_recipient", r.text
        event = _last_event(engine)
        assert (event["event"], event["outcome"], event["actor"]) == ("rejected", "rejected", "portal")
        assert event["reason"].startswith("not_statistics_recipient /v1/stats/")
    assert _last_event(engine)["seq"] == before + 3   # one rejected event each, nothing else

    r = hc.get("dvz", "/v1/stats/applications", params={"by": "colour"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert hc.get("dvz", "/v1/stats/eurostat").status_code == 400   # the year is required


# --- CLI -----------------------------------------------------------------------------------------

@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    from hub.infra.settings import Settings
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    engine = open_engine(Settings().resolved_database_url())
    migrate(engine)
    fill(engine)
    yield engine
    engine.dispose()


def test_cli_tables_json_and_the_eurostat_file(cli_store, tmp_path):
    assert cli_stats.MIN_CELL == DEFAULT_MIN_CELL
    wide = {"COLUMNS": "220"}
    result = runner.invoke(app, ["stats"], env=wide)
    assert result.exit_code == 0, result.output
    assert "Applications and decisions" in result.output and "Processing times" in result.output
    assert "Blue Card" in result.output and "professional card" in result.output

    result = runner.invoke(app, ["stats", "summary", "--year", "2024", "--by", "permit_type,region", "--json"])
    assert result.exit_code == 0, result.output
    expected = expected_counts(("permit_type", "region"), StatsFilter(year=2024))
    rows = json.loads(result.output)["rows"]
    assert {(x["permit_type"], x["region"]): x["decisions"] for x in rows} == \
        {k: c["decisions"] for k, c in expected.items()}

    result = runner.invoke(app, ["stats", "times", "--by", "region", "--json"])
    expected_t = expected_times(("region",))
    assert {x["region"]: (x["median_days"], x["p90_days"]) for x in json.loads(result.output)["rows"]} == \
        {k[0]: (nearest_rank(v, 50), nearest_rank(v, 90)) for k, v in expected_t.items()}

    result = runner.invoke(app, ["stats", "summary", "--by", "nationality"], env=wide)
    assert result.exit_code == 0 and "<5" in result.output and "totals exact" in result.output

    out = tmp_path / "eurostat-2024.csv"
    result = runner.invoke(app, ["stats", "eurostat", "--year", "2024", "--out", str(out)], env=wide)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().decode() == eurostat.to_csv(eurostat.rows(cli_store, 2024))
    assert "EMP_BC" in result.output and "WITHDRAWN" in result.output
    stdout = runner.invoke(app, ["stats", "eurostat", "--year", "2024"])
    assert stdout.stdout_bytes.decode() == out.read_bytes().decode()

    event = _last_event(cli_store)
    assert (event["event"], event["actor"], event["reason"]) == ("consulted", "onss", "cli stats eurostat: year")

    bad = runner.invoke(app, ["stats", "summary", "--by", "colour"])
    assert bad.exit_code == 2 and "invalid_request" in bad.output
    assert runner.invoke(app, ["stats", "times", "--region", "atlantis"]).exit_code == 2


def test_cli_on_a_store_without_the_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["stats", "summary"])
    assert result.exit_code == 2 and "store not ready" in result.output
