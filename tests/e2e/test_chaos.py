"""The hub survives its faults: the production shape as processes (sandbox, API, a worker) on a
PostgreSQL database and RabbitMQ nodes of its own, real flows over HTTP, one fault kind at a time
(worker, API, sources, broker node SIGKILL; database connections terminated; the cluster node the
workers use SIGKILLed). For each: nothing lost, nothing delivered twice, no 500, every stall ended by
itself, outbox drained, retry and parking queues empty; the audit trail intact at the end.

The long version, with its figures, is benchmarks/chaos.py (the same harness, tests/support/chaos.py).
Never skipped when the servers are there: it needs the PostgreSQL server of HUB_TEST_DATABASE_URL (it
creates a database of its own on it) and the RabbitMQ binaries (it starts nodes of its own, never
touching the shared node).
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.support.chaos import FAULTS, pg_server_from_test_url, run_chaos
from tests.support.rabbitnodes import RABBITMQ_BIN

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

APPLICATIONS = 40        # per fault kind; each is forwarded to DVZ too: 80 messages per kind


def _summary(report) -> str:
    rows = []
    for f in report.faults:
        rows.append(f"{f.fault:9} accepted {f.accepted:4} expected {f.expected:4} received {f.received:4} "
                    f"lost {f.lost:4} dup {f.duplicated:3} 5xx {f.http_5xx} outbox {f.outbox_pending} "
                    f"drain {f.drain_s} failover {f.failover_s} crashes {f.crashes} refused {f.refused_starts} "
                    f"queues {({q: v for q, v in f.queues.items() if v})} "
                    f"{'ok' if f.ok else 'FAIL'} {f.error or ''} {'; '.join(f.notes)[:600]}")
    rows.append(f"audit: {report.audit_intact} {report.audit}")
    rows.extend(report.misbehaviour[:25])
    return "\n".join(rows)


def test_the_hub_survives_each_fault():
    if not (RABBITMQ_BIN / "rabbitmq-server").exists() or shutil.which("ss") is None:
        if os.environ.get("HUB_TEST_ALLOW_SKIP") == "1":
            pytest.skip("RabbitMQ binaries (or ss) not installed")
        pytest.fail(f"no RabbitMQ binaries at {RABBITMQ_BIN} (or no `ss`); set HUB_TEST_ALLOW_SKIP=1 to skip",
                    pytrace=False)
    t0 = time.monotonic()
    # one worker: the enrichment jobs leased when it is killed are certainly its own
    report = run_chaos(FAULTS, applications=APPLICATIONS, workers=1, outage=1.5, drain_timeout=15.0,
                       # a pending enrichment is tried again within 5 s (the hub's default is 10)
                       extra_env={"HUB_ENRICH_RETRY_MAX_SECONDS": "5"},
                       pg_server=pg_server_from_test_url(os.environ.get("HUB_TEST_DATABASE_URL")),
                       progress=lambda s: print(f"{time.monotonic() - t0:6.1f}s {s}", flush=True))
    took = time.monotonic() - t0
    summary = _summary(report)
    print(f"chaos: {took:.0f} s\n{summary}")
    assert [f.fault for f in report.faults] == list(FAULTS), summary
    for f in report.faults:
        assert f.error is None, f"{f.fault}: {f.error}\n{summary}"
        assert f.accepted == 2 * APPLICATIONS, f"{f.fault}: not every message was accepted\n{summary}"
        assert f.lost == 0, f"{f.fault}: {f.lost} deliveries lost\n{summary}"
        assert f.failover_s is not None, f"{f.fault}: the hub waited for the killed node\n{summary}"
        assert f.duplicated == 0, f"{f.fault}: {f.duplicated} duplicates\n{summary}"
        assert f.http_500 == 0, f"{f.fault}: 5xx answers other than 503 with Retry-After: {f.http_5xx}\n{summary}"
        assert f.stall_ended, f"{f.fault}: the stall did not end by itself within 15 s\n{summary}"
        assert f.outbox_pending == 0, f"{f.fault}: {f.outbox_pending} outbox rows not relayed\n{summary}"
        assert not f.crashes and not f.refused_starts, f"{f.fault}: {f.crashes} {f.refused_starts}\n{summary}"
        left = {q: v for q, v in f.queues.items() if (".delay." in q or q.endswith(".parking")) and v}
        assert not left, f"{f.fault}: retry/parking queues not empty: {left}\n{summary}"
    assert report.audit_intact and all(report.audit_intact.values()), summary
    assert took < 240, f"the chaos test took {took:.0f} s"   # about 115 s alone on 2 cores
