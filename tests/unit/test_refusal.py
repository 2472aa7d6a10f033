"""One refusal decides the combined procedure (Art. 18, 24, 27, 31–32): a negative decision on either
part — residence by DVZ, work by the region — moves the dossier to `decided` with the other part no
longer needed, the Art. 24 negative-decision notice (or the single act) notifies it, retention runs
5 years from that notification, and the anonymous fact counts one refusal in its decision period.

The state machine is driven for every permit type (the application categories of Art. 4 with their
procedure, Art. 2 §1 1° a/b/c) and every order of decisions, by hand and by property tests; then the
same paths through the API, the statistics and the retention dry run.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.domain import statistics
from hub.domain.dossier import STATES, add_years, change, retain_until, retention
from hub.domain.errors import InvalidTransition
from hub.lifecycle.stats.queries import PERMIT_TYPES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

# Every permit type the registry's application categories define, with the procedure it is applied
# for (application.schema.json: work_permit → work_permit, professional_card → professional_card;
# the residence-for-work categories are single permits; a seasonal worker ≤ 90 days asks a work permit).
PROCEDURES: list[tuple[str, str]] = [
    *[(c, "single_permit") for c in PERMIT_TYPES if c not in ("work_permit", "professional_card")],
    ("work_permit", "work_permit"), ("seasonal_worker", "work_permit"), ("professional_card", "professional_card"),
]
assert {c for c, _ in PROCEDURES} == set(PERMIT_TYPES)

RESIDENCE = {"granted": "residence_authorisation", "refused": "residence_refusal"}
WORK = {"granted": "work_authorisation", "refused": "work_refusal"}
NOTICE = (None, {"dossier_id": "d", "negative_decision_taken": True, "decided_at": "2026-04-01"})
SINGLE_ACT = ("notified", {"dossier_id": "d"})


def decision(part: str, outcome: str) -> tuple[str, dict]:
    kinds = RESIDENCE if part == "residence" else WORK
    return f"{part}_decided", {"decision_kind": kinds[outcome], "outcome": outcome}


def new_dossier(category: str, kind: str) -> dict:
    d = {"state": "submitted", "application_kind": kind, "category": category, "created_at": T0,
         "application": {"competent_region": "wallonia", "worker": {"nationality": "CAN"}}}
    d["fact"] = statistics.new_fact(d)
    return d


def step(d: dict, target: str | None, payload: dict, at: datetime) -> dict:
    """One message as the message path writes it (hub.messaging.dossiers.write_dossier): the change,
    retain_until, and the fact when the state moved."""
    values = change(d, target, payload, at)
    after = {**d, **values}
    after["retain_until"] = retain_until(after)
    if values["state"] != d["state"]:
        after["fact"] = {**d["fact"], **statistics.fact_changes(after)}
    return after


def refusals(fact: dict) -> int:
    """How often the statistics (hub.lifecycle.stats.queries.counts) count this fact as a refusal."""
    counted = [(fact["decision_kind"], fact["decided_year"]), (fact["ended_kind"], fact["ended_year"])]
    return sum(1 for kind, year in counted if year is not None and (kind or "").endswith("_refusal"))


def decisions(fact: dict) -> int:
    return sum(1 for year in (fact["decided_year"], fact["ended_year"]) if year is not None)


def assert_refused_and_notified(d: dict, refused_at: datetime, notified_at: datetime) -> None:
    assert d["state"] == "notified"
    assert d["decided_at"] == refused_at and d["notified_at"] == notified_at
    assert d["retain_until"] == add_years(notified_at, 5)                       # Art. 27: 5 years
    assert retention(d)[1] == "negative"
    fact = d["fact"]
    assert fact["state"] == "notified" and fact["decision_kind"].endswith("_refusal")
    assert refusals(fact) == 1 and decisions(fact) == 1                          # exactly one refusal
    assert (fact["decided_year"], fact["decided_quarter"]) == (refused_at.year, (refused_at.month - 1) // 3 + 1)
    assert fact["days_to_decision"] == (refused_at - d["complete_at"]).days
    assert not fact["deemed_authorised"] and fact["ended_kind"] is None


# ── by hand: every permit type, every order ────────────────────────────────────────────────────

def _orders(kind: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(name, the decisions in order); the refusal is the one that decides."""
    if kind != "single_permit":
        return [("work refused", [("work", "refused")])]
    return [
        ("residence refused first", [("residence", "refused")]),
        ("work refused first", [("work", "refused")]),
        ("residence refused after work granted", [("work", "granted"), ("residence", "refused")]),
        ("work refused after residence granted", [("residence", "granted"), ("work", "refused")]),
    ]


