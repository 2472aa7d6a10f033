"""The four regional authorities' back offices: poller, simulator and conformance suite.

The regions are controllers for work (cooperation agreement on the single permit, Art. 9 §4–§7);
their back offices send admissibility and work decisions and receive applications and DVZ's
residence decisions (contracts/flows). One poller runs per region; the simulator is Flanders'.
"""
from __future__ import annotations

from adapters.backoffice import REGION_FLOWS, REGIONS, make_adapter

PARTIES = REGIONS                       # "flanders" → "region.flanders", …
FLOWS = REGION_FLOWS

ADAPTER = make_adapter("regions.back-office", "Regional back offices", REGIONS["flanders"], FLOWS,
                       delivered_flow="single-permit.residence-decision", sender="dvz")
