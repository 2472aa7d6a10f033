"""Operational logs: structlog, one JSON object a line, on stderr — for the hub (hub/infra/oplog.py)
and for its adapters (adapters/backoffice/logs.py), which may import hub.ports but not hub.infra.

Separate from the audit trail and never carrying personal data: events name ids, flows, parties
and error types, never payload fields.
"""
from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure"]


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written, not when logging was configured: a process
    may replace it meanwhile (a test runner capturing each test's output, then closing it), and a
    worker thread logging to a closed stream would die of it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "INFO", *, tracebacks: bool = True) -> None:
    """JSON lines on stderr from `level` up; `tracebacks`: an exception logged with exc_info is
    rendered with its traceback (off for code whose error messages may quote a payload)."""
    processors = [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                  structlog.processors.TimeStamper(fmt="iso", utc=True)]
    if tracebacks:
        processors.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*processors, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=False,
    )
