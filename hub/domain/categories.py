"""The categories of personal data a message may hold (Art. 12–18), named once.

Every personal field of a message contract carries one of them (`x-data-category`); the flow rules
say which a recipient may receive (Art. 11) and the projection keeps only those
(hub.domain.projection).
"""
from __future__ import annotations

__all__ = ["DATA_CATEGORIES", "SPECIAL_CATEGORIES", "SOCIAL_SECURITY"]

DATA_CATEGORIES: frozenset[str] = frozenset({
    "identification",     # Art. 12 §1 1°
    "contact",            # Art. 12 §1 1° g, 2° c–d
    "residence_status",   # Art. 12 §1 2°
    "employment",         # Art. 13 §1
    "financial",          # Art. 13 §1 (pay, means), §3 3°
    "health",             # Art. 15
    "criminal_record",    # Art. 17
    "administrative",     # Art. 18
    "social_security",    # Art. 14 (Dimona, Limosa, DmfA, general register of the self-employed)
})

# Art. 15 (health) and Art. 17 (criminal convictions): only DVZ and the regions receive them, only
# their designated persons see them (contracts/designations.yaml), and no consultation ground
# (Art. 25, 26) ever reaches them.
SPECIAL_CATEGORIES: frozenset[str] = frozenset({"health", "criminal_record"})

# Art. 14: the records the hub adds from the social-security sources (enrichment).
SOCIAL_SECURITY = "social_security"
