"""Rows written in bulk at driver level on PostgreSQL: the message path's hot inserts.

SQLAlchemy Core builds, compiles and binds a statement in Python for every execution, which was most
of a message's cost; here a batch's rows go to PostgreSQL as they are: `insert_rows` by COPY (one
stream per table and batch), `insert_new` by a prepared INSERT … ON CONFLICT DO NOTHING RETURNING
pipelined over the rows (psycopg's executemany). Both run inside the caller's transaction and
raise what Core would (an IntegrityError for a duplicate key), so callers cannot tell the
difference. On other stores (SQLite: the embedded default) they are Core's executemany.

Values are what the SQLAlchemy types take: JSON columns any JSON value (None is SQL NULL, as the
schema's Json type says on PostgreSQL), times aware datetimes. Tables with Python-side column
defaults are not for this path (the message path's have none: schema.py).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.exc import IntegrityError

__all__ = ["insert_new", "insert_rows"]


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert every row."""
    for columns, same in _by_columns(rows):
        _insert_rows(conn, table, columns, same)


def _insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> None:
    if conn.dialect.name != "postgresql":
        conn.execute(_core_insert(table), list(rows))
        return
    sql, json_at = _copy(table, columns)
    from psycopg import errors
    try:
        with conn.connection.driver_connection.cursor() as cur, cur.copy(sql) as copy:
            for values in _values(rows, columns, json_at):
                copy.write_row(values)
    except errors.IntegrityError as err:
        raise IntegrityError(sql, None, err) from err


def insert_new(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
               key: Sequence[str]) -> set[tuple[Any, ...]]:
    """Insert the rows whose `key` is not there yet; return the keys of those inserted."""
    new: set[tuple[Any, ...]] = set()
    for columns, same in _by_columns(rows):
        new |= _insert_new_rows(conn, table, columns, same, tuple(key))
    return new


def _insert_new_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]],
                     key: tuple[str, ...]) -> set[tuple[Any, ...]]:
    if conn.dialect.name != "postgresql":
        return {tuple(r) for r in conn.execute(_core_insert_new(table, key), list(rows))}
    sql, json_at = _insert_new(table, columns, key)
    new: set[tuple[Any, ...]] = set()
    with conn.connection.driver_connection.cursor() as cur:
        cur.executemany(sql, list(_values(rows, columns, json_at)), returning=True)
        while True:
            new.update(tuple(r) for r in cur.fetchall())
            if not cur.nextset():
                break
    return new


def _values(rows: Sequence[dict[str, Any]], columns: tuple[str, ...], json_at: tuple[int, ...]) -> Iterator[list[Any]]:
    """Each row's values in `columns` order, JSON columns wrapped for the driver (None stays NULL)."""
    from psycopg.types.json import Json
    for row in rows:
        values = [row[c] for c in columns]
        for i in json_at:
            if values[i] is not None:
                values[i] = Json(values[i])
        yield values


def _by_columns(rows: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """The rows grouped by the columns they set (one statement each), in the order first met."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.items())


@lru_cache(maxsize=None)
def _copy(table: Table, columns: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    return (f"COPY {table.name} ({', '.join(columns)}) FROM STDIN", _json_columns(table, columns))


@lru_cache(maxsize=None)
def _insert_new(table: Table, columns: tuple[str, ...], key: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
           f"ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {', '.join(key)}")
    return sql, _json_columns(table, columns)


def _json_columns(table: Table, columns: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON))


@lru_cache(maxsize=None)
def _core_insert(table: Table):
    return table.insert()


@lru_cache(maxsize=None)
def _core_insert_new(table: Table, key: tuple[str, ...]):
    from sqlalchemy.dialects import sqlite
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(key)) \
        .returning(*[table.c[k] for k in key])
