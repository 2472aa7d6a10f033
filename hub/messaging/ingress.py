"""The path of one message, as an explicit list of small steps over a `Transit`.

    ingress ─► validate ─► authorise ─► store (dossier, message, outbox, audit: one transaction)

Reading INGRESS_STEPS tells the whole way in; hub/routing.py carries it on from the outbox to the
recipients. A step that refuses raises a HubError: the message stops there, one `rejected` audit
event is written in a transaction of its own, and nothing else is stored.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Callable

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from hub import audit
from hub.domain import documents, policy
from hub.audit import AuditEvent
from hub.domain.dossier import change, retain_until
from hub.domain.envelope import Envelope, new_id, payload_hash, utcnow
from hub.domain.errors import (
    FlowDisabled, HubError, InvalidTransition, MalformedMessage, ProcedureNotStarted, UnknownDossier,
)
from hub.domain.flows import Flow, Registry, region_party
from hub.infra.store import reader
from hub.infra.store.unit_of_work import Batch, GroupCommit
from hub.infra.store.notify import announce
from hub.lifecycle.stats import facts
from hub.infra.store.schema import dossiers, messages, outbox, stats_facts


@dataclass
class Submission:
    """What a party hands the hub, whichever way it came in (today: the API)."""

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
    envelope: Envelope | None = None
    duplicate_of: Accepted | None = None


@dataclass
class Ingress:
    registry: Registry
    engine: Engine
    on_stored: Callable[[], None] = lambda: None   # wakes the outbox relay in the same process
    clock: Callable[[], datetime] = utcnow
    commits: GroupCommit | None = None             # the process's one writer (hub/store/group_commit.py)
    # Art. 34, 36: procedure → the day its flows open (None: not yet); settings.professional_card_start
    opens: Mapping[str, date | None] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        self.reads = reader(self.engine)
        if self.commits is None:
            self.commits = GroupCommit(self.engine, clock=self.clock)


# Built once: statement construction is a measurable share of a message's cost.
# The columns the state machine reads (hub/dossier.py): everything but the stored application.
_SELECT_DOSSIER = select(*(c for c in dossiers.c if c.name != "application")) \
    .where(dossiers.c.id == bindparam("dossier_id"))


# ── steps ─────────────────────────────────────────────────────────────────────────────────────

def deduplicate(ing: Ingress, t: Transit) -> Transit:
    """A sender that retries with the same message id gets the first answer (idempotent ingress)."""
    if t.submission.message_id:
        with ing.reads.connect() as conn:
            t.duplicate_of = _duplicate(conn, t.submission)
    return t


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
    """Art. 11: flow × sender × recipient; the sender must be a party to the dossier it writes about."""
    s, flow = t.submission, t.flow
    policy.check_sender(flow, s.sender, None)
    if s.dossier_id and s.payload.get("dossier_id") not in (None, s.dossier_id):
        raise MalformedMessage("dossier_id of the envelope and of the payload differ")
    if flow.creates_dossier:
        t.dossier = {"id": new_id(), "competent_region": region_party(s.payload["competent_region"]),
                     "state": None, "application_kind": s.payload["application_kind"]}
    else:
        t.dossier = _load_dossier(ing, s.dossier_id or s.payload.get("dossier_id"))
        policy.check_sender(flow, s.sender, t.dossier)
    s.recipients = policy.recipients_for(ing.registry, flow, t.dossier, s.sender, s.recipients)
    t.dossier["change"] = _change(flow, t.dossier, s.payload, t.received_at)
    return t


def store(ing: Ingress, t: Transit) -> Transit:
    """One transaction: message, dossier state, outbox row and the audit events of the way in
    (shared with whatever other submissions are ready at the same moment: group commit)."""
    s, flow = t.submission, t.flow
    env = Envelope(
        message_id=s.message_id or new_id(), flow_id=flow.id, sender=s.sender, recipients=s.recipients,
        purpose=flow.purpose, correlation_id=s.correlation_id or t.dossier["id"], payload=s.payload,
        dossier_id=t.dossier["id"], acting_person=s.acting_person, received_at=t.received_at,
    )

    def write(w: Batch) -> list[AuditEvent]:
        _write_dossier(w, flow, env, t.dossier)
        w.insert(messages, dict(
            id=env.message_id, flow_id=flow.id, sender=env.sender, recipients=list(env.recipients),
            purpose=env.purpose, dossier_id=env.dossier_id, correlation_id=env.correlation_id,
            acting_person=env.acting_person, payload_hash=env.payload_hash, payload=env.payload,
            received_at=env.received_at))
        w.insert(outbox, dict(message_id=env.message_id, created_at=env.received_at))
        w.once(announce)   # wakes a relay in another process, once per commit
        common = dict(flow_id=flow.id, message_id=env.message_id, correlation_id=env.correlation_id,
                      dossier_id=env.dossier_id, actor=env.sender, acting_person=env.acting_person,
                      purpose=flow.purpose, legal_basis=flow.legal_basis,
                      data_categories=sorted(t.categories), payload_hash=env.payload_hash)
        return [AuditEvent("received", **common), AuditEvent("validated", **common),
                AuditEvent("authorised", **common, reason=",".join(env.recipients)),
                AuditEvent("stored", **common)]

    ing.commits.write(write)
    t.envelope = env
    return t


INGRESS_STEPS: list[Callable[[Ingress, Transit], Transit]] = [
    deduplicate, find_flow, validate, authorise, store,
]


def submit(ing: Ingress, submission: Submission) -> Accepted:
    """Run a submission through INGRESS_STEPS; on refusal write the `rejected` event and re-raise."""
    t = Transit(submission, received_at=ing.clock())
    try:
        for step in INGRESS_STEPS:
            t = step(ing, t)
            if t.duplicate_of:
                return t.duplicate_of
    except IntegrityError:
        # the same message id raced in twice: the first one won, this one is its duplicate
        with ing.reads.connect() as conn:
            if dup := _duplicate(conn, submission):
                return dup
        raise
    except HubError as err:
        reject(ing, submission, err, t)
        raise
    except (KeyError, TypeError, AttributeError) as err:  # a payload shape the contract let through
        wrapped = MalformedMessage(f"payload shape not understood: {type(err).__name__}")
        reject(ing, submission, wrapped, t)
        raise wrapped from err
    ing.on_stored()
    return Accepted(t.envelope.message_id, t.envelope.dossier_id, t.envelope.recipients)


def reject(ing: Ingress, s: Submission, err: HubError, t: Transit | None = None) -> None:
    """The one trace a refused message leaves: who tried what, why it was refused, the payload's hash."""
    err.audited = True
    flow = t.flow if t else None
    try:
        digest = payload_hash(s.payload)
    except (TypeError, ValueError):
        digest = None
    with ing.engine.begin() as conn:
        audit.append(conn, [AuditEvent(
            "rejected", outcome="rejected", flow_id=s.flow_id, message_id=s.message_id,
            correlation_id=s.correlation_id, dossier_id=s.dossier_id, actor=s.sender,
            acting_person=s.acting_person, purpose=flow.purpose if flow else None,
            legal_basis=flow.legal_basis if flow else (), reason=err.code, payload_hash=digest)])


