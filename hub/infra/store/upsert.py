"""INSERT … ON CONFLICT DO NOTHING on both stores, telling which rows were new."""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                  key: Sequence[str]) -> set[tuple[Any, ...]]:
    """Insert rows, skipping those whose `key` exists; return the keys actually inserted."""
    if not rows:
        return set()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(list(rows)).on_conflict_do_nothing(index_elements=list(key)) \
        .returning(*[table.c[k] for k in key])
    return {tuple(r) for r in conn.execute(stmt)}
