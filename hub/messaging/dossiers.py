"""The message path's records: a dossier as the state machine reads it, a dossier written after a
message (with its anonymous statistics fact), a stored message and its outbox row, a duplicate.

Called by the ingress steps (hub.messaging.ingress) inside the unit of work's write; nothing here
opens a transaction of its own.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, select, update

from hub.domain import statistics
from hub.domain.dossier import retain_until
from hub.domain.envelope import Envelope
from hub.domain.errors import InvalidTransition, MalformedMessage, UnknownDossier
from hub.domain.flows import Flow
from hub.infra.store.notify import announce
from hub.infra.store.schema import dossiers, messages, outbox, stats_facts, stored_application
from hub.infra.store.unit_of_work import Batch

__all__ = ["DOCUMENT_LISTS", "Stored", "load_dossier", "load_dossiers", "write_dossier", "write_message",
           "stored_message", "stored_messages"]

# The document lists of an application; additional documents join the stored application (Art. 20 §4).
DOCUMENT_LISTS = ("identity_documents", "medical_documents", "criminal_record_documents",
                  "employment_documents", "administrative_documents")

# Built once: statement construction is a measurable share of a message's cost.
# The columns the state machine reads (hub.domain.dossier): everything but the stored application.
_SELECT_DOSSIERS = select(*(c for c in dossiers.c if c.name != "application")) \
    .where(dossiers.c.id.in_(bindparam("dossier_ids", expanding=True)))
_SELECT_MESSAGES = select(messages.c.id, messages.c.sender, messages.c.payload_hash, messages.c.dossier_id,
                          messages.c.recipients).where(messages.c.id.in_(bindparam("message_ids", expanding=True)))


class Stored(NamedTuple):
    """What the store knows of a message id already used: who sent what, about which dossier, to whom."""

    sender: str
    payload_hash: str
    dossier_id: str | None
    recipients: tuple[str, ...]


def load_dossier(reads: Engine, dossier_id: str | None,
                 known: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The dossier as the state machine reads it; `known`: dossiers read already (a batch's)."""
    if not dossier_id:
        raise MalformedMessage("this flow needs a dossier_id")
    row = (known if known is not None else load_dossiers(reads, [dossier_id])).get(dossier_id)
    if row is None:
        raise UnknownDossier(f"no dossier {dossier_id}")
    return dict(row)


def load_dossiers(reads: Engine, dossier_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The dossiers of these ids that exist (one query for a batch of submissions)."""
    if not dossier_ids:
        return {}
    with reads.connect() as conn:
        return {row["id"]: dict(row) for row in
                conn.execute(_SELECT_DOSSIERS, {"dossier_ids": list(set(dossier_ids))}).mappings()}


def stored_message(conn: Connection, message_id: str) -> Stored | None:
    return stored_messages(conn, [message_id]).get(message_id)


def stored_messages(conn: Connection, message_ids: Sequence[str]) -> dict[str, Stored]:
    """What the store knows of those of these message ids already used (one query)."""
    rows = conn.execute(_SELECT_MESSAGES, {"message_ids": list(set(message_ids))})
    return {row.id: Stored(row.sender, row.payload_hash, row.dossier_id, tuple(row.recipients)) for row in rows}


def write_message(batch: Batch, env: Envelope) -> None:
    """The message as received, and its outbox row: the relay takes it from there."""
    batch.insert(messages, dict(
        id=env.message_id, flow_id=env.flow_id, sender=env.sender, recipients=list(env.recipients),
        purpose=env.purpose, dossier_id=env.dossier_id, correlation_id=env.correlation_id,
        acting_person=env.acting_person, payload_hash=env.payload_hash, payload=env.payload,
        received_at=env.received_at))
    batch.insert(outbox, dict(message_id=env.message_id, created_at=env.received_at))
    batch.once(announce)   # wakes a relay in another process, once per commit


def write_dossier(batch: Batch, flow: Flow, env: Envelope, dossier: dict[str, Any]) -> None:
    """The dossier after this message: created, or moved by compare-and-set on the state the ingress
    read (a concurrent move makes this one a 409); its statistics fact with it (Art. 31–32)."""
    now, conn, values = env.received_at, batch.conn, dict(dossier["change"])
    validity = statistics.validity_months(env.payload) if env.payload.get("outcome") == "granted" else None
    if flow.creates_dossier:
        p = env.payload
        worker = p.get("worker") or {}
        row = dict(id=dossier["id"], application_kind=p["application_kind"], category=p["category"],
                   competent_region=dossier["competent_region"], state=values["state"],
                   # the application is the message's payload, stored once (schema.stored_application)
                   application=None, application_message_id=env.message_id,
                   created_at=now, updated_at=now, subject_insz=worker.get("insz"),
                   subject_passport=worker.get("passport_number"))
        fact = statistics.new_fact({**row, "application": p})            # Art. 31-32, anonymous
        row["fact_id"] = fact["id"]
        batch.insert(stats_facts, fact)
        batch.insert(dossiers, row)
        return
    values["updated_at"] = now
    extra = {k: env.payload[k] for k in DOCUMENT_LISTS if k in env.payload}
    if extra:  # additional documents join the stored application (Art. 20 §4)
        app = conn.execute(select(stored_application).where(dossiers.c.id == env.dossier_id)).scalar_one()
        app = dict(app)
        for key, docs in extra.items():
            app[key] = list(app.get(key, [])) + list(docs)
        values["application"] = app
    after = {**dossier, **values}
    values["retain_until"] = retain_until(after)                      # Art. 27
    if after.get("fact_id") and (values["state"] != dossier["state"] or validity is not None):
        conn.execute(update(stats_facts).where(stats_facts.c.id == after["fact_id"])   # Art. 31-32, anonymous
                     .values(**statistics.fact_changes(after, validity)))
    # compare-and-set on the state read in `authorise`: a concurrent move makes this one a 409
    done = conn.execute(update(dossiers).where(dossiers.c.id == env.dossier_id)
                        .where(dossiers.c.state == dossier["state"]).values(**values))
    if done.rowcount != 1:
        raise InvalidTransition({"from": dossier["state"], "detail": "the dossier moved meanwhile"})
