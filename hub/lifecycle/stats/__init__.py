"""Anonymous statistics (Art. 31-32): the fact table that survives deletion, and what is drawn from it.

    (the fact itself: hub.domain.statistics, written with the dossier by the message path)
    queries.py   applications and decisions per group; processing times
    eurostat.py  the yearly residence-permit file (Reg. 862/2007)

DVZ and the regional authorities draw them; every draw is one `consulted` audit event with no
dossier, no data category, and a reason naming the route and the kinds of filter, never the values.
"""
from __future__ import annotations

from collections.abc import Sequence

from hub.audit import AuditEvent, Recorder
from hub.domain.errors import NotAuthorised
from hub.domain.flows import Registry

__all__ = ["require_recipient", "record_draw"]


def require_recipient(registry: Registry, party_id: str) -> None:
    """Art. 31–32: DVZ and the regional authorities consult the platform's statistics."""
    party = registry.parties.get(party_id)
    if party is None or party.examines is None:   # DVZ (residence) and the regional authorities (work)
        raise NotAuthorised("statistics are drawn by DVZ and the regional authorities only (Art. 31-32)",
                            code="not_statistics_recipient")


def record_draw(recorder: Recorder, party: str, acting_person: str | None, what: str, kinds: Sequence[str]) -> None:
    """The trace of one draw of statistics: who, which table (`what`), which kinds of filter."""
    recorder.record([AuditEvent("consulted", actor=party, acting_person=acting_person,
                                reason=f"{what}: " + (",".join(kinds) if kinds else "no filter"))])
