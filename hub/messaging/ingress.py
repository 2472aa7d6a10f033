"""The way in of a message, as an explicit list of small steps over a `Transit`.

    deduplicate ─► INGRESS_STEPS (find_flow ─► validate ─► authorise) ─► store
    (dossier, message, outbox, one `accepted` audit event: one transaction)

Batch-native: `submit_many` takes what a party handed over at once (the batch endpoint, the AMQP
ingress; `submit` is a batch of one). Duplicates are looked up for the lot in one query, the steps
run per message, and everything that passed is stored in one transaction, each with its own answer.

Reading INGRESS_STEPS tells the checks; the relay (hub.messaging.relay) and the router
(hub.messaging.router) carry it on from the outbox to the recipients. A step that refuses raises a
HubError: the message stops there, one `rejected` audit event is written, and nothing else is
stored. The records these steps read and write are in hub.messaging.dossiers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Callable

from sqlalchemy.exc import IntegrityError

from hub.audit import AuditEvent
from hub.domain import documents, policy
from hub.domain.dossier import change
from hub.domain.envelope import Envelope, new_id, payload_hash, utcnow
from hub.domain.errors import FlowDisabled, HubError, MalformedMessage, ProcedureNotStarted
from hub.domain.flows import REGION_PARTIES, Flow, Registry, region_party
from hub.infra.store.unit_of_work import Batch, UnitOfWork, Write
from hub.messaging.dossiers import (Stored, load_dossier, load_dossiers, stored_message, stored_messages, write_dossier,
                                    write_message)


@dataclass
class Submission:
    """What a party hands the hub, whichever way it came in (the API, its AMQP ingress queue)."""

    flow_id: str
    sender: str
    payload: Any
    recipients: tuple[str, ...] = ()
    dossier_id: str | None = None
    correlation_id: str | None = None
    message_id: str | None = None
    acting_person: str | None = None


@dataclass
class Accepted:
    message_id: str
    dossier_id: str | None
    recipients: tuple[str, ...]
    duplicate: bool = False


@dataclass
class Transit:
    """A message on its way in: what each step learned so far."""

    submission: Submission
    received_at: datetime
    flow: Flow | None = None
    categories: set[str] = field(default_factory=set)
    dossier: dict[str, Any] | None = None
    # the payload as the hub stores and delivers it: the submission's, with the bound fields it left
    # out filled in (x-bound-to); the submission keeps the payload as received
    payload: dict[str, Any] | None = None
    envelope: Envelope | None = None
    known: Mapping[str, dict[str, Any]] | None = None   # the dossiers of its batch, read in one query


@dataclass
class Ingress:
    registry: Registry
    work: UnitOfWork                                # the process's one writer (hub.infra.store.unit_of_work)
    on_stored: Callable[[], None] = lambda: None   # wakes the outbox relay in the same process
    clock: Callable[[], datetime] = utcnow
    # Art. 34, 36: procedure → the day its flows open (None: not yet); settings.professional_card_start
    opens: Mapping[str, date | None] = field(default_factory=lambda: MappingProxyType({}))


# ── steps ─────────────────────────────────────────────────────────────────────────────────────

def find_flow(ing: Ingress, t: Transit) -> Transit:
    t.flow = ing.registry.flow(t.submission.flow_id)
    if not t.flow.enabled:
        raise FlowDisabled(f"flow {t.flow.id} is not open (yet)")
    if t.flow.opens_with:
        starts = ing.opens.get(t.flow.opens_with)
        if starts is None or t.received_at.date() < starts:
            when = f"starts on {starts.isoformat()}" if starts else "has no start date yet"
            raise ProcedureNotStarted(f"the {t.flow.opens_with.replace('_', ' ')} procedure {when} (Art. 34, 36)")
    return t


def validate(ing: Ingress, t: Transit) -> Transit:
    """Contract first, then the flow's data categories: a field the flow does not carry is refused;
    then the documents: each must be what it declares (type, hash, plain file name)."""
    payload = t.submission.payload
    if not isinstance(payload, dict):
        raise MalformedMessage("payload must be a JSON object")
    t.categories = ing.registry.check_message(t.flow, payload)
    documents.check(payload)
    return t


def authorise(ing: Ingress, t: Transit) -> Transit:
    """Art. 11: flow × sender × recipient; the sender must be a party to the dossier it writes about,
    and what the payload says of an authority must be true: each bound field (x-bound-to) names the
    authenticated sender or the dossier's region (a field left out is filled in with it)."""
    s, flow = t.submission, t.flow
    policy.check_sender(flow, s.sender, None)
    if s.dossier_id and s.payload.get("dossier_id") not in (None, s.dossier_id):
        raise MalformedMessage("dossier_id of the envelope and of the payload differ")
    if flow.creates_dossier:
        t.dossier = {"id": new_id(), "competent_region": region_party(s.payload["competent_region"]),
                     "state": None, "application_kind": s.payload["application_kind"]}
    else:
        t.dossier = dict(load_dossier(ing.work.reads, _dossier_of(s), t.known))
        policy.check_sender(flow, s.sender, t.dossier)
    t.payload = _bound(ing.registry, flow, s.sender, t.dossier, s.payload)
    s.recipients = policy.recipients_for(ing.registry, flow, t.dossier, s.sender, s.recipients)
    t.dossier["change"] = _change(flow, t.dossier, t.payload, t.received_at)
    return t


