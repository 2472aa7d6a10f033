"""The parties the hub's own rules name, as ids of contracts/parties.yaml (the registry checks that
each exists, with the kind or role the rules expect of it)."""
from __future__ import annotations

__all__ = ["PLATFORM", "DVZ", "PORTAL"]

# The platform's processor (ONSS / RSZ): it runs the hub, so the relay, the enricher, the clocks'
# reminders and deemed authorisation, the follow-up and the operators' commands act in its name.
PLATFORM = "onss"
# The Immigration Office (DVZ / OE): examines the residence part of every application.
DVZ = "dvz"
# "Working in Belgium", the portal through which applicants and employers submit.
PORTAL = "portal"
