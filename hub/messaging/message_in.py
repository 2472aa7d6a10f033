"""A message as a party sends it — the body of POST /v1/messages and of a message on the party's
ingress queue (hub.messaging.queue_ingress): one model, so both ways in take the same fields within
the same bounds. The payload itself is checked by the ingress against the flow's contract."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.domain.errors import HubError, MalformedMessage
from hub.domain.problems import for_error, validation_issue
from hub.domain.values import strict_loads

__all__ = ["MESSAGE_ID", "MessageIn", "accepted_body", "answer_of", "read_message"]

MESSAGE_ID = r"^[A-Za-z0-9._:-]+$"   # a sender's own message id


class MessageIn(BaseModel):
    """A message on a registered flow. `recipients` may be left out: the flow's parties for the
    dossier. The payload is checked against the flow's contract by the hub (one compiled pass);
    the OpenAPI document gives each flow's payload schema (the `Message` oneOf)."""

    model_config = ConfigDict(extra="forbid")
    flow: str = Field(max_length=80)
    payload: dict[str, Any]
    recipients: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=32)
    dossier_id: str | None = Field(None, max_length=36)
    correlation_id: str | None = Field(None, max_length=64)
    message_id: str | None = Field(None, max_length=64, pattern=MESSAGE_ID,
                                   description="the sender's own id: a retry with the same id is not processed twice")


def read_message(body: bytes) -> MessageIn:
    """A raw body as a MessageIn: read by the one strict JSON reader (hub.domain.values), then checked
    by the model; each fault a MalformedMessage with the issues the API would answer for the same body
    (`malformed_message`, 400; a JSON fault keeps the reader's code, as in the API)."""
    value = strict_loads(body)
    try:
        return MessageIn.model_validate(value)
    except ValidationError as err:
        issues = [validation_issue({**e, "loc": ("body", *e.get("loc", ()))}) for e in err.errors()]
        raise MalformedMessage(issues, code="malformed_message") from None


def accepted_body(accepted: Any) -> dict[str, Any]:
    """What the sender is told of a message taken (an ingress.Accepted): 202 new, 200 a retry."""
    return {"status": 200 if accepted.duplicate else 202, "message_id": accepted.message_id,
            "dossier_id": accepted.dossier_id, "recipients": list(accepted.recipients),
            "duplicate": accepted.duplicate}


def answer_of(answer: Any, instance: str | None = None) -> dict[str, Any]:
    """One message's answer where several are answered at once (the batch endpoint, the ingress
    queue's replies): accepted_body, or {"status", "problem"} with the RFC 9457 body the single
    route answers for that refusal."""
    if isinstance(answer, HubError):
        return {"status": answer.status, "problem": for_error(answer, instance)}
    return accepted_body(answer)
