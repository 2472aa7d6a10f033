"""What the DVZ and regional back-office pollers share: contract, clients, poller, simulator, conformance.

adapters/dvz and adapters/regions only name their parties and the flows each back office sends on
(contracts/flows/*.yaml, `senders`).
"""
from __future__ import annotations

from functools import partial

from adapters.backoffice.contract import CONTRACT_FILE
from hub.ports import Adapter, SimulatorConfig

__all__ = ["DVZ_FLOWS", "REGION_FLOWS", "REGIONS", "make_adapter"]

# Flows on which the Immigration Office sends (Art. 21–26 of the cooperation agreement, via contracts/flows).
DVZ_FLOWS = frozenset({
    "single-permit.additional-documents-requested",
    "single-permit.residence-decision",
    "single-permit.single-act-notified",
    "single-permit.authorisation-to-diplomatic-post",
    "single-permit.authorisation-to-municipality",
    "single-permit.negative-decision-notice",
    "single-permit.withdrawal-to-employment-service",
    "single-permit.appeal-lodged",
    "single-permit.appeal-ended",
})

# Flows on which a regional authority sends.
REGION_FLOWS = frozenset({
    "single-permit.additional-documents-requested",
    "single-permit.admissible-to-dvz",
    "single-permit.work-decision",
    "single-permit.negative-decision-notice",
    "single-permit.withdrawal-to-employment-service",
    "work-permit.authorisation-to-diplomatic-post",
    "single-permit.appeal-lodged",
    "single-permit.appeal-ended",
})

REGIONS = {"flanders": "region.flanders", "wallonia": "region.wallonia", "brussels": "region.brussels",
           "german-speaking": "region.german-speaking"}


def make_adapter(name: str, system: str, party: str, flows: frozenset[str], delivered_flow: str,
                 sender: str) -> Adapter:
    """An Adapter for a back office: `party`'s simulator; conformance delivers one `delivered_flow`
    message from `sender` (a flow the party receives)."""
    from adapters.backoffice.conformance import run_conformance
    from adapters.backoffice.simulator import make_back_office

    def make_simulator(config: SimulatorConfig):
        return make_back_office(party, config.faults)

    return Adapter(name=name, system=system, protocol="REST", contracts=(CONTRACT_FILE,),
                   make_simulator=make_simulator,
                   conformance=partial(run_conformance, party_flows=flows, delivered_flow=delivered_flow,
                                       sender=sender),
                   make_enricher=None)
