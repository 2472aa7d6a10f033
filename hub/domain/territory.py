"""Which region is competent for a place in Belgium (Art. 6 of the agreement: the place of work)."""
from __future__ import annotations

from functools import lru_cache

# Belgian postcodes by region; the German-speaking Community's municipalities are 4700–4799.
POSTCODE_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "region.brussels": ((1000, 1299),),
    "region.wallonia": ((1300, 1499), (4000, 4699), (4800, 7999)),
    "region.german-speaking": ((4700, 4799),),
    "region.flanders": ((1500, 3999), (8000, 9999)),
}


@lru_cache(maxsize=16_384)
def region_of_postcode(postcode: str | int | None) -> str | None:
    """The competent region's party id for a Belgian postcode, or None when it is not one."""
    try:
        code = int(str(postcode).strip())
    except (TypeError, ValueError):
        return None
    for region, ranges in POSTCODE_RANGES.items():
        if any(lo <= code <= hi for lo, hi in ranges):
            return region
    return None
