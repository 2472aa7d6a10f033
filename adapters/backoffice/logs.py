"""The pollers' operational logs: structlog, one JSON object a line, on stderr.

Configured as the hub's own (hub.ports.oplog), without tracebacks. Like the hub's,
they carry ids, flows, parties, counts and error types, never a payload field nor an error message
(which may quote one).
"""
from __future__ import annotations

import traceback
from typing import Any

import structlog

from hub.ports import oplog

__all__ = ["configure", "get_logger", "where"]


def configure(level: str = "INFO") -> None:
    """The hub's JSON lines (hub.ports.oplog), without tracebacks: an error is logged as its type and
    its frames (`where`), never its message."""
    oplog.configure(level, tracebacks=False)


def get_logger(name: str) -> Any:
    """A lazy logger: it follows whatever configuration is current when it writes."""
    return structlog.get_logger(component=name)


def where(err: BaseException) -> list[str]:
    """Where an error was raised, as `file:line function` frames: the traceback without the message."""
    return [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_tb(err.__traceback__)][-8:]
