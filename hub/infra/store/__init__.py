"""The store: SQLAlchemy 2 over SQLite (default) or PostgreSQL, with versioned migrations."""
from hub.infra.store.db import current_revision, migrate, open_engine, reader

__all__ = ["open_engine", "migrate", "current_revision", "reader"]
