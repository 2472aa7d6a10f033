"""The pollers' operational logs: structlog, one JSON object a line, on stderr.

Configured as the hub's own (hub/infra/oplog.py, which adapters may not import). Like the hub's,
they carry ids, flows, parties, counts and error types, never a payload field nor an error message
(which may quote one).
"""
from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import structlog

__all__ = ["configure", "get_logger", "where"]


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (a test runner may swap it meanwhile)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "INFO") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A lazy logger: it follows whatever configuration is current when it writes."""
    return structlog.get_logger(component=name)


def where(err: BaseException) -> list[str]:
    """Where an error was raised, as `file:line function` frames: the traceback without the message."""
    return [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_tb(err.__traceback__)][-8:]
