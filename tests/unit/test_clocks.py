"""Statutory procedure clocks (issue 5 §2; Law of 15 December 1980, 61/27-4, 61/27-5, 61/29-4,
61/29-5): the rules file and its checks, due dates across weekends, holidays and year ends, and
start / stop / reminder / expiry / deemed authorisation with an injected time, on a real store and a
real hub."""
from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import date, datetime, timedelta

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from hub.domain import samples
from hub.domain.envelope import as_utc
from hub.domain.errors import RegistryError
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_events, dossiers, messages
from hub.interfaces.cli.demo import DemoClient
from hub.interfaces.cli.main import app
from hub.lifecycle.clocks import clock_of, parse_duration, sync
from hub.registry import default_contracts_dir, load_clocks
from tests.support.clocks import (
    BRUSSELS,
    DEEMED,
    REMINDER,
    UTC,
    _dossier,
    _registry,
)
from tests.support.clocks import rules  # noqa: F401 (a fixture)

ADMISSIBLE = "single-permit.admissible-to-dvz"


runner = CliRunner()


def local(y, m, d, hh=10, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BRUSSELS)


def test_shipped_rules_follow_the_2019_law(rules):
    r = rules.rules
    blue = r["blue-card.decision"]
    assert (blue.days, blue.extendable, blue.on_expiry, blue.holder) == (90, False, "deemed_authorisation", "dvz")
    assert blue.request_types == {"first", "renewal", "change"} and blue.categories == {"eu_blue_card"}
    assert (r["blue-card.extra-information"].days, r["blue-card.extra-information"].on_expiry) == (15, "report")
    assert r["blue-card.extra-information"].after == "complete_at"
    assert [r[i].days for i in ("seasonal.decision", "seasonal.decision-returning", "seasonal.decision-extension",
                                "seasonal.renewal", "seasonal.additional-documents")] == [90, 60, 30, 30, 10]
    assert all(x.on_expiry == "report" for x in rules if x.id != "blue-card.decision")
    assert all(x.next_working_day for x in rules)
    assert set(rules.application_fields) == {"returning_seasonal_worker", "in_country_extension"}
    assert not any("single_permit" in x.categories for x in rules)   # the requirements give it no deadline


def _copy(tmp_path, change):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    path = contracts / "clocks.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return contracts


def _set(path: str, value):
    def change(data):
        *parents, last = path.split(".")
        node = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[int(last) if isinstance(node, list) else last] = value
    return change


@pytest.mark.parametrize("change,field,words", [
    (_set("rules.0.days", "ninety"), "rules.0.days", "integer"),
    (_set("rules.0.days", 0), "rules.0.days", "greater than or equal to 1"),
    (_set("rules.0.holder", "nobody"), "rules.0.holder", "unknown party"),
    (_set("rules.1.holder", "portal"), "rules.1.holder", "may not receive platform.clock-reminder"),
    (_set("rules.0.extendable", True), "rules.0.extendable", "never extended"),
    (_set("rules.0.on_expiry", "grant"), "rules.0.on_expiry", "'report' or 'deemed_authorisation'"),
    (_set("rules.0.starts", "submitted_at"), "rules.0.starts", "complete_at"),
    (_set("rules.0.stops", {"supplied": "met"}), "rules.0.stops.supplied", "incomplete_since"),
    (_set("rules.0.stops", {"decided": "met"}), "rules.0.on_expiry", "when a part is refused"),
    (_set("rules.0.stops", {"decided": "late"}), "rules.0.stops.decided", "'met' or 'overtaken'"),
    (_set("rules.0.applies_to.categories", ["blue_card"]), "rules.0.applies_to.categories.0", "unknown category"),
    (_set("rules.0.applies_to.request_types", ["first", "prolongation"]), "rules.0.applies_to.request_types.1",
     "'first', 'renewal' or 'change'"),
    (_set("rules.2.applies_to.application", {"returning": True}), "rules.2.applies_to.application.returning",
     "application_fields"),
    (_set("rules.3.applies_to.application.returning_seasonal_worker", False), "rules.3.applies_to",
     "overlaps rule 'seasonal.decision'"),
    (_set("rules.6.id", "seasonal.renewal"), "rules.6.id", "duplicate"),
    (_set("rules.1.remind_days_before", 15), "rules.1.remind_days_before", "before the clock starts"),
    (_set("rules.0.next_working_day", "yes"), "rules.0.next_working_day", "boolean"),
    (_set("rules.0.weekday_shift", True), "rules.0.weekday_shift", "Extra inputs"),
    (lambda d: d["rules"][0].pop("holder"), "rules.0.holder", "required"),
    (_set("calendar.timezone", "Mars/Olympus_Mons"), "calendar.timezone", "unknown time zone"),
    (_set("calendar.public_holidays", "XX"), "calendar.public_holidays", "no public holidays"),
    (_set("rules", []), "rules", "at least 1"),
])
def test_a_wrong_rules_file_is_refused_naming_the_field(tmp_path, change, field, words):
    contracts = _copy(tmp_path, change)
    with pytest.raises(RegistryError) as err:
        load_clocks(contracts, _registry())      # only clocks.yaml differs from the shipped contracts
    assert (err.value.file, err.value.field) == ("clocks.yaml", field), str(err.value)
    assert words in err.value.message, err.value.message


