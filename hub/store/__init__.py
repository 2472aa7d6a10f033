"""The store: SQLAlchemy 2 over SQLite (default) or PostgreSQL, with versioned migrations."""
from hub.store.db import open_engine, migrate, current_revision

__all__ = ["open_engine", "migrate", "current_revision"]
