"""Types the routes share for what comes in and what goes out, so that every input is bounded to
what the store can hold and every answer is described the same way in the OpenAPI document.

- `Instant`: a date-time as the API takes it (a query parameter or a body field), ISO 8601 text
  (not a number of seconds, which pydantic would otherwise take). Without an offset
  it is UTC; with one it is converted to UTC, and it must then fall in the years 1900–2999. Python,
  the stores and the statutory calendars all handle those; "dates at the edge of time" such as
  `9999-12-31T23:59:59-23:59` (year 10000 in UTC) or `0001-01-01T00:00:00+23:59` (year 0) are a 400
  problem, never a 500.
- `Timestamp`: a date-time as the API answers it (ISO 8601 with its offset, as the hub writes it).
- Path identifiers, bounded (`DossierPath`, `RequestPath`).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from hub.domain.formats import FIRST_YEAR as MIN_YEAR, LAST_YEAR as MAX_YEAR, bounded_utc
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
INSTANT_RULE = f"ISO 8601; without an offset: UTC; years {MIN_YEAR}–{MAX_YEAR} once in UTC"


def _text(value: object) -> object:
    """A date-time comes as ISO 8601 text (YYYY-MM-DD…), as the document says: not as a number of
    seconds, in a string or not."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("a date-time in ISO 8601 (YYYY-MM-DDThh:mm:ss, an offset or none)")


to_instant = bounded_utc   # aware UTC within the years the contracts accept, or ValueError (a 400 problem)


Instant = Annotated[datetime, BeforeValidator(_text), AfterValidator(to_instant)]

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]

MAX_ID = 64
DossierPath = Annotated[str, Path(max_length=MAX_ID, description="the dossier's id")]
RequestPath = Annotated[str, Path(max_length=MAX_ID, description="the request's reference")]
