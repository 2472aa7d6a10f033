"""INSERT … ON CONFLICT DO NOTHING on both stores, telling which rows were new."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                  key: Sequence[str]) -> set[tuple[Any, ...]]:
    """Insert rows, skipping those whose `key` exists; return the keys actually inserted. One
    statement built once per table and key, whatever the number of rows: the rows go as parameters
    (SQLAlchemy's insertmanyvalues batches them into multi-row INSERTs), not compiled into it."""
    if not rows:
        return set()
    stmt = _statement(conn.dialect.name == "postgresql", table, tuple(key))
    return {tuple(r) for r in conn.execute(stmt, list(rows))}


@lru_cache(maxsize=None)
def _statement(postgres: bool, table: Table, key: tuple[str, ...]):
    dialect = postgresql if postgres else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(key)) \
        .returning(*[table.c[k] for k in key])
