"""The dossier's life (Art. 18, 27-29, 31-32): the state machine's dates, statutory clocks,
retention, data-subject rights requests and the anonymous statistics that survive deletion; and
the client assertions already used, shared by every API process.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
Json = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")
Stamp = sa.DateTime(timezone=True)

DOSSIER_COLUMNS = (
    ("subject_insz", sa.String(11)), ("subject_passport", sa.String(32)),
    ("complete_at", Stamp), ("incomplete_since", Stamp),
    ("residence_decision_kind", sa.String(32)), ("work_decision_kind", sa.String(32)),
    ("decided_at", Stamp), ("notified_at", Stamp),
    ("appeal_lodged_at", Stamp), ("appeal_ended_at", Stamp), ("closed_at", Stamp),
    ("retain_until", Stamp), ("fact_id", sa.String(36)),
)


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as batch:
        for name, type_ in DOSSIER_COLUMNS:
            batch.add_column(sa.Column(name, type_))
    op.create_index("ix_dossiers_subject_insz", "dossiers", ["subject_insz"])
    op.create_index("ix_dossiers_subject_passport", "dossiers", ["subject_passport"])
    op.create_index("ix_dossiers_retain_until", "dossiers", ["retain_until"])
    op.create_index("ix_messages_received", "messages", ["received_at"])
    op.create_index("ix_outbox_message", "outbox", ["message_id"])      # retention deletes by message
    op.create_table(
        "dossier_clocks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("dossier_id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("started_at", Stamp, nullable=False),
        sa.Column("due_at", Stamp, nullable=False),
        sa.Column("remind_at", Stamp),
        sa.Column("reminded_at", Stamp),
        sa.Column("stopped_at", Stamp),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.UniqueConstraint("dossier_id", "rule", "started_at", name="uq_clock_dossier_rule_start"),
    )
    op.create_index("ix_dossier_clocks_due", "dossier_clocks", ["outcome", "due_at"])
    op.create_index("ix_dossier_clocks_dossier_id", "dossier_clocks", ["dossier_id"])
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("concerning", sa.String(24), nullable=False),
        sa.Column("controller", sa.String(64), nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("subject_insz", sa.String(11)),
        sa.Column("subject_passport", sa.String(32)),
        sa.Column("details", Json),
        sa.Column("received_at", Stamp, nullable=False),
        sa.Column("acknowledged_at", Stamp, nullable=False),
        sa.Column("due_at", Stamp, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("answered_at", Stamp),
        sa.Column("answer", Json),
        sa.Column("extended_at", Stamp),
        sa.Column("extension_reason", sa.Text),
    )
    op.create_index("ix_rights_requests_controller", "rights_requests", ["controller", "state", "due_at"])
    op.create_table(
        "stats_facts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("permit_type", sa.String(40), nullable=False),
        sa.Column("application_kind", sa.String(32), nullable=False),
        sa.Column("request_type", sa.String(16), nullable=False),
        sa.Column("region", sa.String(40), nullable=False),
        sa.Column("nationality", sa.String(3)),
        sa.Column("submitted_year", sa.Integer, nullable=False),
        sa.Column("submitted_quarter", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("residence_outcome", sa.String(16)),
        sa.Column("work_outcome", sa.String(16)),
        sa.Column("decision_kind", sa.String(32)),
        sa.Column("decided_year", sa.Integer),
        sa.Column("decided_quarter", sa.Integer),
        sa.Column("days_to_decision", sa.Integer),
        sa.Column("validity_months", sa.Integer),
        sa.Column("deemed_authorised", sa.Boolean, nullable=False),
        sa.Column("ended_kind", sa.String(32)),
        sa.Column("ended_year", sa.Integer),
        sa.Column("ended_quarter", sa.Integer),
    )
    op.create_index("ix_stats_facts_period", "stats_facts", ["submitted_year", "submitted_quarter"])
    # client assertions used (hub/infra/auth.py): replay refused across API processes
    op.create_table(
        "assertion_ids",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("jti_sha256", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_assertion_ids_expires_at", "assertion_ids", ["expires_at"])


def downgrade() -> None:
    op.drop_table("assertion_ids")
    op.drop_table("stats_facts")
    op.drop_table("rights_requests")
    op.drop_table("dossier_clocks")
    op.drop_index("ix_messages_received", "messages")
    op.drop_index("ix_outbox_message", "outbox")
    for name in ("ix_dossiers_retain_until", "ix_dossiers_subject_passport", "ix_dossiers_subject_insz"):
        op.drop_index(name, "dossiers")
    with op.batch_alter_table("dossiers") as batch:
        for name, _ in reversed(DOSSIER_COLUMNS):
            batch.drop_column(name)
