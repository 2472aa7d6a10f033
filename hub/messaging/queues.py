"""The broker queues of the message path: one route queue, and one queue per party that consumes
its own (`delivery: queue` in contracts/parties.yaml). A prefix (settings.queue_prefix) lets
several hubs share one broker."""
from __future__ import annotations

__all__ = ["ROUTE_QUEUE", "party_queue"]

ROUTE_QUEUE = "hub.route"


def party_queue(party_id: str, prefix: str = "") -> str:
    return f"{prefix}party.{party_id}"
