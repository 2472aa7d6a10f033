"""Reading a dossier without having been sent it: Art. 25 (inspection services) and Art. 26 (mutual
recognition between regions), as laid down in contracts/consultations.yaml. Deny by default.

A rule names who may consult (party patterns), which dossiers (any, or only those of other
regions), the categories of the stored application it opens and the decisions it shows. Health
data and criminal records are never in a rule (Art. 15–17; hub.registry refuses such a file).
What a consultation returns is decided in hub.domain.projection (`consultation`); every
consultation is an audit event naming the ground (rule id), the purpose and the categories returned.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Consultation"]


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
