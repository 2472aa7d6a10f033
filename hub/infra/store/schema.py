"""The hub's tables: dossiers, messages, outbox, deliveries (the inbox) and the audit trail.

The migrations in migrations/versions/ create exactly these; a test compares the two.
"""
from __future__ import annotations

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text,
    UniqueConstraint, func, select,
)

metadata = MetaData()

# JSON on both stores; None is SQL NULL on both (a NULL application means "the opening message's")
Json = JSON(none_as_null=True)

dossiers = Table(
    "dossiers", metadata,
    Column("id", String(36), primary_key=True),
    Column("application_kind", String(32), nullable=False),
    Column("category", String(40), nullable=False),
    Column("competent_region", String(40), nullable=False),
    Column("state", String(32), nullable=False),
    Column("residence_outcome", String(16)),
    Column("work_outcome", String(16)),
    # the stored application, documents included: NULL while it is the payload of the message that
    # opened the dossier (application_message_id), written once it changes; read it as `application`
    Column("application", Json),
    Column("application_message_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # the data subject, to find a person's dossiers (Art. 28-29 rights); deleted with the dossier
    Column("subject_insz", String(11), index=True),
    Column("subject_passport", String(32), index=True),
    # the dates the state machine records (hub/dossier.py): clocks, retention and statistics read them
    Column("complete_at", DateTime(timezone=True)),          # admissible: the decision clock starts
    Column("incomplete_since", DateTime(timezone=True)),     # additional documents requested, not yet in
    Column("residence_decision_kind", String(32)),           # Art. 18, e.g. residence_authorisation
    Column("work_decision_kind", String(32)),
    Column("decided_at", DateTime(timezone=True)),           # both parts known (or a final refusal)
    Column("notified_at", DateTime(timezone=True)),          # the single act notified
    Column("appeal_lodged_at", DateTime(timezone=True)),
    Column("appeal_ended_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("retain_until", DateTime(timezone=True), index=True),   # Art. 27; NULL: kept (pending or on hold)
    Column("fact_id", String(36)),                           # its anonymous statistics row (stats_facts)
)

messages = Table(
    "messages", metadata,
    Column("id", String(64), primary_key=True),
    Column("flow_id", String(80), nullable=False),
    Column("sender", String(64), nullable=False),
    Column("recipients", Json, nullable=False),
    Column("purpose", Integer, nullable=False),
    Column("dossier_id", String(36), index=True),
    Column("correlation_id", String(64), nullable=False),
    Column("acting_person", String(128)),
    Column("payload_hash", String(64), nullable=False),
    Column("payload", Json, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
Index("ix_messages_received", messages.c.received_at)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("relayed_at", DateTime(timezone=True)),
)
Index("ix_outbox_pending", outbox.c.id, sqlite_where=outbox.c.relayed_at.is_(None),
      postgresql_where=outbox.c.relayed_at.is_(None))
Index("ix_outbox_message", outbox.c.message_id)   # retention deletes a dossier's messages' rows

deliveries = Table(
    "deliveries", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("flow_id", String(80), nullable=False),
    Column("sender", String(64), nullable=False),
    Column("dossier_id", String(36)),
    Column("correlation_id", String(64), nullable=False),
    Column("purpose", Integer, nullable=False),
    Column("data_categories", Json, nullable=False),
    Column("payload", Json, nullable=False),        # the need-to-know projection for this recipient
    Column("attachments", Json),                    # e.g. the stored application, projected likewise
    Column("delivered_at", DateTime(timezone=True), nullable=False),
    Column("acked_at", DateTime(timezone=True)),
    UniqueConstraint("message_id", "recipient", name="uq_delivery_message_recipient"),
)
Index("ix_deliveries_inbox", deliveries.c.recipient, deliveries.c.acked_at, deliveries.c.id)
Index("ix_deliveries_dossier", deliveries.c.dossier_id, deliveries.c.recipient)

audit_events = Table(
    "audit_events", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("event", String(24), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("flow_id", String(80)),
    Column("message_id", String(64)),
    Column("correlation_id", String(64)),
    Column("dossier_id", String(36)),
    Column("actor", String(64)),
    Column("acting_person", String(128)),
    Column("recipient", String(64)),
    Column("purpose", Integer),
    Column("legal_basis", Json),
    Column("data_categories", Json),
    Column("reason", Text),
    Column("payload_hash", String(64)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # how many occurrences the event stands for (aggregated refusals, hub/audit/refusals.py);
    # NULL: one. Hashed only when not NULL (hub/audit/chain.py), so older events keep their hash.
    Column("count", BigInteger),
)
Index("ix_audit_dossier", audit_events.c.dossier_id)
Index("ix_audit_message", audit_events.c.message_id)

# The chain head: one row, locked by every append so the chain stays a line under concurrency.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Signed checkpoints of the chain (hub/audit/checkpoints.py): Ed25519 over seq, head, count,
# the interval's digest and the time. Append-only like audit_events (PostgreSQL: trigger + grants).
audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("from_seq", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", String(128), nullable=False),
)

# Art. 14 content enricher: one job per forwarded message whose flow asks for enrichment. A job
# stays pending (the dossier waits, "enrichment pending") until every applicable source answered.
enrichment_jobs = Table(
    "enrichment_jobs", metadata,
    Column("message_id", String(64), primary_key=True),
    Column("dossier_id", String(36)),
    Column("sources", Json, nullable=False),        # the sources that apply to this dossier
    Column("state", String(16), nullable=False),    # pending | done
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),                     # source names and error kinds only
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    # the worker process whose lease (until next_attempt_at) it is; renewed while its calls run
    Column("claimed_by", String(120)),
)
Index("ix_enrichment_jobs_due", enrichment_jobs.c.state, enrichment_jobs.c.next_attempt_at)

enrichments = Table(
    "enrichments", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False),
    Column("dossier_id", String(36)),
    Column("source", String(64), nullable=False),
    Column("contract", String(64), nullable=False),
    Column("contract_version", String(32), nullable=False),
    Column("status", String(16), nullable=False),   # found | no_data | refused
    Column("retrieved_at", DateTime(timezone=True), nullable=False),
    Column("elapsed_ms", Integer, nullable=False),
    Column("data", Json, nullable=False),           # canonical record, data category social_security
    UniqueConstraint("message_id", "source", name="uq_enrichment_message_source"),
)
Index("ix_enrichments_dossier", enrichments.c.dossier_id)

# Statutory clocks (contracts/clocks.yaml, hub/lifecycle/clocks/): one row per clock started on a dossier.
dossier_clocks = Table(
    "dossier_clocks", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("dossier_id", String(36), nullable=False, index=True),
    Column("rule", String(64), nullable=False),         # the rule of contracts/clocks.yaml
    Column("holder", String(64), nullable=False),       # the party that holds the clock
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("remind_at", DateTime(timezone=True)),
    Column("reminded_at", DateTime(timezone=True)),
    Column("stopped_at", DateTime(timezone=True)),
    Column("outcome", String(24), nullable=False),      # running | met | expired | deemed_authorised | ...
    UniqueConstraint("dossier_id", "rule", "started_at", name="uq_clock_dossier_rule_start"),
)
Index("ix_dossier_clocks_due", dossier_clocks.c.outcome, dossier_clocks.c.due_at)

# Data-subject rights (Art. 28-29): each request with its dated acknowledgment and due date.
rights_requests = Table(
    "rights_requests", metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),         # access | rectification | erasure | restriction | portability | objection
    Column("concerning", String(24), nullable=False),   # residence | work | single_permit | professional_card
    Column("controller", String(64), nullable=False),   # the competent controller the request went to
    Column("submitted_by", String(64), nullable=False), # the party that brought it (portal, a controller)
    Column("subject_insz", String(11)),
    Column("subject_passport", String(32)),
    Column("details", Json),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),        # open | answered
    Column("answered_at", DateTime(timezone=True)),
    Column("answer", Json),
    Column("extended_at", DateTime(timezone=True)),     # GDPR art. 12(3): two more months, once
    Column("extension_reason", Text),
)
Index("ix_rights_requests_controller", rights_requests.c.controller, rights_requests.c.state, rights_requests.c.due_at)

# Anonymous statistics (Art. 31-32): one row per dossier, no dossier id, no person; it survives the
# dossier's deletion. Only coarse values: year and quarter, days from complete to decision.
stats_facts = Table(
    "stats_facts", metadata,
    Column("id", String(36), primary_key=True),          # random; only dossiers.fact_id points here
    Column("permit_type", String(40), nullable=False),   # the application's category (Art. 4)
    Column("application_kind", String(32), nullable=False),
    Column("request_type", String(16), nullable=False),  # first | renewal | change
    Column("region", String(40), nullable=False),
    Column("nationality", String(3)),
    Column("submitted_year", Integer, nullable=False),
    Column("submitted_quarter", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("residence_outcome", String(16)),
    Column("work_outcome", String(16)),
    Column("decision_kind", String(32)),
    Column("decided_year", Integer),
    Column("decided_quarter", Integer),
    Column("days_to_decision", Integer),
    Column("validity_months", Integer),
    Column("deemed_authorised", Boolean, nullable=False),
    # a later withdrawal or end of the granted permit (Art. 18): the decision above stays as it was
    Column("ended_kind", String(32)),                    # e.g. residence_withdrawal, work_withdrawal, residence_end
    Column("ended_year", Integer),
    Column("ended_quarter", Integer),
)
Index("ix_stats_facts_period", stats_facts.c.submitted_year, stats_facts.c.submitted_quarter)

# private_key_jwt client assertions already used (hub/infra/auth.py StoredReplayCache): one row per client
# and jti (hashed) until the assertion expires, shared by every API process.
assertion_ids = Table(
    "assertion_ids", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti_sha256", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),   # seconds since the epoch
)

# One row per running hub process with workers (hub/runtime.py): its threads and when it last beat.
# Operational, no personal data; a process that stops removes its row, one that died goes stale.
worker_heartbeats = Table(
    "worker_heartbeats", metadata,
    Column("process_id", String(120), primary_key=True),   # host:pid:random
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", String(16), nullable=False),            # worker | serve
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("beat_at", DateTime(timezone=True), nullable=False),
    Column("threads", Json, nullable=False),               # name → alive, vital, restarts, beat_age_s
)


# A dossier's stored application, wherever it is: its own copy once it changed, else the payload of
# the message that opened it (stored once). Select it as a column: select(dossiers.c.id, stored_application).
stored_application = func.coalesce(
    dossiers.c.application,
    select(messages.c.payload).where(messages.c.id == dossiers.c.application_message_id).scalar_subquery(),
    type_=Json).label("application")
