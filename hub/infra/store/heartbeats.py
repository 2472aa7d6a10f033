"""The heartbeats of the hub's worker processes (`worker_heartbeats`): each process with workers
writes its row every HUB_HEARTBEAT_SECONDS (hub/runtime.py); `/readyz` and `wib-hub doctor` read
them to say which workers are alive. Operational data only: host, pid, thread names and states.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, delete, select, update

from hub.infra.store.schema import worker_heartbeats
from hub.infra.store.upsert import insert_ignore

__all__ = ["alive", "aware", "beat", "forget"]


def beat(engine: Engine, process_id: str, *, role: str, started_at: datetime, threads: dict[str, Any],
         now: datetime) -> None:
    with engine.begin() as conn:
        # the rows of processes that died without removing theirs go after a day
        conn.execute(delete(worker_heartbeats).where(worker_heartbeats.c.beat_at < now - timedelta(days=1)))
        changed = conn.execute(update(worker_heartbeats).where(worker_heartbeats.c.process_id == process_id)
                               .values(beat_at=now, threads=threads)).rowcount
        if not changed:
            insert_ignore(conn, worker_heartbeats, [dict(
                process_id=process_id, host=socket.gethostname()[:255], pid=os.getpid(), role=role,
                started_at=started_at, beat_at=now, threads=threads)], ("process_id",))


def forget(engine: Engine, process_id: str) -> None:
    """A process that stops cleanly removes its row."""
    with engine.begin() as conn:
        conn.execute(delete(worker_heartbeats).where(worker_heartbeats.c.process_id == process_id))


def alive(engine: Engine, now: datetime, within_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(alive, stale): the processes that beat within `within_s` seconds, and those that did not
    (died without removing their row; kept for a day)."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(worker_heartbeats).order_by(worker_heartbeats.c.started_at))
                .mappings()]
    limit = now - timedelta(seconds=within_s)
    fresh = [r for r in rows if aware(r["beat_at"]) >= limit]
    return fresh, [r for r in rows if aware(r["beat_at"]) < limit]


def aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
