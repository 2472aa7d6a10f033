"""Short labels the commands print in narrow table columns."""
from __future__ import annotations

__all__ = ["CATEGORY_SHORT"]

# data category → its label in a table column
CATEGORY_SHORT = {"identification": "id", "contact": "contact", "residence_status": "residence",
                  "employment": "employment", "financial": "financial", "health": "health",
                  "criminal_record": "criminal", "administrative": "admin", "social_security": "soc.sec"}
