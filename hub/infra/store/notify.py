"""Across processes on PostgreSQL: ingress says "the outbox has news", the relay listens.

In one process (`wib-hub serve`) an in-process event wakes the relay; when the API and the workers
run apart (`wib-hub api` + `wib-hub worker`) this NOTIFY does the same, so the relay need not
poll. Channels are database-wide; a wake-up that finds nothing costs one empty read.
"""
from __future__ import annotations

import psycopg
from sqlalchemy import Connection, Engine

CHANNEL = "wib_hub_outbox"


def announce(conn: Connection) -> None:
    """Inside the storing transaction: delivered at commit, once per transaction (PostgreSQL folds
    identical notifications)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


class OutboxListener:
    """A dedicated connection that LISTENs on the channel."""

    def __init__(self, engine: Engine):
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """True when a notification came within `timeout` seconds."""
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            return True
        return False

    def close(self) -> None:
        self._conn.close()


def listener_for(engine: Engine) -> OutboxListener | None:
    return OutboxListener(engine) if engine.dialect.name == "postgresql" else None