def _writer(t: Transit) -> Write:
    """The envelope of a message that passed every check, and the part that stores it: its rows and
    one `accepted` event, which says what it passed (contract, categories, Art. 11) and to whom it goes."""
    s, flow = t.submission, t.flow
    env = t.envelope = Envelope(
        message_id=s.message_id or new_id(), flow_id=flow.id, sender=s.sender, recipients=s.recipients,
        purpose=flow.purpose, correlation_id=s.correlation_id or t.dossier["id"], payload=t.payload,
        dossier_id=t.dossier["id"], acting_person=s.acting_person, received_at=t.received_at,
    )
    event = AuditEvent("accepted", flow_id=flow.id, message_id=env.message_id, correlation_id=env.correlation_id,
                       dossier_id=env.dossier_id, actor=env.sender, acting_person=env.acting_person,
                       purpose=flow.purpose, legal_basis=flow.legal_basis, data_categories=sorted(t.categories),
                       reason=",".join(env.recipients), payload_hash=env.payload_hash)

    def write(w: Batch) -> list[AuditEvent]:
        write_dossier(w, flow, env, t.dossier)
        write_message(w, env)
        return [event]

    return write


INGRESS_STEPS: list[Callable[[Ingress, Transit], Transit]] = [find_flow, validate, authorise]


def submit(ing: Ingress, submission: Submission) -> Accepted:
    """One submission (see submit_many): its answer, or the HubError that refused it, raised."""
    answer = submit_many(ing, [submission])[0]
    if isinstance(answer, HubError):
        raise answer
    return answer


MAX_BATCH = 500   # submissions in one submit_many (the batch endpoint and the AMQP ingress take at most this)


def submit_many(ing: Ingress, submissions: Sequence[Submission]) -> list[Accepted | HubError]:
    """Run each submission through the same steps as `submit`; return each one's answer, in order:
    Accepted (duplicate=True for a message id already used for the same message), or the HubError
    that refused it (audited, as `submit` does). One duplicate lookup and one transaction serve the
    lot. Messages about the same dossier are taken in the order given: a later one is checked only
    once the earlier ones are stored, as if sent one after the other. The store or the broker being
    away is raised, not answered: nothing of the batch is then known to be stored."""
    if len(submissions) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} submissions at once, not {len(submissions)}")
    answers: list[Accepted | HubError | None] = [None] * len(submissions)
    pending = list(range(len(submissions)))
    while pending:   # one wave per message about a dossier already met in this batch
        pending = _wave(ing, submissions, pending, answers)
    if any(isinstance(a, Accepted) and not a.duplicate for a in answers):
        ing.on_stored()
    return answers   # type: ignore[return-value]


def _wave(ing: Ingress, submissions: Sequence[Submission], todo: list[int],
          answers: list[Accepted | HubError | None]) -> list[int]:
    """Check and store the submissions of `todo` that touch a dossier (or message id) at most once;
    return the rest, for the next wave."""
    now = ing.clock()
    wave, later, seen = [], [], set()
    for i in todo:
        s = submissions[i]
        keys = {("m", s.message_id)} if s.message_id else set()
        if (dossier := _dossier_of(s)) is not None:
            keys.add(("d", dossier))
        if keys & seen:
            later.append(i)
        else:
            seen |= keys
            wave.append(i)
    known = _duplicates(ing, [submissions[i] for i in wave])
    dossiers = load_dossiers(ing.work.reads, [d for i in wave if (d := _dossier_of(submissions[i]))])
    parts: list[tuple[int, Transit]] = []
    refused: list[tuple[int, Transit, HubError]] = []
    for i in wave:
        s = submissions[i]
        t = Transit(s, received_at=now, known=dossiers)
        try:
            if s.message_id and s.message_id in known:
                answers[i] = _answer_duplicate(ing, s, known[s.message_id])
                continue
            for step in INGRESS_STEPS:
                t = step(ing, t)
        except HubError as err:
            refused.append((i, t, err))
            continue
        except (KeyError, TypeError, AttributeError) as err:   # a payload shape the contract let through
            wrapped = MalformedMessage(f"payload shape not understood: {type(err).__name__}")
            wrapped.__cause__ = err
            refused.append((i, t, wrapped))
            continue
        parts.append((i, t))
    errors = ing.work.write_many([_writer(t) for _, t in parts])
    for (i, t), error in zip(parts, errors):
        if error is None:
            answers[i] = Accepted(t.envelope.message_id, t.envelope.dossier_id, t.envelope.recipients)
        elif isinstance(error, IntegrityError):   # the same message id raced in from elsewhere
            with ing.work.reads.connect() as conn:
                stored = stored_message(conn, t.submission.message_id) if t.submission.message_id else None
            if stored is None:
                raise error
            try:
                answers[i] = _answer_duplicate(ing, t.submission, stored)
            except HubError as err:
                refused.append((i, t, err))
        elif isinstance(error, HubError):          # the dossier moved meanwhile (409)
            refused.append((i, t, error))
        else:                                       # the store is away: the caller answers for the lot
            raise error
    if refused:
        ing.work.record([_rejected(s_err, t.submission, t) for _, t, s_err in refused])
        for i, _, err in refused:
            err.audited = True
            answers[i] = err
    return later