def test_a_missing_or_unreadable_file_is_refused(tmp_path):
    contracts = _copy(tmp_path, lambda d: None)
    (contracts / "clocks.yaml").write_text("rules: [unclosed\n")
    with pytest.raises(RegistryError) as err:
        load_clocks(contracts, _registry())
    assert err.value.field == "(file)"
    (contracts / "clocks.yaml").unlink()
    with pytest.raises(RegistryError) as err:
        load_clocks(contracts, _registry())
    assert (err.value.file, err.value.field) == ("clocks.yaml", "(file)")


def test_the_hub_does_not_start_with_a_wrong_rules_file(tmp_path):
    """Needs hub/bootstrap.py to load the rules at start-up (hub.registry.load: contracts.clocks)."""
    from hub.bootstrap import build_hub
    from tests.support import hub_settings
    contracts = _copy(tmp_path, _set("rules.0.holder", "nobody"))
    with pytest.raises(RegistryError) as err:
        build_hub(hub_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}",
                               f"sqlite:///{tmp_path / 'broker.db'}", contracts_dir=contracts))
    assert (err.value.file, err.value.field) == ("clocks.yaml", "rules.0.holder")


def test_a_regional_holder_is_the_dossiers_competent_region(tmp_path):
    contracts = _copy(tmp_path, _set("rules.5.holder", "region"))
    rule = load_clocks(contracts, _registry()).get("seasonal.renewal")
    assert rule.holder_for("region.german-speaking") == "region.german-speaking"
    assert rule.holder_for("german_speaking") == "region.german-speaking"   # a contract value, mapped


def test_ninety_days_from_a_saturday_in_october_end_after_new_year_and_the_weekend(rules):
    blue = rules.get("blue-card.decision")
    start = local(2026, 10, 3)                            # a Saturday; day 1 is Sunday 4 October
    assert rules.calendar.due_date(start, 90, next_working_day=False) == date(2027, 1, 1)   # New Year, a Friday
    due_at, remind_at = rules.schedule(blue, start)
    assert due_at == datetime(2027, 1, 4, 23, 59, 59, tzinfo=BRUSSELS)   # Monday: holiday, Saturday, Sunday skipped
    assert remind_at == datetime(2026, 12, 21, 0, 0, tzinfo=BRUSSELS)    # 14 days before the due day
    assert rules.calendar.days_left(due_at, local(2027, 1, 1)) == 3
    assert rules.calendar.days_left(due_at, local(2027, 1, 4, 23, 59)) == 0
    assert rules.calendar.days_left(due_at, local(2027, 1, 5, 0, 1)) == -1


