"""Alembic environment: always run programmatically by hub.infra.store.db.migrate, on the hub's own connection."""
from alembic import context

from hub.infra.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
