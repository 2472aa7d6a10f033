"""Policy decisions over the real registry: who may send on a flow, who receives, which categories."""
from __future__ import annotations

import pytest

from hub.domain import policy
from hub.domain.errors import NotAuthorised
from hub.registry import default_contracts_dir, load_registry

REGISTRY = load_registry(default_contracts_dir())
DOSSIER = {"id": "d1", "competent_region": "region.flanders", "state": "submitted"}


def flow(flow_id):
    return REGISTRY.flow(flow_id)


def test_residence_decision_is_dvz_only():
    policy.check_sender(flow("single-permit.residence-decision"), "dvz", DOSSIER)
    for other in ("region.flanders", "portal", "municipality", "onss"):
        with pytest.raises(NotAuthorised) as err:
            policy.check_sender(flow("single-permit.residence-decision"), other, DOSSIER)
        assert err.value.code == "sender_not_allowed"


def test_another_region_is_not_party_to_the_dossier():
    with pytest.raises(NotAuthorised) as err:
        policy.check_sender(flow("single-permit.admissible-to-dvz"), "region.wallonia", DOSSIER)
    assert err.value.code == "not_party_to_dossier"
    policy.check_sender(flow("single-permit.admissible-to-dvz"), "region.flanders", DOSSIER)


def test_pattern_recipient_is_the_competent_region():
    got = policy.recipients_for(REGISTRY, flow("single-permit.application-submitted"), DOSSIER, "portal")
    assert got == ("region.flanders",)
    got = policy.recipients_for(REGISTRY, flow("single-permit.residence-decision"), DOSSIER, "dvz")
    assert got == ("region.flanders",)


def test_application_only_to_the_region_it_names():
    with pytest.raises(NotAuthorised) as err:
        policy.recipients_for(REGISTRY, flow("single-permit.application-submitted"), DOSSIER, "portal",
                              ["region.brussels"])
    assert err.value.code == "recipient_not_allowed"


@pytest.mark.parametrize("recipient", ["municipality", "portal", "nobody", "region.flanders"])
def test_recipient_outside_the_flow_is_refused(recipient):
    with pytest.raises(NotAuthorised):
        policy.recipients_for(REGISTRY, flow("single-permit.admissible-to-dvz"), DOSSIER,
                              "region.flanders", [recipient])


def test_need_to_know_rules():
    """Art. 17: an employee's criminal record reaches DVZ, not the region; Art. 24: notices are administrative."""
    region = policy.delivery_rule(flow("single-permit.application-submitted"), "region.flanders")
    assert "criminal_record" not in region.data_categories and "health" not in region.data_categories
    dvz = policy.delivery_rule(flow("single-permit.admissible-to-dvz"), "dvz")
    assert {"criminal_record", "health"} <= dvz.data_categories
    notice = policy.delivery_rule(flow("single-permit.negative-decision-notice"), "region.wallonia")
    assert notice.data_categories <= {"administrative"}
    assert policy.delivery_rule(flow("single-permit.admissible-to-dvz"), "municipality") is None


def test_every_flow_has_a_sender_and_a_reachable_recipient():
    for f in REGISTRY.flows.values():
        senders = [p for p in REGISTRY.parties if f.allows_sender(p)]
        receivers = [p for p in REGISTRY.parties if policy.delivery_rule(f, p)]
        assert senders and receivers, f.id
