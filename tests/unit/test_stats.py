"""Statistics (Art. 31–32) against a generated population of anonymous facts with known counts:
every breakdown, median and p90, small-cell suppression, the Eurostat file, the API's recipients
and the `wib-hub stats` commands."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_events
from hub.interfaces.cli import stats as cli_stats
from hub.interfaces.cli.main import app
from hub.lifecycle.stats import eurostat
from hub.lifecycle.stats.queries import (
    DEFAULT_MIN_CELL,
    PERMIT_TYPES,
    StatsFilter,
    percentile,
)
from tests.support.stats import (
    FACTS,
    expected_counts,
    expected_times,
    fill,
    nearest_rank,
)

runner = CliRunner()


def test_the_population_is_what_the_tests_assume():
    decided = [f for f in FACTS if f["decided_year"]]
    assert len(FACTS) == 420 and 250 < len(decided) < 380
    assert {f["permit_type"] for f in FACTS} == set(PERMIT_TYPES)
    assert any(f["deemed_authorised"] for f in FACTS) and any(f["nationality"] is None for f in FACTS)
    assert any(f["decided_year"] != f["submitted_year"] for f in decided)
    assert any(f["ended_year"] and f["ended_year"] != f["decided_year"] for f in decided)   # grant and end apart


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([1, 2, 3, 4], 50) == 2            # the lower median, a whole day
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile(list(range(1, 12)), 90) == 10
    with pytest.raises(ValueError):
        percentile([1], 0)


def test_eurostat_validity_classes_and_mapping():
    assert [eurostat.validity_class(m) for m in (None, 2, 3, 5, 6, 11, 12, 60)] == \
        ["UNK", None, "M3-5", "M3-5", "M6-11", "M6-11", "M12-MAX", "M12-MAX"]
    assert set(eurostat.REASONS) == set(PERMIT_TYPES)
    assert eurostat.REASONS["work_permit"] is None and eurostat.REASONS["eu_blue_card"] == "EMP_BC"


def _last_event(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)).mappings().one())


def test_api_for_dvz_and_the_regions_only(local_hub):
    hc = local_hub
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
    rows = json.loads(result.stdout)["rows"]
    assert {(x["permit_type"], x["region"]): x["decisions"] for x in rows} == \
        {k: c["decisions"] for k, c in expected.items()}

    result = runner.invoke(app, ["stats", "times", "--by", "region", "--json"])
    expected_t = expected_times(("region",))
    assert {x["region"]: (x["median_days"], x["p90_days"]) for x in json.loads(result.stdout)["rows"]} == \
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
    (tmp_path / "hub.db").touch()   # a SQLite file without the tables
    result = runner.invoke(app, ["stats", "summary"])
    assert result.exit_code == 2 and "store not ready" in result.output
