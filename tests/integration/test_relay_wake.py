"""API and workers apart on PostgreSQL: the relay hears about new messages without polling for them."""
from __future__ import annotations

import time
import uuid

from sqlalchemy import func, select

from hub.bootstrap import build_hub
from hub.domain import samples
from hub.infra.store.schema import deliveries
from hub.messaging.ingress import Submission, submit
from tests.support import hub_settings, shut_down


def test_worker_process_is_woken_by_the_api_process(tmp_path, pg_schema_url, amqp_url):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    # the worker would otherwise look at the outbox only every 60 s
    worker = build_hub(hub_settings(tmp_path / "w", pg_schema_url, amqp_url, queue_prefix=prefix,
                                    relay_poll_seconds=60))
    api = build_hub(hub_settings(tmp_path / "a", pg_schema_url, amqp_url, queue_prefix=prefix))
    worker.start_workers()
    try:
        time.sleep(0.5)   # the relay has read the empty outbox and is waiting
        submit(api.ingress, Submission("single-permit.application-submitted", "portal",
                                       samples.synthetic_application(8)))
        deadline = time.monotonic() + 20
        delivered = 0
        while time.monotonic() < deadline and not delivered:
            with worker.engine.connect() as conn:
                delivered = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
            time.sleep(0.05)
        assert delivered == 1, "the relay in the other process was not woken"
    finally:
        api.close()
        shut_down(worker)
