"""Operational logs: structlog, one JSON object a line, on stderr — for the hub (hub/infra/oplog.py)
and for its adapters (adapters/backoffice/logs.py), which may import hub.ports but not hub.infra.

Separate from the audit trail and never carrying personal data: events name ids, flows, parties
and error types, never payload fields.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

import structlog

__all__ = ["Condition", "configure"]


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


class Condition:
    """What one part knows of a server it needs, logged once per change of state, never per attempt:
    the first failure is one warning (`<subject>.unavailable`, with the error's type and what it
    does meanwhile), a different error while down one more, and the recovery one line
    (`<subject>.recovered`, how long it was down and how many attempts failed). Thread-safe."""

    def __init__(self, logger: Any, subject: str, **fields: Any):
        self._log, self.subject, self._fields = logger, subject, fields
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.failures = 0
        self.last_failure = 0.0                  # time.monotonic() of the last failure
        self._error: str | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, err: BaseException | str, **fields: Any) -> None:
        error = err if isinstance(err, str) else type(err).__name__
        with self._lock:
            self.failures += 1
            self.last_failure = time.monotonic()
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
            changed, self._error = first or error != self._error, error
        if changed:
            self._log.warning(f"{self.subject}.unavailable", error=error, **self._fields, **fields)

    def ok(self, **fields: Any) -> None:
        with self._lock:
            if self.down_since is None:
                return
            down_s, failures = time.monotonic() - self.down_since, self.failures
            self.down_since, self.failures, self._error = None, 0, None
        self._log.info(f"{self.subject}.recovered", down_s=round(down_s, 2), failed_attempts=failures,
                       **self._fields, **fields)
