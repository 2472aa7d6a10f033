"""Stop the hub between "stored" and "delivered", start it again: the message is delivered exactly once."""
from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, select

from hub import audit
from hub.bootstrap import build_hub
from hub.domain import samples
from hub.infra.store.schema import deliveries, outbox
from hub.messaging.ingress import Submission, submit
from hub.messaging import relay
from tests.support import hub_settings, shut_down


def _deliveries(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(deliveries)).scalar_one()


def _wait_delivered(hub, n: int = 1, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _deliveries(hub) < n and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("stop_after", ["stored", "relayed", "published_not_marked"])
def test_restart_delivers_exactly_once(tmp_path, store_url, broker_url, stop_after):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = hub_settings(tmp_path / "data", store_url, broker_url, queue_prefix=prefix)
    first = build_hub(settings)
    accepted = submit(first.ingress, Submission("single-permit.application-submitted", "portal",
                                                samples.synthetic_application(4)))
    if stop_after == "relayed":
        assert first.relay().run_once() == 1
    elif stop_after == "published_not_marked":
        # the relay crashed after the broker confirmed but before the outbox row was marked
        with first.engine.connect() as conn:
            [row] = relay.waiting(conn, 10)
        first.transport.publish(first.route_queue, row.message_id, relay.carried(row))
    first.close()   # the hub stops: nothing was delivered yet
    assert _deliveries(first) == 0

    second = build_hub(settings)
    second.start_workers()
    try:
        _wait_delivered(second)
        time.sleep(0.5)  # room for a duplicate to show up, if the hub made one
        assert _deliveries(second) == 1
        with second.engine.connect() as conn:
            row = conn.execute(select(deliveries.c.recipient, deliveries.c.message_id)).one()
            pending = conn.execute(select(func.count()).select_from(outbox)
                                   .where(outbox.c.relayed_at.is_(None))).scalar_one()
        assert row.recipient == "region.flanders" and row.message_id == accepted.message_id
        assert pending == 0
        assert audit.verify(second.engine).intact
    finally:
        shut_down(second)
