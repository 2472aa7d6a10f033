"""Audit events that stand for several occurrences: a nullable `count` on audit_events.

GDPR Art. 5(1)(f), Art. 32: refused requests are recorded without letting anyone flood the trail
(hub/audit/refusals.py): the first refusal of a kind is written at once, its repeats in the same
window as one event carrying their number. NULL means one occurrence, as every event before this
revision. The hash chain covers the count only when it is not NULL (hub/audit/chain.py), so the
events already stored keep their hashes and the chain still verifies. Adding a nullable column
rewrites no row: the append-only trigger of 0003 (UPDATE, DELETE, TRUNCATE) is not involved.
Downgrading drops the column, and with it the counts: events that carried one then no longer
match their hashes, and `wib-hub audit verify` says so. Don't, on a trail that holds any.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("count", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("count")
