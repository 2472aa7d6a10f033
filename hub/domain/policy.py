"""Who may send, receive and see what: party × flow × dossier × data category. Deny by default.

Pure decisions over the registry and a dossier's facts; no I/O. The pipeline asks, the API asks,
and both get the same answer.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from hub.domain.errors import NotAuthorised
from hub.domain.parties import DVZ, PLATFORM, PORTAL
from hub.domain.flows import Flow, Registry, RecipientRule


def dossier_parties(dossier: Mapping[str, Any]) -> set[str]:
    """Who takes part in a dossier's procedure: the portal, DVZ and the competent region (Art. 7, 12),
    and the platform itself (ONSS as processor: reminders, deemed authorisation on its flows only)."""
    return {PORTAL, DVZ, dossier["competent_region"], PLATFORM}


def check_sender(flow: Flow, sender: str, dossier: Mapping[str, Any] | None) -> None:
    """Art. 11: only the flow's senders; on an existing dossier, only a party to it."""
    if not flow.allows_sender(sender):
        raise NotAuthorised(f"{sender} may not send on {flow.id}", code="sender_not_allowed")
    if dossier is not None and not flow.creates_dossier and sender not in dossier_parties(dossier):
        raise NotAuthorised(f"{sender} is not a party to this dossier", code="not_party_to_dossier")


def recipients_for(registry: Registry, flow: Flow, dossier: Mapping[str, Any], sender: str,
                   requested: Iterable[str] = ()) -> tuple[str, ...]:
    """The recipients of one message: those the sender named, or else the flow's own.

    Unnamed, a concrete party of the flow is a recipient and a pattern (`region.*`) stands for the
    dossier's party that matches it — the competent region. Each must be a known party with a rule on
    the flow, never the sender; an application goes only to the region it names.
    """
    chosen = tuple(dict.fromkeys(requested)) or _flow_recipients(flow, dossier, sender)
    if not chosen:
        raise NotAuthorised(f"no recipient on {flow.id}", code="recipient_not_allowed")
    for party in chosen:
        if party not in registry.parties or flow.recipient_rule(party) is None or party == sender:
            raise NotAuthorised(f"{party} is not a recipient of {flow.id}", code="recipient_not_allowed")
        if flow.creates_dossier and party.startswith("region.") and party != dossier["competent_region"]:
            raise NotAuthorised(f"{party} is not the competent region named in the application",
                                code="recipient_not_allowed")
    return chosen


def delivery_rule(flow: Flow, recipient: str) -> RecipientRule | None:
    """The categories a recipient receives on a flow (need to know), or None: nothing at all."""
    return flow.recipient_rule(recipient)


def _flow_recipients(flow: Flow, dossier: Mapping[str, Any], sender: str) -> tuple[str, ...]:
    found: list[str] = []
    for rule in flow.recipients:
        if any(ch in rule.party for ch in "*?["):
            found += [p for p in sorted(dossier_parties(dossier)) if fnmatch.fnmatchcase(p, rule.party)]
        else:
            found.append(rule.party)
    return tuple(p for p in dict.fromkeys(found) if p != sender)