CASES = [(c, k, name, seq) for c, k in PROCEDURES for name, seq in _orders(k)]


@pytest.mark.parametrize("category,kind,order,decisions_", CASES, ids=[f"{c}-{n}" for c, _, n, _ in CASES])
@pytest.mark.parametrize("notification", ["notice", "single_act"])
def test_one_refusal_decides_every_permit_type_in_every_order(category, kind, order, decisions_, notification):
    d, at = new_dossier(category, kind), T0
    d = step(d, "under_examination", {}, at := at + timedelta(days=5))
    for part, outcome in decisions_:
        d = step(d, *decision(part, outcome), at := at + timedelta(days=20))
    refused_at = at
    assert d["state"] == "decided" and d["decided_at"] == refused_at        # the other part no longer needed
    assert d["retain_until"] is None and d["fact"]["decision_kind"].endswith("_refusal")
    with pytest.raises(InvalidTransition):                                   # nothing left to deem authorised
        change(d, "decided", {}, at)
    d = step(d, *(NOTICE if notification == "notice" else SINGLE_ACT), notified := at + timedelta(days=3))
    assert_refused_and_notified(d, refused_at, notified)


@pytest.mark.parametrize("late", ["granted", "refused"])
@pytest.mark.parametrize("first", ["residence", "work"])
def test_the_other_part_may_still_come_in_before_notification(first, late):
    """The region (or DVZ) may send its decision before it learns of the other's refusal: it is
    recorded, the dossier stays decided as the refusal decided it, counted once."""
    other = "work" if first == "residence" else "residence"
    d = step(new_dossier("single_permit", "single_permit"), "under_examination", {}, T0)
    d = step(d, *decision(first, "refused"), refused_at := T0 + timedelta(days=30))
    d = step(d, *decision(other, late), T0 + timedelta(days=40))
    assert d["state"] == "decided" and d["decided_at"] == refused_at
    assert d[f"{other}_outcome"] == late and d[f"{first}_outcome"] == "refused"
    d = step(d, *NOTICE, notified := T0 + timedelta(days=45))
    assert_refused_and_notified(d, refused_at, notified)
    with pytest.raises(InvalidTransition):        # after notification only a withdrawal or an end is new
        change(d, *decision(other, "granted"), T0 + timedelta(days=50))


def test_the_notice_and_the_single_act_together_notify_once():
    """Both flows may follow a refusal (Art. 24: the authorities told, the person notified): the
    first notifies, the second keeps that date (Art. 27 counts from it)."""
    d = step(new_dossier("eu_blue_card", "single_permit"), "under_examination", {}, T0)
    d = step(d, *decision("residence", "refused"), refused_at := T0 + timedelta(days=30))
    d = step(d, *NOTICE, notified := T0 + timedelta(days=31))
    d = step(d, *SINGLE_ACT, T0 + timedelta(days=33))
    assert_refused_and_notified(d, refused_at, notified)
    d = step(d, *NOTICE, T0 + timedelta(days=34))                  # a repeated notice moves nothing
    assert_refused_and_notified(d, refused_at, notified)


def test_the_notice_does_not_move_a_granted_or_undecided_dossier():
    d = step(new_dossier("single_permit", "single_permit"), "under_examination", {}, T0)
    assert step(d, *NOTICE, T0)["state"] == "under_examination"
    d = step(d, *decision("residence", "granted"), T0)
    d = step(d, *decision("work", "granted"), T0)
    assert step(d, *NOTICE, T0)["state"] == "decided"              # a granted permit is notified by the single act
    with pytest.raises(InvalidTransition):
        change(step(d, *SINGLE_ACT, T0), *SINGLE_ACT, T0)          # and only once


