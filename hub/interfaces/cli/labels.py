"""Short labels the commands print in narrow table columns, and counted nouns in their messages."""
from __future__ import annotations

__all__ = ["CATEGORY_SHORT", "plural"]

# data category → its label in a table column
CATEGORY_SHORT = {"identification": "id", "contact": "contact", "residence_status": "residence",
                  "employment": "employment", "financial": "financial", "health": "health",
                  "criminal_record": "criminal", "administrative": "admin", "social_security": "soc.sec"}


def plural(n: int, one: str, many: str | None = None) -> str:
    """`n` and its noun, singular for 1: plural(1, "checkpoint") → "1 checkpoint",
    plural(2, "batch", "batches") → "2 batches" (thousands separated: "1,200 events")."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"
