"""Loading contracts/consultations.yaml, the grounds on which a party reads a dossier it was not sent
(Art. 25, 26), cross-checked against the registry at start-up. A missing file means no ground."""
from __future__ import annotations

import fnmatch
from pathlib import Path

from hub.domain.categories import DATA_CATEGORIES, SPECIAL_CATEGORIES
from hub.domain.consultation import Consultation
from hub.domain.errors import RegistryError
from hub.domain.flows import Registry
from hub.registry.files import read_yaml

__all__ = ["FILE", "load_consultations"]

FILE = "consultations.yaml"


def load_consultations(contracts_dir: Path, registry: Registry) -> dict[str, Consultation]:
    """Read and cross-check the rules; a bad rule stops start-up naming the file and the field."""
    path = Path(contracts_dir) / FILE
    if not path.exists():
        return {}
    rules = {}
    for i, raw in enumerate(read_yaml(path, FILE).get("consultations") or []):
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
        unknown = rule.application_categories - DATA_CATEGORIES
        if unknown:
            raise fail("application_categories", f"unknown data categories {sorted(unknown)}")
        if rule.application_categories & SPECIAL_CATEGORIES:
            raise fail("application_categories", "health data and criminal records are never consulted this way (Art. 15–17)")
        for flow_id in rule.decisions:
            if flow_id not in registry.flows:
                raise fail("decisions", f"no flow {flow_id}")
        if not any(fnmatch.fnmatchcase(p, pattern) for p in registry.parties for pattern in rule.parties):
            raise fail("parties", "matches no party")
        rules[rule.id] = rule
    return rules
