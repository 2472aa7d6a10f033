"""A message as a party sends it — the body of POST /v1/messages and of a message on the party's
ingress queue (hub.messaging.queue_ingress): one model, so both ways in take the same fields within
the same bounds. The payload itself is checked by the ingress against the flow's contract."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.domain.errors import MalformedMessage
from hub.domain.problems import validation_issue
from hub.domain.values import strict_loads

__all__ = ["MESSAGE_ID", "MessageIn", "read_message"]

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
