"""The heartbeats of the hub's worker processes (`worker_heartbeats`): each process with workers
writes its row every HUB_HEARTBEAT_SECONDS (hub/runtime.py); `/readyz` and `wib-hub doctor` read
them to say which workers are alive. Operational data only: host, pid, thread names and states.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update

from hub.domain.envelope import as_utc
from hub.infra.store.schema import worker_heartbeats
from hub.infra.store.upsert import insert_ignore

__all__ = ["alive", "beat", "forget", "window_s"]


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


def window_s(every_s: float) -> float:
    """How recent a heartbeat must be for its process to count as alive: three intervals."""
    return 3 * max(every_s, 1.0)


def alive(engine: Engine, now: datetime, every_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(alive, stale): the processes that beat within `window_s(every_s)`, and those that did not
    (died without removing their row; kept for a day). `beat_at` is aware UTC in both."""
    with engine.connect() as conn:
        rows = [{**r, "beat_at": as_utc(r["beat_at"])} for r in conn.execute(
            select(worker_heartbeats).order_by(worker_heartbeats.c.started_at)).mappings()]
    limit = now - timedelta(seconds=window_s(every_s))
    return [r for r in rows if r["beat_at"] >= limit], [r for r in rows if r["beat_at"] < limit]
