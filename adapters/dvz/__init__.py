"""The Immigration Office (DVZ / OE) back office: its poller, simulator and conformance suite.

DVZ is controller for residence (cooperation agreement on the single permit, Art. 7); its back
office sends residence decisions, the single act and authorisations, and receives the regions'
admissibility and work decisions (contracts/flows).
"""
from __future__ import annotations

from adapters.backoffice import DVZ_FLOWS, make_adapter

PARTY = "dvz"
FLOWS = DVZ_FLOWS

ADAPTER = make_adapter("dvz.back-office", "DVZ back office", PARTY, FLOWS,
                       delivered_flow="single-permit.work-decision", sender="region.flanders")