def test_a_refusal_under_appeal_is_held_then_kept_a_year_after():
    d = step(new_dossier("single_permit", "single_permit"), "under_examination", {}, T0)
    d = step(d, *decision("work", "refused"), T0 + timedelta(days=30))
    d = step(d, *NOTICE, T0 + timedelta(days=31))
    d = step(d, "appeal_pending", {}, T0 + timedelta(days=60))
    assert d["retain_until"] is None                                           # legal hold
    d = step(d, "closed", {"appeal_outcome": "rejected"}, ended := T0 + timedelta(days=365 * 6))
    assert d["retain_until"] == add_years(ended, 1) and refusals(d["fact"]) == 1


# ── properties: random permit types, orders and times ──────────────────────────────────────────

NOISE = [("incomplete", {}), ("submitted", {}), (None, {})]   # requests for more, documents in, other flows


@st.composite
def refusal_paths(draw):
    category, kind = draw(st.sampled_from(PROCEDURES))
    parts = ("residence", "work") if kind == "single_permit" else ("work",)
    refused = draw(st.sampled_from(parts))
    other = next((p for p in parts if p != refused), None)
    # the other part: granted before the refusal, decided after it (granted or refused), or never
    other_when = draw(st.sampled_from(["before", "after", "never"])) if other else "never"
    other_outcome = "granted" if other_when == "before" else draw(st.sampled_from(["granted", "refused"]))
    gaps = draw(st.lists(st.integers(min_value=0, max_value=400), min_size=8, max_size=8))
    noise = draw(st.lists(st.sampled_from(NOISE), max_size=4))
    notify = draw(st.sampled_from(["notice", "single_act", "both"]))
    return category, kind, refused, other, other_when, other_outcome, gaps, noise, notify


@settings(max_examples=300, deadline=None)
@given(refusal_paths())
def test_any_refusal_in_any_order_ends_decided_then_notified(path):
    category, kind, refused, other, other_when, other_outcome, gaps, noise, notify = path
    d, at = new_dossier(category, kind), T0 + timedelta(minutes=gaps[0])
    gap = iter(timedelta(days=g, hours=1) for g in gaps[1:])
    d = step(d, "under_examination", {}, at)
    for target, payload in noise:
        d = step(d, target, payload, at := at + next(gap, timedelta(days=1)))
    if other_when == "before":
        d = step(d, *decision(other, other_outcome), at := at + next(gap, timedelta(days=1)))
    d = step(d, *decision(refused, "refused"), at := at + next(gap, timedelta(days=1)))
    refused_at = at
    assert d["state"] == "decided" and d["state"] in STATES
    if other_when == "after":
        d = step(d, *decision(other, other_outcome), at := at + next(gap, timedelta(days=1)))
        assert d["state"] == "decided" and d["decided_at"] == refused_at
    first = NOTICE if notify in ("notice", "both") else SINGLE_ACT
    d = step(d, *first, notified := at + next(gap, timedelta(days=1)))
    if notify == "both":
        d = step(d, *SINGLE_ACT, at := notified + timedelta(days=2))
    assert_refused_and_notified(d, refused_at, notified)
    # the retention run (hub.lifecycle.retention: retain_until <= now) takes it past the date, not before
    assert d["retain_until"] <= add_years(notified, 5) + timedelta(days=1)
    assert not d["retain_until"] <= add_years(notified, 5) - timedelta(days=1)


# ── through the API: the statistics and the retention dry run ──────────────────────────────────