# ── helpers ───────────────────────────────────────────────────────────────────────────────────

def _load_dossier(ing: Ingress, dossier_id: str | None) -> dict[str, Any]:
    if not dossier_id:
        raise MalformedMessage("this flow needs a dossier_id")
    with ing.reads.connect() as conn:
        row = conn.execute(_SELECT_DOSSIER, {"dossier_id": dossier_id}).mappings().first()
    if row is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    return dict(row)


def _change(flow: Flow, dossier: dict[str, Any], payload: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The dossier's columns after this message (hub/dossier.py); a move it does not allow is a 409."""
    if flow.creates_dossier:
        return {"state": flow.dossier_state or "submitted"}
    return change(dossier, flow.dossier_state, payload, at)


DOCUMENT_LISTS = ("identity_documents", "medical_documents", "criminal_record_documents",
                  "employment_documents", "administrative_documents")


def _write_dossier(batch: Batch, flow: Flow, env: Envelope, dossier: dict[str, Any]) -> None:
    now, conn, values = env.received_at, batch.conn, dict(dossier["change"])
    validity = facts.validity_months(env.payload) if env.payload.get("outcome") == "granted" else None
    if flow.creates_dossier:
        p = env.payload
        worker = p.get("worker") or {}
        row = dict(id=dossier["id"], application_kind=p["application_kind"], category=p["category"],
                   competent_region=dossier["competent_region"], state=values["state"], application=p,
                   created_at=now, updated_at=now, subject_insz=worker.get("insz"),
                   subject_passport=worker.get("passport_number"))
        fact = facts.new_fact(row)                                  # Art. 31-32, anonymous
        row["fact_id"] = fact["id"]
        batch.insert(stats_facts, fact)
        batch.insert(dossiers, row)
        return
    values["updated_at"] = now
    extra = {k: env.payload[k] for k in DOCUMENT_LISTS if k in env.payload}
    if extra:  # additional documents join the stored application (Art. 20 §4)
        app = conn.execute(select(dossiers.c.application).where(dossiers.c.id == env.dossier_id)).scalar_one()
        app = dict(app)
        for key, docs in extra.items():
            app[key] = list(app.get(key, [])) + list(docs)
        values["application"] = app
    after = {**dossier, **values}
    values["retain_until"] = retain_until(after)                      # Art. 27
    if after.get("fact_id") and (values["state"] != dossier["state"] or validity is not None):
        facts.record(conn, after, validity)                          # Art. 31-32, anonymous
    # compare-and-set on the state read in `authorise`: a concurrent move makes this one a 409
    done = conn.execute(update(dossiers).where(dossiers.c.id == env.dossier_id)
                        .where(dossiers.c.state == dossier["state"]).values(**values))
    if done.rowcount != 1:
        raise InvalidTransition({"from": dossier["state"], "detail": "the dossier moved meanwhile"})


def _duplicate(conn: Connection, s: Submission) -> Accepted | None:
    row = conn.execute(select(messages.c.sender, messages.c.payload_hash, messages.c.dossier_id,
                              messages.c.recipients).where(messages.c.id == s.message_id)).first()
    if row is None:
        return None
    if row.sender != s.sender or row.payload_hash != payload_hash(s.payload):
        raise MalformedMessage("message_id already used for another message", code="message_id_reused")
    return Accepted(s.message_id, row.dossier_id, tuple(row.recipients), duplicate=True)
