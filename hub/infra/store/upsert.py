"""INSERT … ON CONFLICT DO NOTHING on both stores, telling which rows were new."""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Connection, Table

from hub.infra.store.rows import insert_new


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                  key: Sequence[str]) -> set[tuple[Any, ...]]:
    """Insert rows, skipping those whose `key` exists; return the keys actually inserted (at driver
    level on PostgreSQL, one prepared statement pipelined over the rows: hub.infra.store.rows)."""
    return insert_new(conn, table, rows, key)
