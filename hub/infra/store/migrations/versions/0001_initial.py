"""Initial schema: dossiers, messages, outbox, deliveries, audit trail.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
Json = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dossiers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("application_kind", sa.String(32), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("competent_region", sa.String(40), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("residence_outcome", sa.String(16)),
        sa.Column("work_outcome", sa.String(16)),
        sa.Column("application", Json, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("flow_id", sa.String(80), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("recipients", Json, nullable=False),
        sa.Column("purpose", sa.Integer, nullable=False),
        sa.Column("dossier_id", sa.String(36)),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("acting_person", sa.String(128)),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("received_at", Stamp, nullable=False),
    )
    op.create_index("ix_messages_dossier_id", "messages", ["dossier_id"])
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("relayed_at", Stamp),
    )
    op.create_index("ix_outbox_pending", "outbox", ["id"],
                    sqlite_where=sa.text("relayed_at IS NULL"), postgresql_where=sa.text("relayed_at IS NULL"))
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("flow_id", sa.String(80), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("dossier_id", sa.String(36)),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.Integer, nullable=False),
        sa.Column("data_categories", Json, nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("attachments", Json),
        sa.Column("delivered_at", Stamp, nullable=False),
        sa.Column("acked_at", Stamp),
        sa.UniqueConstraint("message_id", "recipient", name="uq_delivery_message_recipient"),
    )
    op.create_index("ix_deliveries_inbox", "deliveries", ["recipient", "acked_at", "id"])
    op.create_index("ix_deliveries_dossier", "deliveries", ["dossier_id", "recipient"])
    op.create_table(
        "audit_events",
        sa.Column("seq", BigId, primary_key=True, autoincrement=False),
        sa.Column("ts", Stamp, nullable=False),
        sa.Column("event", sa.String(24), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("flow_id", sa.String(80)),
        sa.Column("message_id", sa.String(64)),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("dossier_id", sa.String(36)),
        sa.Column("actor", sa.String(64)),
        sa.Column("acting_person", sa.String(128)),
        sa.Column("recipient", sa.String(64)),
        sa.Column("purpose", sa.Integer),
        sa.Column("legal_basis", Json),
        sa.Column("data_categories", Json),
        sa.Column("reason", sa.Text),
        sa.Column("payload_hash", sa.String(64)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_dossier", "audit_events", ["dossier_id"])
    op.create_index("ix_audit_message", "audit_events", ["message_id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    # the genesis of the chain: sequence 0, hash of nothing
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    for table in ("audit_head", "audit_events", "deliveries", "outbox", "messages", "dossiers"):
        op.drop_table(table)