def test_a_due_day_on_christmas_saturday_2027_moves_to_monday(rules):
    start = local(2027, 9, 26)
    assert rules.calendar.due_date(start, 90, next_working_day=False) == date(2027, 12, 25)
    due_at, _ = rules.schedule(rules.get("seasonal.decision"), start)
    assert due_at.astimezone(BRUSSELS).date() == date(2027, 12, 27)
    # and a renewal's 30 days from 1 December 2027 end on New Year's Eve, a Friday: no move
    assert rules.schedule(rules.get("seasonal.renewal"), local(2027, 12, 1))[0].date() == date(2027, 12, 31)


def test_days_are_belgian_calendar_days_across_daylight_saving(rules):
    # 23:30 UTC on 28 March 2026 is already Sunday 29 March in Brussels: day 1 is 30 March
    start = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    due_at, remind_at = rules.schedule(rules.get("seasonal.additional-documents"), start)
    assert due_at == datetime(2026, 4, 8, 23, 59, 59, tzinfo=BRUSSELS)   # Wednesday, summer time
    assert due_at.utcoffset() is None or due_at.astimezone(UTC).hour == 21
    assert remind_at == datetime(2026, 4, 6, 0, 0, tzinfo=BRUSSELS).astimezone(UTC)
    # Easter Monday 2027 (29 March) is a public holiday: ten days from 19 March end on Tuesday 30 March
    assert rules.schedule(rules.get("seasonal.additional-documents"), local(2027, 3, 19))[0].date() == date(2027, 3, 30)


