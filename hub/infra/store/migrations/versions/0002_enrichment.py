"""Enrichment (Art. 14): jobs waiting for their sources, and the records the sources gave.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")
Json = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enrichment_jobs",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("dossier_id", sa.String(36)),
        sa.Column("sources", Json, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", Stamp, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("completed_at", Stamp),
    )
    op.create_index("ix_enrichment_jobs_due", "enrichment_jobs", ["state", "next_attempt_at"])
    op.create_table(
        "enrichments",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("dossier_id", sa.String(36)),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("contract", sa.String(64), nullable=False),
        sa.Column("contract_version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retrieved_at", Stamp, nullable=False),
        sa.Column("elapsed_ms", sa.Integer, nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.UniqueConstraint("message_id", "source", name="uq_enrichment_message_source"),
    )
    op.create_index("ix_enrichments_dossier", "enrichments", ["dossier_id"])


def downgrade() -> None:
    op.drop_table("enrichments")
    op.drop_table("enrichment_jobs")
