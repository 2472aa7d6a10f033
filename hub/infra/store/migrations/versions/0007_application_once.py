"""The application stored once: a new dossier points at the message that opened it
(`application_message_id`) instead of keeping a second copy of its payload; `application` is
written only when the stored application changes (additional documents join it, Art. 20 §4).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(sa.JSON(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as batch:
        batch.add_column(sa.Column("application_message_id", sa.String(64)))
        batch.alter_column("application", existing_type=Json, nullable=True)


def downgrade() -> None:
    # a dossier that points at its message gets its copy back first
    op.execute("UPDATE dossiers SET application = (SELECT payload FROM messages "
               "WHERE messages.id = dossiers.application_message_id) WHERE application IS NULL")
    with op.batch_alter_table("dossiers") as batch:
        batch.alter_column("application", existing_type=Json, nullable=False)
        batch.drop_column("application_message_id")
