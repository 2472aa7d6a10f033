"""The dossier's state machine (hub/dossier.py): the common order of the combined procedure
(seeds/002), decisions by kind (Art. 18), appeals, and retention (Art. 27); property tests drive
random message orders through it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.dossier import EXAMINING, NEGATIVE, STATES, change, outcome_of, retain_until
from hub.domain.errors import InvalidTransition

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def dossier(state: str = "submitted", kind: str = "single_permit", **kw) -> dict:
    return {"state": state, "application_kind": kind, "created_at": T0, **kw}


def residence(outcome: str = "granted", kind: str | None = None) -> dict:
    kind = kind or {"granted": "residence_authorisation", "refused": "residence_refusal",
                    "withdrawn": "residence_withdrawal", "ended": "residence_end"}[outcome]
    return {"decision_kind": kind, "outcome": outcome}


def work(outcome: str = "granted", kind: str | None = None) -> dict:
    kind = kind or {"granted": "work_authorisation", "refused": "work_refusal", "withdrawn": "work_withdrawal"}[outcome]
    return {"decision_kind": kind, "outcome": outcome}


def walk(d: dict, *steps: tuple[str, dict], start: datetime = T0) -> dict:
    for i, (target, payload) in enumerate(steps):
        d = {**d, **change(d, target, payload, start + timedelta(days=10 * (i + 1)))}
    return d


def test_the_common_order_records_its_dates():
    d = walk(dossier(), ("incomplete", {}), ("submitted", {}), ("under_examination", {}),
             ("residence_decided", residence()), ("work_decided", work()), ("notified", {}))
    assert d["state"] == "notified"
    assert d["incomplete_since"] is None                                   # the documents came in
    assert d["complete_at"] == T0 + timedelta(days=30)                      # the decision clock's start
    assert d["decided_at"] == T0 + timedelta(days=50)                       # when both parts were known
    assert d["notified_at"] == T0 + timedelta(days=60)
    assert (d["residence_decision_kind"], d["work_decision_kind"]) == ("residence_authorisation", "work_authorisation")


def test_one_part_alone_does_not_decide_a_single_permit_but_decides_a_work_permit():
    single = walk(dossier(), ("under_examination", {}), ("work_decided", work()))
    assert single["state"] == "work_decided" and "decided_at" not in single
    permit = walk(dossier(kind="work_permit"), ("under_examination", {}), ("work_decided", work()))
    assert permit["state"] == "decided" and permit["decided_at"]


def test_dvz_asking_for_more_does_not_stop_the_clock():
    """61/27-4 §3: a request for extra information after "complete" keeps the state and the clock."""
    d = walk(dossier(), ("under_examination", {}), ("incomplete", {}))
    assert d["state"] == "under_examination" and d["incomplete_since"] and d["complete_at"]


def test_deemed_authorisation_grants_both_parts():
    d = walk(dossier(category="eu_blue_card"), ("under_examination", {}), ("decided", {}))
    assert (d["state"], d["residence_outcome"], d["work_outcome"]) == ("decided", "granted", "granted")
    assert d["residence_decision_kind"] == d["work_decision_kind"] == "deemed_authorisation"


def test_appeal_holds_then_closes_or_reopens():
    refused = walk(dossier(), ("under_examination", {}), ("residence_decided", residence("refused")),
                   ("work_decided", work()), ("notified", {}))
    held = walk(refused, ("appeal_pending", {}))
    assert held["state"] == "appeal_pending" and retain_until(held) is None          # legal hold
    closed = walk(held, ("closed", {"appeal_outcome": "rejected"}))
    assert closed["state"] == "closed" and closed["closed_at"] == closed["appeal_ended_at"]
    annulled = walk(held, ("closed", {"appeal_outcome": "annulled"}))
    assert annulled["state"] == "under_examination" and annulled["residence_outcome"] is None


def test_a_permit_withdrawn_after_notification_is_decided_and_notified_again():
    granted = walk(dossier(), ("under_examination", {}), ("residence_decided", residence()),
                   ("work_decided", work()), ("notified", {}))
    withdrawn = walk(granted, ("work_decided", work("withdrawn")), start=T0 + timedelta(days=400))
    assert withdrawn["state"] == "decided" and withdrawn["work_outcome"] == "withdrawn"
    with pytest.raises(InvalidTransition):           # a plain new authorisation is not a move after notification
        change(granted, "work_decided", work(), T0)


@pytest.mark.parametrize("current,target", [
    ("submitted", "residence_decided"),     # no decision before admissibility
    ("submitted", "notified"),              # no single act before both decisions
    ("residence_decided", "notified"),
    ("notified", "under_examination"),
    ("decided", "under_examination"),
    ("under_examination", "appeal_pending"),  # an appeal is against a notified decision
    ("notified", "closed"),                   # closing ends an appeal
    ("appeal_pending", "work_decided"),
    ("closed", "decided"),
])
def test_impossible_moves_are_refused(current, target):
    with pytest.raises(InvalidTransition) as err:
        change(dossier(current), target, work(), T0)
    assert err.value.code == "invalid_transition"


def test_retention_art_27():
    granted = walk(dossier(), ("under_examination", {}), ("residence_decided", residence()),
                   ("work_decided", work()), ("notified", {}))
    assert retain_until(granted) == T0.replace(year=2036)                       # 10 years from submission
    refused = walk(dossier(), ("under_examination", {}), ("residence_decided", residence("refused")),
                   ("work_decided", work()), ("notified", {}))
    assert retain_until(refused) == refused["notified_at"].replace(year=2031)   # 5 years from notification
    late = walk(refused, ("appeal_pending", {}), ("closed", {"appeal_outcome": "rejected"}),
                start=T0 + timedelta(days=365 * 5))
    assert retain_until(late) == late["appeal_ended_at"].replace(year=late["appeal_ended_at"].year + 1)
    assert retain_until(walk(dossier(), ("under_examination", {}))) is None     # undecided: kept
    leap = dict(granted, created_at=datetime(2028, 2, 29, tzinfo=timezone.utc))
    assert retain_until(leap) == datetime(2038, 2, 28, tzinfo=timezone.utc)


def test_outcome_follows_the_decision_kind():
    assert outcome_of(residence("refused")) == ("refused", None)
    assert outcome_of(work()) == (None, "granted")
    assert outcome_of({"decision": "admissible"}) == (None, None)


# ── properties: random message orders ─────────────────────────────────────────────────────────

MESSAGES = [
    ("incomplete", {}), ("submitted", {}), ("under_examination", {}), ("decided", {}),
    ("notified", {}), ("appeal_pending", {}), ("closed", {"appeal_outcome": "rejected"}),
    ("closed", {"appeal_outcome": "annulled"}), (None, {}),
    *[("residence_decided", residence(o)) for o in ("granted", "refused", "withdrawn", "ended")],
    *[("work_decided", work(o)) for o in ("granted", "refused", "withdrawn")],
]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["single_permit", "work_permit", "professional_card"]),
       st.lists(st.sampled_from(MESSAGES), max_size=25))
def test_random_message_orders_never_reach_an_invalid_state(kind, steps):
    d, at = dossier(kind=kind), T0
    for target, payload in steps:
        at += timedelta(days=3)
        before = dict(d)
        try:
            d = {**d, **change(d, target, payload, at)}
        except InvalidTransition:
            assert d == before                                      # a refused move changes nothing
            continue
        assert d["state"] in STATES
        if d["state"] in ("decided", "notified", "closed"):        # decided: every needed part known,
            needed = ("residence", "work") if kind == "single_permit" else ("work",)   # or one negative
            assert all(d.get(f"{p}_outcome") for p in needed) or \
                any(d.get(f"{p}_outcome") in NEGATIVE for p in needed), d
            assert d.get("decided_at")
        if d["state"] == "notified":
            assert d["notified_at"] and d["notified_at"] >= d["decided_at"]
        if d["state"] in EXAMINING or d["state"] in ("decided", "notified", "closed"):
            assert d.get("complete_at"), d                           # nothing is examined before complete
        hold = retain_until(d)
        if d["state"] not in ("notified", "closed"):
            assert hold is None                                      # kept while undecided or on appeal
        else:
            assert hold is not None and hold > d["created_at"]