def _dossier_of(s: Submission) -> str | None:
    """The dossier a submission names (the envelope's, else the payload's), if any."""
    value = s.dossier_id or (s.payload.get("dossier_id") if isinstance(s.payload, dict) else None)
    return value if isinstance(value, str) else None


def _duplicates(ing: Ingress, batch: Sequence[Submission]) -> dict[str, Stored]:
    ids = [s.message_id for s in batch if s.message_id]
    if not ids:
        return {}
    with ing.work.reads.connect() as conn:
        return stored_messages(conn, ids)


def _answer_duplicate(ing: Ingress, s: Submission, stored: Stored) -> Accepted:
    """The first answer to a message id already used by this sender for this payload; a message id
    used for another message is refused."""
    if stored.sender != s.sender or not _same_payload(ing, s, stored.payload_hash, stored.dossier_id):
        raise MalformedMessage("message_id already used for another message", code="message_id_reused")
    return Accepted(s.message_id, stored.dossier_id, stored.recipients, duplicate=True)


def _rejected(err: HubError, s: Submission, t: Transit | None) -> AuditEvent:
    """The one trace a refused message leaves: who tried what, why it was refused, the payload's hash."""
    flow = t.flow if t else None
    try:
        digest = payload_hash(s.payload)
    except (TypeError, ValueError):
        digest = None
    return AuditEvent(
        "rejected", outcome="rejected", flow_id=s.flow_id, message_id=s.message_id,
        correlation_id=s.correlation_id, dossier_id=s.dossier_id, actor=s.sender,
        acting_person=s.acting_person, purpose=flow.purpose if flow else None,
        legal_basis=flow.legal_basis if flow else (), reason=err.code, payload_hash=digest)


def _change(flow: Flow, dossier: dict[str, Any], payload: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The dossier's columns after this message (hub.domain.dossier); a move it does not allow is a 409."""
    if flow.creates_dossier:
        return {"state": flow.dossier_state or "submitted"}
    return change(dossier, flow.dossier_state, payload, at)


# The contracts' region names by the regional authority's party id (dossiers.competent_region).
_REGION_NAMES = {party: name for name, party in REGION_PARTIES.items()}


def _bound(registry: Registry, flow: Flow, sender: str, dossier: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The payload checked against its bound fields (x-bound-to; paths found when the contract was
    loaded) and with those it left out filled in; another value is a 403 not_your_authority that
    names the field. On a flow that creates the dossier, its region is the one the payload names."""
    contract = registry.contract_for(flow)
    if not contract.bound_fields:
        return payload
    values = {"sender": sender}
    if not flow.creates_dossier:
        values["dossier.region"] = _REGION_NAMES[dossier["competent_region"]]
    return contract.bind(payload, values)


def _same_payload(ing: Ingress, s: Submission, stored_hash: str, dossier_id: str | None) -> bool:
    """Whether a retry carries the payload first stored: the same as received, or the same once the
    hub filled in what it left out (the stored hash is of the payload as stored, x-bound-to filled in)."""
    if stored_hash == payload_hash(s.payload):
        return True
    flow = ing.registry.flows.get(s.flow_id) if isinstance(s.flow_id, str) else None
    if flow is None or not isinstance(s.payload, dict) or not ing.registry.contract_for(flow).bound_fields:
        return False
    try:
        dossier = None if flow.creates_dossier else load_dossier(ing.work.reads, dossier_id)
        return stored_hash == payload_hash(_bound(ing.registry, flow, s.sender, dossier, s.payload))
    except (HubError, KeyError, TypeError):   # another dossier, another authority: another message
        return False
