"""Workers that heal themselves (hub/runtime.py): the heartbeat of every hub process with workers,
and the holder of an enrichment job's lease, so that a living holder renews it and a dead one's
jobs are taken over within seconds.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("enrichment_jobs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(120)))
    op.create_table(
        "worker_heartbeats",
        sa.Column("process_id", sa.String(120), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("started_at", Stamp, nullable=False),
        sa.Column("beat_at", Stamp, nullable=False),
        sa.Column("threads", Json, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    with op.batch_alter_table("enrichment_jobs") as batch:
        batch.drop_column("claimed_by")