def _easter(year: int) -> date:
    """Anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    return date(year, month, (h + ell - 7 * m + 114) % 31 + 1)


@pytest.mark.parametrize("year", range(2025, 2036))
def test_the_ten_legal_holidays_of_the_royal_decree_of_1974_are_not_working_days(rules, year):
    easter = _easter(year)
    legal = [date(year, 1, 1), easter + timedelta(days=1), date(year, 5, 1), easter + timedelta(days=39),
             easter + timedelta(days=50), date(year, 7, 21), date(year, 8, 15), date(year, 11, 1),
             date(year, 11, 11), date(year, 12, 25)]
    assert not any(rules.calendar.is_working_day(x) for x in legal)
    # community holidays are not legal holidays (when they fall on a weekday)
    for community in (date(year, 7, 11), date(year, 9, 27), date(year, 11, 15)):
        assert rules.calendar.is_working_day(community) == (community.weekday() < 5)


def test_durations():
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("36h") == timedelta(hours=36)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("", "7", "d7", "7 days", "-1d", "7d!"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def _inbox(hc, party, flow, dossier, timeout=20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = [i for i in hc.get(party, "/v1/inbox").json()["items"]
                 if i["flow"] == flow and i["dossier_id"] == dossier]
        if items:
            return items
        time.sleep(0.02)
    return []


def _row(hub, dossier_id) -> dict:
    with hub.engine.connect() as conn:
        return dict(conn.execute(select(dossiers).where(dossiers.c.id == dossier_id)).mappings().one())


def test_blue_card_deemed_authorised_exactly_once_after_ninety_days(local_hub, rules):
    hc = local_hub
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    waiting = c.apply(samples.synthetic_application(11, category="eu_blue_card"))
    decided = c.apply(samples.synthetic_application(12, category="eu_blue_card"))
    for dossier in (waiting, decided):
        r = hc.post("region.flanders", "/v1/messages", {"flow": ADMISSIBLE, "dossier_id": dossier,
                                                        "payload": samples.sample_admissibility_decision(dossier)})
        assert r.status_code == 202, r.text
    complete_at = as_utc(_row(hc.hub, waiting)["complete_at"])
    assert _row(hc.hub, waiting)["state"] == "under_examination"
    # before any scan the dossier shows the clock its rule gives it, pending
    (pending,) = hc.get("dvz", f"/v1/dossiers/{waiting}/clocks").json()["clocks"]
    assert (pending["clock"], pending["outcome"], pending["id"]) == ("blue-card.decision", "pending", None)
    assert clock_of(hc.hub.engine, waiting) == []

    started = sync(hc.hub.ingress, rules, complete_at + timedelta(minutes=1))
    assert started.started == 2
    (clock,) = clock_of(hc.hub.engine, waiting)
    assert (clock.rule, clock.holder, clock.outcome) == ("blue-card.decision", "dvz", "running")
    assert clock.due_at == rules.schedule(rules.get("blue-card.decision"), complete_at)[0]

    # the API: DVZ sees the clocks it holds; the region holds none; the portal may not look
    r = hc.get("dvz", "/v1/clocks", params={"within": "100d"})
    assert r.status_code == 200, r.text
    listed = {x["dossier_id"]: x for x in r.json()["clocks"]}
    assert set(listed) >= {waiting, decided} and listed[waiting]["clock"] == "blue-card.decision"
    assert listed[waiting]["on_expiry"] == "deemed_authorisation" and 89 <= listed[waiting]["days_left"] <= 95
    assert waiting not in {x["dossier_id"] for x in hc.get("dvz", "/v1/clocks", params={"within": "7d"}).json()["clocks"]}
    assert hc.get("region.flanders", "/v1/clocks", params={"within": "100d"}).json()["clocks"] == []
    refused = hc.get("portal", "/v1/clocks")
    assert refused.status_code == 403 and refused.json()["error"] == "not_clock_holder"
    assert hc.get("dvz", "/v1/clocks", params={"within": "soon"}).status_code == 400
    r = hc.get("region.flanders", f"/v1/dossiers/{waiting}/clocks")
    assert r.status_code == 200 and [(x["clock"], x["id"]) for x in r.json()["clocks"]] == [("blue-card.decision", clock.id)]
    assert r.json()["clocks"][0]["due_at"] == pending["due_at"]
    assert hc.get("region.wallonia", f"/v1/dossiers/{waiting}/clocks").status_code == 403
    with hc.hub.engine.connect() as conn:
        reasons = conn.execute(select(audit_events.c.reason, audit_events.c.actor)
                               .where(audit_events.c.event == "consulted")).all()
    assert ("GET /v1/clocks within=100d count=2", "dvz") in [tuple(x) for x in reasons]
    assert ("GET /v1/dossiers/clocks count=1", "region.flanders") in [tuple(x) for x in reasons]
    assert ("GET /v1/dossiers/clocks count=1", "dvz") in [tuple(x) for x in reasons]

    # one dossier is decided in time: DVZ residence, the region work
    c.send("dvz", "single-permit.residence-decision", samples.sample_residence_decision(decided))
    c.send("region.flanders", "single-permit.work-decision", samples.sample_work_decision(decided))
    assert _row(hc.hub, decided)["state"] == "decided"
    assert sync(hc.hub.ingress, rules, complete_at + timedelta(days=1)).stopped == 1

    # the reminder, 14 days before the due day, to DVZ
    remind = sync(hc.hub.ingress, rules, clock.remind_at + timedelta(minutes=1))
    assert remind.reminded == [clock.id]
    (item,) = _inbox(hc, "dvz", REMINDER, waiting)
    assert item["payload"]["clock"] == "blue-card.decision" and item["payload"]["days_left"] == 14

    # the 90 days pass with no decision: deemed authorised, once
    late = sync(hc.hub.ingress, rules, clock.due_at + timedelta(seconds=1))
    assert late.deemed == [waiting] and late.failed == []
    for _ in range(2):
        again = sync(hc.hub.ingress, rules, clock.due_at + timedelta(days=2))
        assert again.deemed == [] and again.started == 0 and again.reminded == []
    with hc.hub.engine.connect() as conn:
        sent = conn.execute(select(messages).where(messages.c.flow_id == DEEMED)).mappings().all()
    assert [m["dossier_id"] for m in sent] == [waiting]
    assert sent[0]["payload"]["complete_at"] == complete_at.isoformat()
    assert sorted(sent[0]["recipients"]) == ["dvz", "region.flanders"]
    row = _row(hc.hub, waiting)
    assert (row["state"], row["residence_outcome"], row["work_outcome"]) == ("decided", "granted", "granted")
    assert row["residence_decision_kind"] == row["work_decision_kind"] == "deemed_authorisation"
    (after,) = clock_of(hc.hub.engine, waiting)
    assert after.outcome == "deemed_authorised" and after.stopped_at is not None
    assert _inbox(hc, "dvz", DEEMED, waiting) and _inbox(hc, "region.flanders", DEEMED, waiting)
    # the dossier decided in time was not deemed anything
    assert [v.outcome for v in clock_of(hc.hub.engine, decided)] == ["met"]
    assert _row(hc.hub, decided)["residence_decision_kind"] == "residence_authorisation"


def test_cli_due_sync_and_rules(tmp_path, monkeypatch):
    from rich.console import Console

    from hub.interfaces.cli import clocks as cli_clocks
    from tests.support import SANDBOX_DIR
    monkeypatch.setattr(cli_clocks, "console", Console(width=240))
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    for key, value in {"HUB_DATA_DIR": str(tmp_path / "data"), "HUB_DATABASE_URL": url,
                       "HUB_BROKER_URL": f"sqlite:///{tmp_path / 'broker.db'}", "HUB_SANDBOX_DIR": str(SANDBOX_DIR),
                       "HUB_QUEUE_PREFIX": f"t{uuid.uuid4().hex[:8]}."}.items():
        monkeypatch.setenv(key, value)
    engine = open_engine(url)
    migrate(engine)
    complete = datetime(2026, 10, 3, 8, tzinfo=UTC)
    dossier = _dossier(engine, category="seasonal_worker", complete_at=complete)
    engine.dispose()

    r = runner.invoke(app, ["clocks", "sync", "--now", "2026-10-03T09:00:00Z", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["started"] == 1
    # 90 days from Saturday 3 October 2026 end on New Year's Day: Monday 4 January 2027
    r = runner.invoke(app, ["clocks", "due", "--within", "8d", "--now", "2026-12-28T09:00:00+01:00", "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["clocks"]
    assert (row["dossier_id"], row["clock"], row["days_left"]) == (dossier, "seasonal.decision", 7)
    assert row["due_at"] == "2027-01-04T22:59:59+00:00" and row["legal_basis"]
    r = runner.invoke(app, ["clocks", "due", "--within", "2d", "--now", "2026-12-28T09:00:00+01:00", "--json"])
    assert json.loads(r.stdout)["clocks"] == []
    r = runner.invoke(app, ["clocks", "due", "--within", "8d", "--holder", "region.flanders",
                            "--now", "2026-12-28T09:00:00+01:00", "--json"])
    assert json.loads(r.stdout)["clocks"] == []
    r = runner.invoke(app, ["clocks", "due", "--within", "30d", "--now", "2026-12-28T09:00:00+01:00"])
    assert r.exit_code == 0 and "seasonal.decision" in r.output and dossier in r.output
    r = runner.invoke(app, ["clocks", "sync", "--now", "2027-01-05T00:00:01+01:00"])
    assert r.exit_code == 0 and "1 expired" in r.output, r.output
    assert runner.invoke(app, ["clocks", "due", "--within", "a week"]).exit_code == 2
    assert runner.invoke(app, ["clocks", "due", "--now", "yesterday"]).exit_code == 2
    r = runner.invoke(app, ["clocks", "rules"])
    assert r.exit_code == 0 and "blue-card.decision" in r.output and "deemed authorisation" in r.output
