"""Data-subject rights (Art. 28–29; GDPR arts. 12, 15–21): request → dated acknowledgment → routed to
the competent controller → overdue after a month → export of that person's data only → answered."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub.domain import samples
from hub.domain.identifiers import is_valid_insz
from hub.infra.store.schema import audit_events, rights_requests
from hub.interfaces.api.rights import utc_now
from hub.interfaces.cli.demo import DemoClient
from hub.lifecycle import rights
from tests.support.rights import BAD_INSZ, DUE, STRANGER_INSZ, T0, UTC

ADMISSIBLE = "single-permit.admissible-to-dvz"


assert not is_valid_insz(BAD_INSZ)


@pytest.mark.parametrize("start,months,expected", [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),      # leap year
    (date(2026, 3, 31), 1, date(2026, 4, 30)),
    (date(2026, 12, 15), 1, date(2027, 1, 15)),     # year end
    (date(2026, 2, 28), 1, date(2026, 3, 28)),      # not "end of month → end of month"
    (date(2026, 11, 30), 3, date(2027, 2, 28)),
])
def test_add_months_is_calendar_month_arithmetic(start, months, expected):
    assert rights.add_months(start, months) == expected


@pytest.mark.parametrize("received,due", [
    (T0, DUE),                                                                    # plain weekday
    (datetime(2026, 1, 31, 10, tzinfo=UTC), datetime(2026, 3, 2, 22, 59, 59, tzinfo=UTC)),  # Sat 28 Feb → Mon
    (datetime(2026, 1, 31, 23, 30, tzinfo=UTC), datetime(2026, 3, 2, 22, 59, 59, tzinfo=UTC)),  # 1 Feb in Brussels
    (datetime(2026, 6, 21, 8, tzinfo=UTC), datetime(2026, 7, 22, 21, 59, 59, tzinfo=UTC)),  # 21 July; CEST
    (datetime(2026, 3, 6, 8, tzinfo=UTC), datetime(2026, 4, 7, 21, 59, 59, tzinfo=UTC)),    # Easter Monday
    (datetime(2025, 12, 24, 12, tzinfo=UTC), datetime(2026, 1, 26, 22, 59, 59, tzinfo=UTC)),  # Sat 24 Jan → Mon
])
def test_due_date_is_one_month_to_the_end_of_a_working_day_in_brussels(received, due):
    assert rights.due_date(received) == due


def test_public_holidays_are_not_working_days():
    for day in (date(2026, 1, 1), date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 14), date(2026, 5, 25),
                date(2026, 7, 21), date(2026, 8, 15), date(2026, 11, 1), date(2026, 11, 11), date(2026, 12, 25),
                date(2025, 4, 21)):                                   # Easter Monday 2025
        assert not rights.CALENDAR.is_working_day(day), day
    assert rights.CALENDAR.is_working_day(date(2026, 4, 7))


@pytest.fixture
def world(local_hub):
    """Two synthetic people: A (sample worker, Flanders, forwarded to DVZ) and B (Wallonia)."""
    hc = local_hub
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    a_app = samples.sample_application()
    b_app = samples.synthetic_application(7, "wallonia")
    a = c.apply(a_app)
    b = c.apply(b_app)
    c.send("region.flanders", ADMISSIBLE, samples.sample_admissibility_decision(a))
    clock = {"now": T0}
    hc.http.app.dependency_overrides[utc_now] = lambda: clock["now"]
    yield hc, clock, {"a": a, "b": b, "a_app": a_app, "b_app": b_app}
    hc.http.app.dependency_overrides.clear()


def _file(hc, body, party="portal"):
    return hc.post(party, "/v1/rights-requests", body)


def _events(hc, name):
    with hc.hub.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).where(audit_events.c.event == name)
                                              .order_by(audit_events.c.seq)).mappings()]


def _count(hc):
    with hc.hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(rights_requests)).scalar_one()


def test_request_acknowledged_routed_overdue_exported_answered(world):
    hc, clock, w = world
    worker = samples.WORKER_INSZ
    with hc.hub.engine.connect() as conn:   # the lead's pipeline fills the subject columns
        from hub.infra.store.schema import dossiers
        subject = conn.execute(select(dossiers.c.subject_insz).where(dossiers.c.id == w["a"])).scalar_one()
    assert subject == worker, "dossiers.subject_insz is not filled on dossier creation"

    # residence → DVZ; the acknowledgment is dated, due one month later, and names nobody
    r = _file(hc, {"kind": "access", "concerning": "residence", "insz": worker,
                   "details": {"text": "I want a copy of everything"}})
    assert r.status_code == 201, r.text
    ack = r.json()
    assert ack["controller"] == "dvz" and ack["controller_name"]["nl"] == "Dienst Vreemdelingenzaken"
    assert ack["received_at"] == T0.isoformat() and ack["acknowledged_at"] == T0.isoformat()
    assert ack["due_at"] == DUE.isoformat() and ack["state"] == "open" and ack["right"] == "GDPR art. 15"
    text = json.dumps(ack)
    assert worker not in text and "AB1234567" not in text and "Testworker" not in text
    access = ack["reference"]

    # work → the region competent for the person's dossier (found by passport here)
    r = _file(hc, {"kind": "portability", "concerning": "work", "passport_number": "ab 123-4567"})
    assert r.status_code == 201, r.text
    assert r.json()["controller"] == "region.flanders"
    portability = r.json()["reference"]
    r = _file(hc, {"kind": "erasure", "concerning": "single_permit", "insz": w["b_app"]["worker"]["insz"]})
    assert r.status_code == 201 and r.json()["controller"] == "region.wallonia"
    erasure = r.json()["reference"]
    # a controller that received a request directly, earlier, for a person without a dossier
    r = _file(hc, {"kind": "rectification", "concerning": "work", "insz": STRANGER_INSZ, "region": "brussels",
                   "received_at": "2026-01-30T10:00:00+01:00"}, party="region.brussels")
    assert r.status_code == 201, r.text
    assert r.json()["controller"] == "region.brussels" and r.json()["due_at"].startswith("2026-03-02")
    direct = r.json()["reference"]

    # the audit trail: who brought it to whom, no personal data
    received = _events(hc, "rights_request")
    assert [(e["actor"], e["recipient"]) for e in received] == [
        ("portal", "dvz"), ("portal", "region.flanders"), ("portal", "region.wallonia"),
        ("region.brussels", "region.brussels")]
    assert all(worker not in (e["reason"] or "") and "AB1234567" not in (e["reason"] or "") for e in received)
    assert received[0]["reason"] == f"access residence request {access}"

    # each controller sees its own list; others are refused
    mine = hc.get("dvz", "/v1/rights-requests").json()
    assert [x["id"] for x in mine["requests"]] == [access] and mine["overdue"] == 0
    assert [x["id"] for x in hc.get("region.flanders", "/v1/rights-requests").json()["requests"]] == [portability]
    refused = hc.get("portal", "/v1/rights-requests")
    assert refused.status_code == 403 and refused.json()["error"] == "not_a_controller"

    # the last second of the due day is still in time; a month and a day later it is overdue
    clock["now"] = DUE
    assert hc.get("dvz", "/v1/rights-requests?overdue=true").json()["requests"] == []
    clock["now"] = T0 + timedelta(days=29, hours=1)
    late = hc.get("dvz", "/v1/rights-requests?overdue=true").json()
    assert [x["id"] for x in late["requests"]] == [access] and late["requests"][0]["overdue"] and late["overdue"] == 1
    everyone = rights.list_requests(hc.hub.work.reads, None, clock["now"], overdue_only=True)
    assert {x.id for x in everyone} == {access, portability, erasure, direct}

    # the export: only the request's controller, only access/portability
    wrong = hc.get("region.flanders", f"/v1/rights-requests/{access}/export")
    assert wrong.status_code == 403 and wrong.json()["error"] == "not_request_controller"
    no_export = hc.get("region.wallonia", f"/v1/rights-requests/{erasure}/export")
    assert no_export.status_code == 400 and no_export.json()["error"] == "no_export_for_kind"
    r = hc.get("dvz", f"/v1/rights-requests/{access}/export")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="rights-export-{access}.json"'
    export = r.json()
    assert export["format"] == rights.EXPORT_FORMAT and export["request"] == access
    assert [d["id"] for d in export["dossiers"]] == [w["a"]]
    (d,) = export["dossiers"]
    assert d["content"] == "full" and d["matched_by"] == ["insz"] and d["state"] == "under_examination"
    assert d["withheld_categories"] == []        # DVZ's system client received and may see them all
    assert d["application"]["worker"]["insz"] == worker
    assert d["application"]["medical_documents"][0]["content_base64"]   # what the person provided
    flows = {(m["flow"], m["recipient"]) for m in d["messages"]}
    assert {("single-permit.application-submitted", "region.flanders"), (ADMISSIBLE, "dvz")} <= flows
    assert "content_base64" not in json.dumps(d["messages"])            # metadata; content is above
    assert [x["id"] for x in export["rights_requests"]] == [access]   # found by INSZ; no identity linking
    body = r.text
    b_worker = w["b_app"]["worker"]
    for other in (b_worker["insz"], b_worker["passport_number"], b_worker["first_name"] + '"', w["b"]):
        assert other not in body

    # the region answers for its own processing: the special categories it never received are withheld
    r = hc.get("region.flanders", f"/v1/rights-requests/{portability}/export")
    assert r.status_code == 200, r.text
    (d,) = r.json()["dossiers"]
    assert d["content"] == "full" and d["matched_by"] == ["passport"]
    assert d["withheld_categories"] == ["criminal_record", "health"]
    assert "medical_documents" not in d["application"] and "criminal_record_documents" not in d["application"]
    assert "medical_certificate" not in r.text

    consulted = [e for e in _events(hc, "consulted") if (e["reason"] or "").startswith("rights export")]
    assert [(e["actor"], e["dossier_id"]) for e in consulted] == [("dvz", w["a"]), ("region.flanders", w["a"])]
    assert consulted[0]["reason"] == f"rights export request {access} (full)"
    assert {"health", "criminal_record"} <= set(consulted[0]["data_categories"])
    assert not {"health", "criminal_record"} & set(consulted[1]["data_categories"])

    # answered, late; once only; by its controller only
    other = hc.post("region.flanders", f"/v1/rights-requests/{access}/answer", {"outcome": "granted"})
    assert other.status_code == 403 and other.json()["error"] == "not_request_controller"
    r = hc.post("dvz", f"/v1/rights-requests/{access}/answer", {"outcome": "granted", "note": "export sent"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "answered" and done["late"] and not done["overdue"]
    assert done["answered_at"] == clock["now"].isoformat() and done["answer"]["outcome"] == "granted"
    again = hc.post("dvz", f"/v1/rights-requests/{access}/answer", {"outcome": "refused"})
    assert again.status_code == 409 and again.json()["error"] == "already_answered"
    assert hc.get("dvz", "/v1/rights-requests?overdue=true").json()["requests"] == []
    (ev,) = _events(hc, "rights_answered")
    assert ev["actor"] == "dvz" and ev["reason"] == f"access granted late request {access}"


BAD = [
    ({"kind": "access", "concerning": "work", "insz": BAD_INSZ}, "invalid_insz"),
    ({"kind": "deletion", "concerning": "work", "insz": samples.WORKER_INSZ}, "unknown_kind"),
    ({"kind": "access", "concerning": "work"}, "no_identifier"),
    ({"kind": "access", "concerning": "visa", "insz": samples.WORKER_INSZ}, "unknown_concerning"),
    ({"kind": "access", "concerning": "work", "passport_number": "A!"}, "invalid_passport"),
    ({"kind": "access", "concerning": "work", "insz": STRANGER_INSZ}, "controller_unknown"),
    ({"kind": "access", "concerning": "work", "insz": STRANGER_INSZ, "region": "texas"}, "unknown_region"),
    # the body's own model (RequestIn): a field it does not have, a body that is not an object
    ({"kind": "access", "concerning": "work", "insz": STRANGER_INSZ, "name": "x"}, "malformed_message"),
    ({"kind": "access", "concerning": "work", "insz": STRANGER_INSZ, "region": "flanders",
      "received_at": "2999-03-01T00:00:00+00:00"}, "invalid_request"),           # in the future
    ([1, 2], "malformed_message"),
]


def test_bad_input_is_refused_with_a_code_and_nothing_is_stored(local_hub):
    hc = local_hub
    for body, code in BAD:
        before = hc.refused()
        r = _file(hc, body)
        assert r.status_code == 400 and r.json()["error"] == code, (body, r.text)
        assert hc.refused() == before + 1          # the first of a kind is one event, a repeat is counted in one
        assert hc.refusals()[-1]["actor"] == "portal"
        assert hc.refusals()[-1]["reason"].startswith(f"{code} /v1/rights-requests")
    r = _file(hc, {"kind": "access", "concerning": "work", "insz": samples.WORKER_INSZ}, party="onss")
    assert r.status_code == 403 and r.json()["error"] == "not_rights_channel"
    assert hc.refusals()[-1]["actor"] == "onss"
    assert _count(hc) == 0 and _events(hc, "rights_request") == []


def test_a_controller_extends_once_by_two_months_before_the_first_due_date(world):
    """GDPR art. 12(3): two further months, once, with the reason; not after the first due date,
    not twice, not by another controller; audited."""
    hc, clock, w = world
    r = _file(hc, {"kind": "access", "concerning": "residence", "insz": samples.WORKER_INSZ})
    ref = r.json()["reference"]
    assert hc.post("region.flanders", f"/v1/rights-requests/{ref}/extend",
                   {"reason": "many dossiers"}).json()["error"] == "not_request_controller"
    assert hc.post("dvz", f"/v1/rights-requests/{ref}/extend", {"reason": ""}).status_code == 400
    clock["now"] = T0 + timedelta(days=20)
    r = hc.post("dvz", f"/v1/rights-requests/{ref}/extend", {"reason": "the person has several dossiers"})
    assert r.status_code == 200, r.text
    extended = r.json()
    # three months from receipt: Saturday 2 May → Monday 4 May, 23:59:59 in Brussels (CEST)
    assert extended["due_at"] == datetime(2026, 5, 4, 21, 59, 59, tzinfo=UTC).isoformat()
    assert extended["extended_at"] == clock["now"].isoformat() and not extended["overdue"]
    assert hc.post("dvz", f"/v1/rights-requests/{ref}/extend", {"reason": "again"}).json()["error"] == "not_extendable"
    (event,) = _events(hc, "rights_extended")
    assert event["actor"] == "dvz" and ref in event["reason"] and samples.WORKER_INSZ not in event["reason"]
    # past the first due date without an extension: too late to extend
    late = _file(hc, {"kind": "erasure", "concerning": "residence", "insz": samples.WORKER_INSZ}).json()["reference"]
    clock["now"] = clock["now"] + timedelta(days=40)
    assert hc.post("dvz", f"/v1/rights-requests/{late}/extend", {"reason": "x"}).json()["error"] == "not_extendable"


def test_the_request_list_is_paged_with_a_cursor_and_counts_every_overdue_one(local_hub):
    hc = local_hub
    filed = set()
    for i in range(7):
        r = _file(hc, {"kind": "access", "concerning": "work", "insz": STRANGER_INSZ, "region": "flanders",
                       "received_at": f"2026-0{1 + i % 3}-0{1 + i}T09:00:00+00:00"})
        assert r.status_code == 201, r.text
        filed.add(r.json()["reference"])
    seen, after, pages = [], None, 0
    while True:
        r = hc.get("region.flanders", "/v1/rights-requests", params={"limit": 3, **({"after": after} if after else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        seen += [x["id"] for x in page["requests"]]
        assert page["overdue"] == 7                  # all of them, whatever the page
        after = page["next_after"]
        if after is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == filed
    due = [x["due_at"] for x in hc.get("region.flanders", "/v1/rights-requests", params={"limit": 500}).json()["requests"]]
    assert due == sorted(due)
    for bad in ("x", "1.", "99999999999999999.a", "1.a/b"):
        r = hc.get("region.flanders", "/v1/rights-requests", params={"after": bad})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", bad