def test_refusals_through_the_api_are_decided_notified_counted_and_expire(tmp_path):
    """Every permit type and order through the parties' messages: each refused dossier ends
    notified, the statistics count one refusal per dossier in its decision period, and the
    retention dry run at a date past notification + 5 years lists every one of them."""
    from hub.domain import samples
    from hub.infra.store.schema import dossiers, stats_facts
    from hub.interfaces.cli.demo import DemoClient
    from hub.lifecycle import retention as retention_run
    from hub.lifecycle.stats.queries import StatsFilter, counts
    from tests.support import sqlite_store, start_hub

    gen = start_hub(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{tmp_path.name}",
                    professional_card_start=date.today())
    hc = next(gen)
    try:
        c = DemoClient(hc.http, hc.secrets)
        c.load_flows()
        cases = [(cat, kind, seq) for cat, kind in PROCEDURES for _, seq in _orders(kind)]
        refused: dict[str, str] = {}
        for serial, (category, kind, seq) in enumerate(cases, start=10):
            if kind == "professional_card":
                app = samples.FLOW_SAMPLES["professional-card.application-submitted"][1]("-")
                app = {**app, "competent_region": "wallonia", "portal_reference": f"WIB-PORTAL-{serial:06d}"}
                r = hc.post("portal", "/v1/applications", app)
                assert r.status_code == 202, r.text
                d = r.json()["dossier_id"]
            else:
                d = c.apply(samples.synthetic_application(serial, "wallonia", category=category,
                                                          application_kind=kind))
            c.send("region.wallonia", "single-permit.admissible-to-dvz",
                   samples.sample_admissibility_decision(d, region="region.wallonia"))
            for part, outcome in seq:
                if part == "residence":
                    c.send("dvz", "single-permit.residence-decision", samples.sample_residence_decision(d, outcome=outcome))
                else:
                    c.send("region.wallonia", "single-permit.work-decision",
                           samples.sample_work_decision(d, region="region.wallonia", outcome=outcome))
            sender = "dvz" if seq[-1][0] == "residence" else "region.wallonia"
            notice = samples.sample_negative_decision_notice(d, decided_by=sender)
            c.send(sender, "single-permit.negative-decision-notice", notice,
                   recipients=["dvz"] if sender != "dvz" else ["region.wallonia"])
            refused[d] = category
        engine = hc.hub.engine
        with engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(select(dossiers).where(dossiers.c.id.in_(list(refused))))}
            facts = {f.id: f for f in conn.execute(select(stats_facts))}
        for did, row in rows.items():
            assert (row.state, row.decided_at is not None) == ("notified", True), (refused[did], row.state)
            assert row.retain_until is not None
            assert row.retain_until.replace(tzinfo=None) == add_years(row.notified_at.replace(tzinfo=None), 5)
            fact = facts[row.fact_id]
            assert fact.decision_kind.endswith("_refusal") and fact.state == "notified"
            assert (fact.decided_year, fact.decided_quarter) == (row.decided_at.year, (row.decided_at.month - 1) // 3 + 1)
        total = counts(engine).total
        assert total["refused"] == len(refused) == total["decisions"] and total["granted"] == 0
        for category in set(refused.values()):
            per_type = counts(engine, where=StatsFilter(permit_type=category)).total
            assert per_type["refused"] == list(refused.values()).count(category) == per_type["decisions"]

        latest = max(r.notified_at for r in rows.values())
        past = add_years(latest.replace(tzinfo=timezone.utc), 5) + timedelta(days=1)
        before = add_years(min(r.notified_at for r in rows.values()).replace(tzinfo=timezone.utc), 5) - timedelta(days=1)
        assert retention_run.expired(engine, before) == []
        listed = {e.id: e for e in retention_run.expired(engine, past)}
        assert set(listed) == set(refused) and {e.rule for e in listed.values()} == {"negative"}
        dry = retention_run.run(hc.hub.work, past, dry_run=True)
        assert dry.dry_run and dry.dossiers == len(refused) and dict(dry.by_rule) == {"negative": len(refused)}
        with engine.connect() as conn:                                           # a dry run deletes nothing
            assert len(conn.execute(select(dossiers.c.id).where(dossiers.c.id.in_(list(refused)))).all()) == len(refused)
    finally:
        gen.close()
