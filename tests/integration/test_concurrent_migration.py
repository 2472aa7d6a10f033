"""Processes starting together on a new PostgreSQL store (`api --processes N`, workers beside it)
migrate it one after the other: every one starts, the schema is at the head once."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from hub.infra.store import open_engine
from hub.infra.store.db import head_revision, migrate


@pytest.mark.postgres
def test_processes_migrating_a_new_store_together_all_succeed(pg_schema_url):
    engines = [open_engine(pg_schema_url) for _ in range(4)]
    start, errors = threading.Barrier(len(engines)), []

    def run(engine):
        start.wait()
        try:
            migrate(engine)
        except Exception as err:   # noqa: BLE001 - collected, asserted below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    finally:
        for e in engines:
            e.dispose()
