"""The security officer's tools (audit search and report) and the record of processing (GDPR art. 30)."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub import audit
from hub.audit import AuditEvent
from hub.audit.report import OfficeHours
from hub.domain import samples
from hub.domain.errors import MalformedMessage
from hub.infra.store.schema import audit_events, dossiers
from hub.interfaces.cli.demo import DemoClient, procedure
from hub.interfaces.cli.main import app
from hub.lifecycle.processing_register import (
    CSV_FIELDS,
    build_register,
    to_csv,
    to_markdown,
)
from hub.registry import default_contracts_dir, load_registry
from tests.support.security_officer import BRUSSELS

OFFICER = "security-officer"


runner = CliRunner()


def _last_event(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)).mappings().one())


@pytest.fixture
def demo_hub(local_hub):
    """The demo's procedure on the embedded hub, plus a denied attempt, a named person's consultation
    and two consultations stamped at chosen times (one outside office hours, one inside)."""
    hc = local_hub
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    procedure(c)
    with hc.hub.engine.connect() as conn:
        a, b = conn.execute(select(dossiers.c.id).order_by(dossiers.c.created_at)).scalars().all()
    # DVZ may not send the region's work decision: refused, and on the record
    r = hc.post("dvz", "/v1/messages", {"flow": "single-permit.work-decision", "dossier_id": a,
                                        "payload": samples.sample_work_decision(a)})
    assert r.status_code == 403, r.text
    # a named DVZ agent consults dossier A (health and criminal-record data among what DVZ received)
    r = hc.http.get(f"/v1/dossiers/{a}", headers={"Authorization": f"Bearer {hc.token('dvz', 'agent-42')}"})
    assert r.status_code == 200, r.text
    yesterday = datetime.now(BRUSSELS).date() - timedelta(days=1)
    night = datetime(yesterday.year, yesterday.month, yesterday.day, 23, 30, tzinfo=BRUSSELS)
    wednesday = yesterday - timedelta(days=(yesterday.weekday() - 2) % 7)
    office = datetime(wednesday.year, wednesday.month, wednesday.day, 10, 0, tzinfo=BRUSSELS)
    work = hc.hub.work
    work.record([AuditEvent("consulted", dossier_id=a, actor="region.flanders", acting_person="agent-night",
                            data_categories=["administrative"], reason="GET /v1/dossiers")],
                at=night.astimezone(timezone.utc))
    night_seq = audit.tail(work.reads, 1)[0]["seq"]
    work.record([AuditEvent("consulted", dossier_id=a, actor="region.flanders", acting_person="agent-day",
                            reason="GET /v1/dossiers")], at=office.astimezone(timezone.utc))
    office_seq = audit.tail(work.reads, 1)[0]["seq"]
    hc.ids = {"a": a, "b": b, "night": night_seq, "office": office_seq}
    return hc


def _officer_get(hc, path, **params):
    return hc.get(OFFICER, path, params=params)


def test_search_by_each_filter_on_the_demo_data(demo_hub):
    hc, ids = demo_hub, demo_hub.ids
    r = _officer_get(hc, "/v1/audit/events", dossier=ids["a"], limit=1000)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and {i["dossier_id"] for i in items} == {ids["a"]}
    assert r.json()["next_after"] is None

    by_party = _officer_get(hc, "/v1/audit/events", party="dvz", limit=1000).json()["items"]
    assert {"dvz"} <= {i["actor"] for i in by_party} and any(i["recipient"] == "dvz" for i in by_party)
    assert all("dvz" in (i["actor"], i["recipient"]) for i in by_party)

    person = _officer_get(hc, "/v1/audit/events", acting_person="agent-42").json()["items"]
    assert [i["event"] for i in person] == ["consulted"] and person[0]["actor"] == "dvz"

    flow = "single-permit.residence-decision"
    on_flow = _officer_get(hc, "/v1/audit/events", flow=flow, purpose=3, event="delivered").json()["items"]
    assert len(on_flow) == 2 and all(i["flow_id"] == flow and i["purpose"] == 3 for i in on_flow)

    denied = _officer_get(hc, "/v1/audit/events", outcome="rejected").json()["items"]
    assert [(i["actor"], i["flow_id"]) for i in denied] == [("dvz", "single-permit.work-decision")]

    night = datetime.fromisoformat(_officer_get(hc, "/v1/audit/events", acting_person="agent-night")
                                   .json()["items"][0]["ts"])
    window = _officer_get(hc, "/v1/audit/events", since=night.isoformat(),
                          until=(night + timedelta(seconds=1)).isoformat()).json()["items"]
    assert [i["seq"] for i in window] == [ids["night"]]
    assert all("payload" not in i and "prev_hash" not in i for i in items)


def test_search_pages_with_after_and_limit(demo_hub):
    hc = demo_hub
    whole = _officer_get(hc, "/v1/audit/events", party="dvz", limit=1000).json()["items"]
    seen, after = [], 0
    while True:
        page = _officer_get(hc, "/v1/audit/events", party="dvz", limit=7, after=after).json()
        assert len(page["items"]) <= 7
        seen += page["items"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [i["seq"] for i in seen] == [i["seq"] for i in whole]
    assert len(seen) > 7


def test_a_search_is_itself_on_the_record_without_the_values(demo_hub):
    hc, ids = demo_hub, demo_hub.ids
    r = _officer_get(hc, "/v1/audit/events", dossier=ids["a"], acting_person="agent-42")
    assert r.status_code == 200
    ev = _last_event(hc.hub.engine)
    assert ev["event"] == "consulted" and ev["actor"] == OFFICER and ev["outcome"] == "ok"
    assert ev["reason"] == "api audit search: dossier,acting_person"
    assert "agent-42" not in json.dumps({k: str(v) for k, v in ev.items()})
    assert ev["dossier_id"] == ids["a"]       # who looked at this dossier's trail is itself findable
    assert audit.verify(hc.hub.engine).intact


def test_other_roles_are_refused_and_the_refusal_is_recorded(demo_hub):
    hc = demo_hub
    for party in ("dvz", "region.flanders", "onss", "portal"):
        for path in ("/v1/audit/events", "/v1/audit/report"):
            r = hc.get(party, path)
            assert r.status_code == 403 and r.json()["error"] == "not_security_officer", (party, path)
            ev = _last_event(hc.hub.engine)
            assert (ev["event"], ev["actor"], ev["reason"]) == ("rejected", party, f"not_security_officer {path}")
    assert hc.http.get("/v1/audit/events").status_code == 401


def test_bad_search_input_is_a_clear_400_and_nothing_is_consulted(demo_hub):
    hc = demo_hub
    cases = [({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "invalid_time_range"),
             ({"limit": 0}, "invalid_request"), ({"purpose": 12}, "invalid_request"),
             ({"since": "yesterday"}, "invalid_request"),
             ({"outcome": "whatever"}, "invalid_request"), ({"event": "nothing"}, "invalid_request")]
    for params, code in cases:
        r = _officer_get(hc, "/v1/audit/events", **params)
        assert r.status_code == 400 and r.json()["error"] == code, (params, r.text)
        ev = _last_event(hc.hub.engine)
        assert ev["event"] == "rejected" and ev["actor"] == OFFICER
    r = _officer_get(hc, "/v1/audit/report", office_hours="whenever")
    assert r.status_code == 400 and r.json()["error"] == "invalid_office_hours"


def test_report_on_the_demo_data(demo_hub):
    hc, ids = demo_hub, demo_hub.ids
    r = _officer_get(hc, "/v1/audit/report")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["office_hours"] == "Mon,Tue,Wed,Thu,Fri 08:00-18:00 Europe/Brussels"

    denied = {d["party"]: d for d in rep["denied_attempts_per_party"]}
    assert denied["dvz"]["attempts"] == 1 and denied["dvz"]["codes"] == {"sender_not_allowed": 1}, denied
    assert denied["dvz"]["flows"] == ["single-permit.work-decision"]

    special = {(s["party"], s["person"]): s for s in rep["special_category_access_per_person"]}
    dvz = special[("dvz", "dvz")]                       # no person named: the party itself
    assert dvz["person_named"] is False and dvz["delivered"] >= 1 and dvz["acknowledged"] >= 1
    assert dvz["health"] >= 1 and dvz["criminal_record"] >= 1
    agent = special[("dvz", "agent-42")]
    assert agent["person_named"] and agent["consulted"] == 1 and agent["dossiers"] == 1
    # need to know: the regions never had health or criminal-record data on these dossiers
    assert not any(p.startswith("region.") for p, _ in special)

    after = {e["seq"]: e for e in rep["consultations_outside_office_hours"]}
    assert ids["night"] in after and ids["office"] not in after
    assert after[ids["night"]]["local_time"].endswith("+01:00") or after[ids["night"]]["local_time"].endswith("+02:00")
    assert after[ids["night"]]["acting_person"] == "agent-night"

    first = {(f["party"], f["flow_id"], f["role"]) for f in rep["flows_used_for_the_first_time"]}
    assert ("portal", "single-permit.application-submitted", "sent") in first
    assert ("dvz", "single-permit.admissible-to-dvz", "received") in first
    assert len(first) == len(rep["flows_used_for_the_first_time"])   # once per party and flow

    ev = _last_event(hc.hub.engine)
    assert (ev["event"], ev["actor"], ev["reason"]) == ("consulted", OFFICER, "api audit report: no filter")


def test_first_use_counts_only_flows_not_used_before_the_range(demo_hub):
    hc, ids = demo_hub, demo_hub.ids
    b_start = _officer_get(hc, "/v1/audit/events", dossier=ids["b"], limit=1).json()["items"][0]["ts"]
    rep = _officer_get(hc, "/v1/audit/report", since=b_start).json()
    first = {(f["party"], f["flow_id"], f["role"]) for f in rep["flows_used_for_the_first_time"]}
    # applicant B's application went the way A's did: nothing new for the portal or DVZ on those flows
    assert ("portal", "single-permit.application-submitted", "sent") not in first
    assert ("dvz", "single-permit.admissible-to-dvz", "received") not in first
    # …but Wallonia had never been party to the procedure, and DVZ never sent a negative decision notice
    assert ("region.wallonia", "single-permit.application-submitted", "received") in first
    assert ("region.wallonia", "single-permit.admissible-to-dvz", "sent") in first
    assert ("dvz", "single-permit.negative-decision-notice", "sent") in first
    assert rep["since"].startswith(b_start[:19])


def test_office_hours_follow_brussels_time_and_summer_time():
    hours = OfficeHours.parse("Mon-Fri 08:00-18:00 Europe/Brussels")
    utc = timezone.utc
    assert hours.contains(datetime(2024, 1, 15, 7, 30, tzinfo=utc))       # 08:30 CET
    assert not hours.contains(datetime(2024, 1, 15, 6, 30, tzinfo=utc))   # 07:30 CET
    assert hours.contains(datetime(2024, 7, 1, 6, 30, tzinfo=utc))        # 08:30 CEST
    assert not hours.contains(datetime(2024, 7, 1, 16, 30, tzinfo=utc))   # 18:30 CEST
    assert not hours.contains(datetime(2024, 7, 6, 10, 0, tzinfo=utc))    # Saturday
    assert OfficeHours.parse("Sat,Sun 10:00-12:00 UTC").contains(datetime(2024, 7, 6, 11, 0, tzinfo=utc))
    for bad in ("always", "Mon-Fri 18:00-08:00 Europe/Brussels", "Mon-Fri 08:00-18:00 Mars/Olympus",
                "Funday 08:00-18:00 UTC"):
        with pytest.raises(MalformedMessage):
            OfficeHours.parse(bad)


def _cli(hc, *args):
    env = {"HUB_DATABASE_URL": hc.hub.settings.resolved_database_url(), "COLUMNS": "250"}
    return runner.invoke(app, list(args), env=env)


def test_cli_search_and_report_run_on_the_demo_data(demo_hub):
    hc, ids = demo_hub, demo_hub.ids
    res = _cli(hc, "audit", "search", "--dossier", ids["b"], "--json", "--limit", "1000")
    assert res.exit_code == 0, res.output
    page = json.loads(res.stdout)
    assert page["items"] and {i["dossier_id"] for i in page["items"]} == {ids["b"]}
    ev = _last_event(hc.hub.engine)
    assert (ev["event"], ev["actor"], ev["reason"]) == ("consulted", OFFICER, "cli audit search: dossier")

    table = _cli(hc, "audit", "search", "--party", "dvz", "--outcome", "rejected", "--officer", "officer-1")
    assert table.exit_code == 0 and "work-decision" in table.output and "last page" in table.output
    assert _last_event(hc.hub.engine)["acting_person"] == "officer-1"

    rep = _cli(hc, "audit", "report")
    assert rep.exit_code == 0, rep.output
    for title in ("denied attempts per party", "special-category accesses per person",
                  "consultations outside office hours", "flows used by a party for the first time"):
        assert title in rep.output
    assert "agent-night" in rep.output and "sender_not_allowed" in rep.output

    js = _cli(hc, "audit", "report", "--json", "--office-hours", "Mon-Fri 09:00-17:00 Europe/Brussels")
    assert js.exit_code == 0, js.output
    body = json.loads(js.stdout)
    assert body["office_hours"].endswith("09:00-17:00 Europe/Brussels")
    assert any(d["party"] == "dvz" for d in body["denied_attempts_per_party"])
    assert _last_event(hc.hub.engine)["reason"] == "cli audit report: office_hours"

    bad = _cli(hc, "audit", "search", "--since", "last tuesday")
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
    assert _cli(hc, "audit", "report", "--office-hours", "nope").exit_code == 2
    assert audit.verify(hc.hub.engine).intact


def test_register_has_every_flow_and_every_art30_heading():
    registry = load_registry(default_contracts_dir())
    entries = build_register(registry)
    assert sorted(e.flow for e in entries) == sorted(registry.flows)
    md = to_markdown(entries, registry)
    for flow in registry.flows.values():
        assert f"## {flow.id} — {flow.title}" in md
    sections = md.split("\n## ")[1:]
    assert len(sections) == len(registry.flows)
    for section in sections:
        for heading in ("**Purpose**", "**Legal basis**", "**Controllers**", "**Processor**",
                        "**Categories of data subjects**", "**Categories of personal data**", "**Recipients**",
                        "**Retention**", "**Transfers to third countries**"):
            assert f"- {heading}" in section, (heading, section[:60])
    assert "National Social Security Office (onss)" in md and "Art. 27" in md

    rows = list(csv.DictReader(io.StringIO(to_csv(entries))))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == len(registry.flows)
    by_flow = {r["flow"]: r for r in rows}
    adm = by_flow["single-permit.admissible-to-dvz"]
    assert adm["purpose"] == "Art. 10 3°" and "Immigration Office (dvz)" in adm["recipients"]
    assert "health" in adm["recipients"] and "region.flanders" in adm["controllers"]
    assert by_flow["single-permit.withdrawal-to-employment-service"]["purpose"] == "Art. 10 9°"
    assert all(r["legal_basis"] and r["data_subjects"] and r["retention"] for r in rows)


def test_cli_flows_register_md_and_csv(tmp_path):
    registry = load_registry(default_contracts_dir())
    md = runner.invoke(app, ["flows", "register"], env={"COLUMNS": "200"})
    assert md.exit_code == 0 and md.stdout.startswith("# Record of processing activities (GDPR art. 30)")
    assert all(f in md.stdout for f in registry.flows)
    out = tmp_path / "register.csv"
    res = runner.invoke(app, ["flows", "register", "--format", "csv", "--output", str(out)])
    assert res.exit_code == 0 and f"{len(registry.flows)} flows" in res.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["flow"] for r in rows} == set(registry.flows)
    assert runner.invoke(app, ["flows", "register", "--format", "pdf"]).exit_code == 2
