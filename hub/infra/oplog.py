"""Operational logs: structlog, one JSON object a line, on stderr (configured in hub/ports/oplog.py,
which the adapters share).

Separate from the audit trail and never carrying personal data: events name ids, flows, parties
and error types, never payload fields.
"""
from __future__ import annotations

from hub.ports.oplog import configure

__all__ = ["configure"]
