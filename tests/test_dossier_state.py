"""The dossier's moves through the combined procedure (seeds/002: the common order)."""
from __future__ import annotations

import pytest

from hub.dossier import next_state, outcome_of
from hub.errors import InvalidTransition


def test_the_common_order():
    s = next_state("submitted", "incomplete", residence=None, work=None)
    assert s == "incomplete"
    s = next_state(s, "submitted", residence=None, work=None)
    assert s == "submitted"
    s = next_state(s, "admissible", residence=None, work=None)
    assert s == "admissible"
    s = next_state(s, "residence_decided", residence="granted", work=None)
    assert s == "residence_decided"
    s = next_state(s, "work_decided", residence="granted", work="granted")
    assert s == "decided"
    assert next_state(s, "notified", residence="granted", work="granted") == "notified"


def test_dvz_asking_for_more_does_not_stop_the_clock():
    """61/27-4 §3: a request for extra information after "complete" leaves the dossier admissible."""
    assert next_state("admissible", "incomplete", residence=None, work=None) == "admissible"


@pytest.mark.parametrize("current,target", [
    ("submitted", "residence_decided"),     # no decision before admissibility
    ("submitted", "notified"),              # no single act before both decisions
    ("residence_decided", "notified"),
    ("notified", "admissible"),
    ("decided", "admissible"),
])
def test_impossible_moves_are_refused(current, target):
    with pytest.raises(InvalidTransition):
        next_state(current, target, residence="granted" if "decided" in current else None, work=None)


def test_outcome_follows_the_decision_kind():
    assert outcome_of({"decision_kind": "residence_refusal", "outcome": "refused"}) == ("refused", None)
    assert outcome_of({"decision_kind": "work_authorisation", "outcome": "granted"}) == (None, "granted")
    assert outcome_of({"decision": "admissible"}) == (None, None)
