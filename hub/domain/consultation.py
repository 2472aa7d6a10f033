"""Reading a dossier without having been sent it: Art. 25 (inspection services) and Art. 26 (mutual
recognition between regions), as laid down in contracts/consultations.yaml. Deny by default.

A consultation returns the stored application projected on the rule's categories and the
decisions the rule names, each projected on the categories its flow carries; health data and
criminal records are never in a rule (Art. 15–17). Every consultation is an audit event naming
the ground (rule id), the purpose and the categories returned.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from hub.domain.errors import NotAuthorised, RegistryError
from hub.domain.contracts import DATA_CATEGORIES
from hub.domain.flows import Registry

FILE = "consultations.yaml"
SPECIAL = {"health", "criminal_record"}


@dataclass(frozen=True)
class Consultation:
    id: str
    title: str
    legal_basis: tuple[str, ...]
    purpose: int
    parties: tuple[str, ...]
    dossiers: str                         # any | other_regions
    application_categories: frozenset[str]
    decisions: tuple[str, ...]

    def allows(self, party: str, dossier: Mapping[str, Any]) -> bool:
        if not any(fnmatch.fnmatchcase(party, p) for p in self.parties):
            return False
        if self.dossiers == "other_regions":
            return party != dossier["competent_region"]
        return True


def load_consultations(contracts_dir: Path, registry: Registry) -> dict[str, Consultation]:
    """Read and cross-check the rules; a bad rule stops start-up naming the file and the field."""
    path = Path(contracts_dir) / FILE
    if not path.exists():
        return {}
    rules = {}
    for i, raw in enumerate((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("consultations", [])):
        def fail(field: str, message: str) -> RegistryError:
            return RegistryError(FILE, f"consultations.{i}.{field}", message)
        try:
            rule = Consultation(raw["id"], raw["title"], tuple(raw["legal_basis"]), int(raw["purpose"]),
                                tuple(raw["parties"]), raw["dossiers"], frozenset(raw["application_categories"]),
                                tuple(raw.get("decisions", ())))
        except (KeyError, TypeError, ValueError) as err:
            raise fail("(entry)", f"incomplete rule: {err}") from None
        if rule.dossiers not in ("any", "other_regions"):
            raise fail("dossiers", "must be 'any' or 'other_regions'")
        unknown = rule.application_categories - set(DATA_CATEGORIES)
        if unknown:
            raise fail("application_categories", f"unknown data categories {sorted(unknown)}")
        if rule.application_categories & SPECIAL:
            raise fail("application_categories", "health data and criminal records are never consulted this way (Art. 15–17)")
        for flow_id in rule.decisions:
            if flow_id not in registry.flows:
                raise fail("decisions", f"no flow {flow_id}")
        if not any(fnmatch.fnmatchcase(p, pattern) for p in registry.parties for pattern in rule.parties):
            raise fail("parties", "matches no party")
        rules[rule.id] = rule
    return rules


def consult(registry: Registry, rule: Consultation, party: str, dossier: Mapping[str, Any],
            decisions: list[Mapping[str, Any]]) -> dict[str, Any]:
    """What `party` may read of `dossier` under `rule` (NotAuthorised otherwise)."""
    if not rule.allows(party, dossier):
        raise NotAuthorised(f"{party} may not consult this dossier under {rule.id}", code="consultation_not_allowed")
    application = registry.contracts["application"]
    projected = application.project(dossier["application"], rule.application_categories)
    categories = set(application.categories(projected))
    items = []
    for m in decisions:
        flow = registry.flow(m["flow_id"])
        payload = registry.contract_for(flow).project(m["payload"], flow.data_categories - SPECIAL)
        categories |= registry.contract_for(flow).categories(payload)
        items.append({"message_id": m["id"], "flow": m["flow_id"], "sender": m["sender"], "payload": payload})
    return {"dossier_id": dossier["id"], "consultation": rule.id, "legal_basis": list(rule.legal_basis),
            "purpose": rule.purpose, "state": dossier["state"], "competent_region": dossier["competent_region"],
            "data_categories": sorted(categories), "application": projected, "decisions": items}
