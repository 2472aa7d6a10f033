"""The AMQP way in: a party publishes on its own ingress queue, the hub answers on its reply queue.

    <prefix>hub.ingress.<party> ─► QueueIngress: the publisher (user_id) ─► the body (MessageIn)
        ─► submit_many (the API's steps, audit and idempotency) ─► one answer per message
        ─► <prefix>hub.replies.<party>, confirmed ─► the deliveries acked

Who sent a message is RabbitMQ's `user_id` property and nothing else: the broker refuses a publish
whose user_id is not the connection's authenticated user, and the broker user of a party is named
as the party (`region.flanders`). A message without a user_id, or with one that is not the party of
the queue it came from (the hub's own retry copies keep it: hub.infra.transport.amqp), is refused.
The person acting, if any, is the `acting-person` header (the API takes it from the token; over the
broker the party's system names it, within the same rules).

Each answer is a JSON body with the message's correlation id property set to the incoming message's
correlation_id property, else its message_id property, else the body's message_id:
  accepted  {"status": 202 | 200, "message_id", "dossier_id", "recipients", "duplicate"}
  refused   {"status": <the HTTP status>, "problem": <the RFC 9457 body the API answers>}
Replies always go to the party's own reply queue; a `reply_to` property is not followed (the hub's
broker user may write to every queue: a party must not make it write to another's).

A batch of deliveries is one submit_many; the deliveries are acked (the handler returns) only once
it returned — what was accepted is committed — and the replies are confirmed by the broker. The store
away is transport.Unavailable: the batch is tried again without spending an attempt, and nothing of it
was stored. What is refused before submit_many (no or another user_id, a body that is not JSON or not
the shape) is on the record as the API records a request refused at its edge: hub.audit.refusals,
the first of each kind at once, its repeats counted.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from hub.audit.refusals import RefusalLog
from hub.domain import jsonbytes
from hub.domain.envelope import new_id
from hub.domain.errors import HubError, MalformedMessage, NotAuthenticated, PayloadTooLarge
from hub.infra.auth import valid_acting_person
from hub.infra.store.db import is_unavailable
from hub.infra.transport import CORRELATION_ID, Delivery, Transport, Unavailable
from hub.infra.transport.base import Item
from hub.messaging.ingress import MAX_BATCH, Accepted, Ingress, Submission, submit_many
from hub.messaging.message_in import MESSAGE_ID, answer_of, read_message
from hub.messaging.queues import INGRESS_QUEUE, ingress_queue, reply_queue

__all__ = ["ACTING_PERSON_HEADER", "QueueIngress", "reply_for"]

log = structlog.get_logger("hub.messaging.queue_ingress")

ACTING_PERSON_HEADER = "acting-person"
_MESSAGE_ID = re.compile(MESSAGE_ID)


@dataclass
class QueueIngress:
    """The consumer of one party's ingress queue."""

    ingress: Ingress
    transport: Transport
    party: str
    queue_prefix: str = ""
    refusals: RefusalLog | None = None
    max_batch: int = 100
    max_body_bytes: int | None = None   # the API's body limit (settings.max_body_bytes): larger is a 413
    _route: str = field(init=False)

    def __post_init__(self) -> None:
        self.queue = ingress_queue(self.party, self.queue_prefix)
        self.replies = reply_queue(self.party, self.queue_prefix)
        self._route = f"amqp {INGRESS_QUEUE}{self.party}"   # the kind of a refusal: bounded, one per party
        if self.refusals is None:
            self.refusals = RefusalLog(self.ingress.work)
        if not 1 <= self.max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be 1 to {MAX_BATCH}")

    # --- one batch ----------------------------------------------------------------------------

    def handle_batch(self, batch: Sequence[Delivery]) -> None:
        answers: list[Accepted | HubError | None] = [None] * len(batch)
        taken: list[tuple[int, Submission]] = []
        for i, d in enumerate(batch):
            try:
                taken.append((i, self._submission(d)))
            except HubError as err:
                answers[i] = err
        try:
            results = submit_many(self.ingress, [s for _, s in taken]) if taken else []
        except Exception as err:
            if is_unavailable(err):   # nothing of the batch is known stored: later, without spending an attempt
                raise Unavailable(type(err).__name__) from err
            raise
        for (i, _), result in zip(taken, results):
            answers[i] = result
        for d, answer in zip(batch, answers):   # refused at the edge: on the record as the API's are
            if isinstance(answer, HubError) and not getattr(answer, "audited", False):
                self._record_refusal(d, answer)
        self.transport.publish_many([self._reply(d, a) for d, a in zip(batch, answers)])

    def _submission(self, d: Delivery) -> Submission:
        """The delivery as a Submission of the queue's party, or the HubError that refuses it."""
        if d.user_id is None:
            raise NotAuthenticated("the message carries no user_id: the hub takes the sender from it "
                                   "(the broker checks it against the connection's user)", code="missing_user_id")
        if d.user_id != self.party:
            raise NotAuthenticated(f"user_id {d.user_id[:64]!r} is not the party of this queue",
                                   code="identity_mismatch")
        if self.max_body_bytes is not None and len(d.body) > self.max_body_bytes:
            raise PayloadTooLarge(f"body over {self.max_body_bytes} bytes")
        msg = read_message(d.body)
        acting = d.headers.get(ACTING_PERSON_HEADER)
        if isinstance(acting, bytes):
            acting = acting.decode("utf-8", "replace")
        if acting is not None and not valid_acting_person(acting):
            raise MalformedMessage([{"in": "header", "name": ACTING_PERSON_HEADER,
                                     "detail": "a user id of 1-128 letters, digits or ._:@-"}], code="invalid_request")
        # the body's message id is the sender's idempotency key; without one, the message's own
        # message_id property (so that a redelivery is not taken twice), if it is a valid one
        message_id = msg.message_id
        if message_id is None and d.message_id and len(d.message_id) <= 64 and _MESSAGE_ID.fullmatch(d.message_id):
            message_id = d.message_id
        return Submission(flow_id=msg.flow, sender=self.party, payload=msg.payload,
                          recipients=tuple(msg.recipients), dossier_id=msg.dossier_id,
                          correlation_id=msg.correlation_id, message_id=message_id, acting_person=acting)

    def _record_refusal(self, d: Delivery, err: HubError) -> None:
        actor = self.party if d.user_id == self.party else None
        try:
            self.refusals.refused(self.party, err.code, self._route, actor=actor)
        except Exception as failure:   # the store went away just now: counted, written with the next
            log.warning("ingress_refusal_not_recorded", party=self.party, error=type(failure).__name__)
        err.audited = True

    def _reply(self, d: Delivery, answer: Accepted | HubError | None) -> Item:
        body = reply_for(answer, instance=self.queue)
        correlation = d.correlation_id or d.message_id or _body_message_id(answer)
        headers = {CORRELATION_ID: correlation} if correlation else None
        return (self.replies, new_id(), jsonbytes.dumps(body), headers)

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, prefetch: int = 200) -> None:
        self.refusals.start()
        try:
            self.transport.consume_batch(self.queue, self.handle_batch, stop=stop, prefetch=prefetch,
                                         max_batch=min(self.max_batch, prefetch))
        finally:
            try:
                self.refusals.stop()
            except Exception as err:  # noqa: BLE001 - the store away: the counts are lost with the process only
                log.warning("ingress_refusal_counts_not_written", party=self.party, error=type(err).__name__)


def reply_for(answer: Accepted | HubError | None, instance: str | None = None) -> dict[str, Any]:
    """The answer to one message, as its reply body (the batch endpoint's answer to it)."""
    if answer is None:   # cannot be: every delivery has an answer; said rather than assumed
        answer = HubError("no answer", code="internal_error")
        answer.status = 500
    return answer_of(answer, instance)


def _body_message_id(answer: Accepted | HubError | None) -> str | None:
    return answer.message_id if isinstance(answer, Accepted) else None
