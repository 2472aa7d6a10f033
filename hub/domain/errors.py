"""The hub's errors as types, each with a machine-readable code and an HTTP status.

They are mapped once to HTTP (hub/interfaces/api/problems.py: RFC 9457 problem details) and once to
the CLI (hub/interfaces/cli/options.py); nowhere else decides a status.
"""
from __future__ import annotations

from typing import Any


class HubError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: Any = None, *, code: str | None = None):
        super().__init__(detail if isinstance(detail, str) else (code or self.code))
        self.detail = detail
        if code is not None:
            self.code = code

    def as_body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


class MalformedMessage(HubError):
    status, code = 400, "malformed_message"


class PayloadTooLarge(HubError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(HubError):
    """A body in a media type the operation does not take (JSON bodies: application/json only)."""

    status, code = 415, "unsupported_media_type"


class ContractViolation(HubError):
    """The payload does not follow the flow's message contract (or a field falls outside the flow's categories)."""

    status, code = 422, "contract_violation"


class UnknownFlow(HubError):
    status, code = 422, "unknown_flow"


class FlowDisabled(HubError):
    status, code = 422, "flow_disabled"


class ProcedureNotStarted(FlowDisabled):
    """Art. 34, 36: the flow belongs to a procedure that has not started on the platform yet."""
    code = "procedure_not_started"


class NotAuthenticated(HubError):
    status, code = 401, "not_authenticated"


class NotAuthorised(HubError):
    status, code = 403, "not_authorised"


class RateLimited(HubError):
    """A party sent more requests than its rate limit allows; `retry_after` in whole seconds."""

    status, code = 429, "rate_limited"

    def __init__(self, detail=None, *, retry_after: int = 1, code: str | None = None):
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class UnknownDossier(HubError):
    status, code = 404, "unknown_dossier"


class NotFound(HubError):
    status, code = 404, "not_found"


class InvalidTransition(HubError):
    status, code = 409, "invalid_transition"


class RegistryError(Exception):
    """A contract or flow file is wrong: start-up stops, naming the file and the field."""

    def __init__(self, file: str, field: str, message: str):
        super().__init__(f"{file}: {field}: {message}")
        self.file, self.field, self.message = file, field, message
