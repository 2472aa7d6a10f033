"""The need-to-know rule (Art. 11, 15–17, 25–26 of the protocol agreement; GDPR art. 5(1)(c), 25):
what each reader of personal data gets to see, decided here and nowhere else.

Two gates, in this order:

1. **The party.** A recipient receives only the data categories its rule on the flow names (Art. 11):
   `for_recipient`, when the router writes a delivery. A party consulting a dossier it was not sent
   gets only the categories of its ground (Art. 25, 26), never a special one: `consultation`.
2. **The person.** Of the special categories a party holds (health, criminal records), a caller
   sees only those its designation allows (Art. 16, 17; contracts/designations.yaml), deny by
   default: `for_caller` over delivery rows (`redact` for one), `application_for` over a stored
   application.

Every reader of stored personal data goes through these functions:

    delivery by the router ......................... for_recipient          hub.messaging.router
    a party's own queue (its back-office system) ... redact                 hub.messaging.router
    GET /v1/inbox, GET /v1/dossiers/{id} ............ for_caller             hub.messaging.inbox
    consultation on a ground (Art. 25, 26) ......... consultation           hub.messaging.consultation
    access and portability export (Art. 28–29) ..... redact, application_for hub.lifecycle.rights

Pure functions of the registry and the rows; no I/O.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.domain.categories import DATA_CATEGORIES, SOCIAL_SECURITY, SPECIAL_CATEGORIES
from hub.domain.consultation import Consultation
from hub.domain.designations import Designations
from hub.domain.errors import NotAuthorised
from hub.domain.flows import Flow, Registry

__all__ = ["APPLICATION", "ENRICHMENT", "Projected", "for_recipient", "redact", "for_caller",
           "application_for", "consultation"]

# The attachments a delivery may carry besides its payload.
APPLICATION = "application"   # the stored application of the dossier a flow forwards (attach_dossier)
ENRICHMENT = "enrichment"     # the sources' records (Art. 14): category social_security only


@dataclass(frozen=True)
class Projected:
    """One recipient's view of one message: what is written into its delivery row."""

    payload: dict[str, Any]
    attachments: dict[str, Any] | None
    data_categories: list[str]


# --- gate 1: the party --------------------------------------------------------------------------

def for_recipient(registry: Registry, flow: Flow, payload: Mapping[str, Any], recipient: str, *,
                  application: Mapping[str, Any] | None = None,
                  records: Sequence[Mapping[str, Any]] | None = None) -> Projected | None:
    """Art. 11: the message as `recipient` receives it — the payload projected on the categories its
    rule on the flow names; with them the forwarded application (projected likewise) and the
    sources' records when the rule names social_security. None: the recipient has no rule on the
    flow (the registry changed since the message was stored), so it receives nothing at all."""
    rule = flow.recipient_rule(recipient)
    if rule is None:
        return None
    contract = registry.contract_for(flow)
    projected = contract.project(payload, rule.data_categories)
    categories = contract.categories(projected)
    attachments: dict[str, Any] = {}
    if flow.attach_dossier and application is not None:
        application_contract = registry.contracts[APPLICATION]
        attachments[APPLICATION] = application_contract.project(application, rule.data_categories)
        categories |= application_contract.categories(attachments[APPLICATION])
    if records and SOCIAL_SECURITY in rule.data_categories:
        attachments[ENRICHMENT] = list(records)
        categories.add(SOCIAL_SECURITY)
    return Projected(projected, attachments or None, sorted(categories))


def consultation(registry: Registry, rule: Consultation, party: str, dossier: Mapping[str, Any],
                 decisions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Art. 25, 26: what `party` may read under `rule` of a dossier it was not sent — the stored
    application projected on the rule's categories and the decisions the rule names, each projected
    on its flow's categories without the special ones (NotAuthorised when the rule does not let
    this party read this dossier)."""
    if not rule.allows(party, dossier):
        raise NotAuthorised(f"{party} may not consult this dossier under {rule.id}", code="consultation_not_allowed")
    application = registry.contracts[APPLICATION]
    projected = application.project(dossier["application"], rule.application_categories - SPECIAL_CATEGORIES)
    categories = set(application.categories(projected))
    items = []
    for m in decisions:
        flow = registry.flow(m["flow_id"])
        contract = registry.contract_for(flow)
        payload = contract.project(m["payload"], flow.data_categories - SPECIAL_CATEGORIES)
        categories |= contract.categories(payload)
        items.append({"message_id": m["id"], "flow": m["flow_id"], "sender": m["sender"], "payload": payload})
    return {"dossier_id": dossier["id"], "consultation": rule.id, "legal_basis": list(rule.legal_basis),
            "purpose": rule.purpose, "state": dossier["state"], "competent_region": dossier["competent_region"],
            "data_categories": sorted(categories), "application": projected, "decisions": items}


# --- gate 2: the person --------------------------------------------------------------------------

def redact(registry: Registry, row: Mapping[str, Any], visible: frozenset[str]) -> tuple[dict[str, Any], set[str]]:
    """A delivery row as a caller who may see the special categories `visible` sees it: payload and
    attachments projected again without the special categories it may not see (Art. 16–17).
    Returns the row (with the categories actually returned) and the withheld categories. A row of
    a flow no longer in the registry is emptied (deny)."""
    held = set(row["data_categories"] or ())
    withheld = (held & SPECIAL_CATEGORIES) - visible
    if not withheld:
        return dict(row), set()
    allowed = DATA_CATEGORIES - withheld
    flow = registry.flows.get(row["flow_id"])
    if flow is None:
        return {**row, "payload": {}, "attachments": None, "data_categories": []}, withheld
    contract = registry.contract_for(flow)
    payload = contract.project(row["payload"] or {}, allowed)
    categories = contract.categories(payload)
    attachments: dict[str, Any] = {}
    for name, value in (row["attachments"] or {}).items():
        if name == APPLICATION:
            application = registry.contracts[APPLICATION]
            attachments[name] = application.project(value, allowed)
            categories |= application.categories(attachments[name])
        elif name == ENRICHMENT:
            attachments[name] = value
            categories.add(SOCIAL_SECURITY)
        # any other attachment has no contract to project it with: withheld with the category (deny)
    out = {**row, "payload": payload, "attachments": attachments or None,
           "data_categories": sorted(categories & held)}
    return out, withheld


def for_caller(registry: Registry, designations: Designations, party: str, acting_person: str | None,
               rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[set[str]]]:
    """Delivery rows as this caller (a party, and the person acting for it or its back-office
    system) may see them; with each row the special categories withheld from it."""
    visible = designations.visible(party, acting_person)
    pairs = [redact(registry, r, visible) for r in rows]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def application_for(registry: Registry, application: Mapping[str, Any], withheld: set[str]) -> dict[str, Any]:
    """A stored application without the categories `withheld` (the special ones its reader may not see)."""
    if not withheld:
        return dict(application)
    return registry.contracts[APPLICATION].project(application, DATA_CATEGORIES - withheld)
