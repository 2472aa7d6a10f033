"""The hub heals itself: the store or the broker going away and coming back, a stale pooled
connection, a worker that died holding an enrichment job — each survived without a person.

The servers are the real PostgreSQL and RabbitMQ, reached through a TCP proxy (tests/support/proxy.py)
that the test takes down and brings back: the shared servers themselves are never touched.
"""
from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import func, select

from hub import audit
from hub.bootstrap import build_hub
from hub.domain import samples
from hub.domain.envelope import utcnow
from hub.infra.store.schema import deliveries, enrichment_jobs, enrichments, outbox
from hub.interfaces.api.app import create_app
from hub.messaging.enrichment import Enrichment
from hub.messaging.ingress import Submission, submit
from tests.support import AMQP_URL, PG_URL, HubClient, hub_settings, shut_down, sqlite_store
from tests.support.enrichment import FORWARD
from tests.support.proxy import Proxy
from tests.support.served import pg_schema, serving, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

APPLIED = "single-permit.application-submitted"


def _through(url: str, proxy: Proxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{auth}@{proxy.address}" if auth else proxy.address))


def _target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (5432 if parts.scheme.startswith("postgres") else 5672)


def _delivered(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(deliveries)).scalar_one()


def _apply(hub, seed: int) -> str:
    return submit(hub.ingress, Submission(APPLIED, "portal", samples.synthetic_application(seed))).message_id


@pytest.fixture
def pg_proxy():
    with pg_schema() as url, Proxy(*_target(PG_URL)) as proxy:
        yield _through(url, proxy), url, proxy


def test_the_relay_outlives_a_store_outage(tmp_path, pg_proxy):
    """Reproduced 5 of 5 before: the outbox listener's error escaped the relay and relaying stopped."""
    store, direct, proxy = pg_proxy
    hub = build_hub(hub_settings(tmp_path / "data", store, f"memory://{uuid.uuid4().hex}", relay_poll_seconds=0.1))
    hub.start_workers()
    try:
        _apply(hub, 1)
        assert wait_until(lambda: _delivered(hub) == 1)
        proxy.down()          # every connection cut, the listener's too; nothing answers
        time.sleep(1.5)       # the relay fails a few turns meanwhile
        proxy.up()
        _apply(hub, 2)
        assert wait_until(lambda: _delivered(hub) == 2, timeout=10), "relaying did not resume"
        relay = hub.runtime.health()["relay"]
        assert relay["alive"] and relay["restarts"] == 0          # survived, not restarted
        assert hub.runtime.live() == (True, [])
        # and its listener came back: a message stored by another process wakes it without polling
        other = build_hub(hub_settings(tmp_path / "other", direct, f"memory://{uuid.uuid4().hex}",
                                       queue_prefix=hub.settings.queue_prefix))
        try:
            _apply(other, 3)
        finally:
            other.close()
        assert wait_until(lambda: _delivered(hub) == 3, timeout=10)
        assert audit.verify(hub.engine).intact
    finally:
        shut_down(hub)


@pytest.fixture
def served_through_proxy(tmp_path, pg_proxy):
    store, _, proxy = pg_proxy
    hub = build_hub(hub_settings(tmp_path / "data", store, f"memory://{uuid.uuid4().hex}"))
    hub.start_workers()
    try:
        with serving(create_app(hub), hub.settings) as url, \
                httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
            yield HubClient(hub, http), proxy
    finally:
        proxy.up()
        shut_down(hub)


def test_a_stale_pooled_connection_is_not_a_500(served_through_proxy):
    client, proxy = served_through_proxy
    for _ in range(5):       # connections into the pool
        assert client.get("region.flanders", "/v1/inbox").status_code == 200
    proxy.cut()              # the server dropped every connection (a restart, a failover)
    answers = [client.get("region.flanders", "/v1/inbox").status_code for _ in range(20)]
    assert answers == [200] * 20


def test_while_the_store_is_down_clients_get_503_then_the_same_message_is_accepted(served_through_proxy):
    client, proxy = served_through_proxy
    headers = client.as_("portal")          # the token before the outage: tokens need no store
    body = samples.synthetic_application(5)
    message_id = str(uuid.uuid4())
    proxy.down()
    r = client.http.post("/v1/applications", json=body, headers={**headers, "Idempotency-Key": message_id})
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["error"] == "store_unavailable" and int(r.headers["Retry-After"]) >= 1
    assert client.http.get("/readyz").status_code == 503
    assert client.http.get("/livez").status_code == 200        # the process is fine: do not restart it
    proxy.up()
    assert wait_until(lambda: client.http.get("/readyz").status_code == 200, timeout=10)
    r = client.http.post("/v1/applications", json=body, headers={**headers, "Idempotency-Key": message_id})
    assert r.status_code == 202, r.text
    with client.hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 1   # nothing half-stored


def test_the_hub_starts_while_the_broker_is_down_and_relays_once_it_is_up(tmp_path):
    """The API accepts into the outbox; the workers declare the queues and relay when the broker answers."""
    proxy = Proxy(*_target(AMQP_URL))             # a port, nothing listening yet
    store = sqlite_store(tmp_path / "hub.db")
    hub = build_hub(hub_settings(tmp_path / "data", store, _through(AMQP_URL, proxy)))
    try:
        assert hub.ready() == {"store": True, "broker": False}
        hub.start_workers()
        accepted = [_apply(hub, seed) for seed in range(3)]
        time.sleep(1.0)
        assert _delivered(hub) == 0
        proxy.up()
        assert wait_until(lambda: _delivered(hub) == 3, timeout=15), "not relayed once the broker was up"
        proxy.down()                               # lost while running: the same again
        accepted += [_apply(hub, seed) for seed in range(3, 6)]
        time.sleep(0.5)
        proxy.up()
        assert wait_until(lambda: _delivered(hub) == 6, timeout=15)
        time.sleep(0.5)
        assert _delivered(hub) == 6                # nothing twice
        with hub.engine.connect() as conn:
            assert set(conn.execute(select(deliveries.c.message_id)).scalars()) == set(accepted)
        assert all(t["restarts"] == 0 for t in hub.runtime.health().values())
    finally:
        proxy.up()
        shut_down(hub)
        proxy.down()


def test_a_cluster_url_moves_to_the_next_node_when_the_one_in_use_dies(tmp_path):
    """HUB_BROKER_URL with one address per node: the connections move to a node that answers. (Two
    proxies in front of one broker stand for two nodes; benchmarks/chaos.py kills real cluster nodes.)"""
    nodes = [Proxy(*_target(AMQP_URL)), Proxy(*_target(AMQP_URL))]
    for node in nodes:
        node.up()
    url = ",".join(_through(AMQP_URL, node) for node in nodes)
    hub = build_hub(hub_settings(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), url))
    hub.start_workers()
    try:
        accepted = [_apply(hub, seed) for seed in range(3)]
        assert wait_until(lambda: _delivered(hub) == 3, timeout=15)
        for dead, alive in ((0, 1), (1, 0)):
            nodes[dead].down()
            nodes[alive].up()
            accepted += [_apply(hub, seed) for seed in range(len(accepted), len(accepted) + 3)]
            assert wait_until(lambda: _delivered(hub) == len(accepted), timeout=15), f"node {dead} down"
        time.sleep(0.5)
        with hub.engine.connect() as conn:
            assert sorted(conn.execute(select(deliveries.c.message_id)).scalars()) == sorted(accepted)
    finally:
        for node in nodes:
            node.up()
        shut_down(hub)
        for node in nodes:
            node.down()


class _Slow:
    """A source that answers after `delay_s`, counting its calls."""

    def __init__(self, source, delay_s: float):
        self.source, self.delay_s, self.calls = source, delay_s, 0
        self.contract = source.contract

    def applies(self, subject) -> bool:
        return self.source.applies(subject)

    def fetch(self, subject):
        self.calls += 1
        time.sleep(self.delay_s)
        return self.source.fetch(subject)


def _pending_job(tmp_path):
    """A hub whose own enricher does nothing, and a forwarded dossier's job waiting for its sources."""
    hub = build_hub(hub_settings(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{uuid.uuid4().hex}"))
    hub.enrichment.run_once = lambda: 0          # this test's enrichers do the work
    hub.start_workers()
    from hub.interfaces.cli.demo import DemoClient
    from fastapi.testclient import TestClient
    http = TestClient(create_app(hub))
    c = DemoClient(http, HubClient(hub, http).secrets)
    c.load_flows()
    dossier = c.apply(samples.synthetic_application(11))
    r = http.post("/v1/messages", headers=c.headers("region.flanders"),
                  json={"flow": FORWARD, "dossier_id": dossier, "payload": samples.sample_admissibility_decision(dossier)})
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]

    def job():
        with hub.engine.connect() as conn:
            return conn.execute(select(enrichment_jobs).where(enrichment_jobs.c.message_id == message_id)).first()
    assert wait_until(lambda: job() is not None)
    return hub, message_id, job


def _outbox_rows(hub, message_id: str) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(outbox).where(outbox.c.message_id == message_id)).scalar_one()


def test_a_dead_holders_enrichment_job_is_taken_over_within_its_lease(tmp_path):
    """2 of 13 worker kills left a dossier waiting out a 120 s lease before."""
    hub, message_id, job = _pending_job(tmp_path)
    try:
        before = _outbox_rows(hub, message_id)
        dead = Enrichment(hub.registry, hub.work, hub.sources, lease_s=1.0, holder="dead")
        claimed = dead._claim(utcnow())               # claims, then dies before calling anything
        assert [j["message_id"] for j in claimed] == [message_id]
        taker = Enrichment(hub.registry, hub.work, hub.sources, lease_s=1.0, holder="taker")
        assert taker.run_once() == 0                  # the lease holds
        started = time.monotonic()
        assert wait_until(lambda: taker.run_once() == 1, timeout=5, every=0.1)
        assert time.monotonic() - started < 2.5        # seconds, not minutes
        assert job().state == "done" and _outbox_rows(hub, message_id) == before + 1
        # the dead holder, back from the dead, stores nothing: the work was done once
        late = dead._store(claimed[0], *_plan(hub, message_id))
        assert late == 0 and _outbox_rows(hub, message_id) == before + 1
        dead.close()
        taker.close()
    finally:
        shut_down(hub)


def _plan(hub, message_id: str):
    from hub.infra.store.schema import messages
    with hub.engine.connect() as conn:
        msg = conn.execute(select(messages).where(messages.c.id == message_id)).mappings().one()
    flow = hub.registry.flow(msg["flow_id"])
    return msg, flow, ["onss.dimona"], {"onss.dimona": hub.sources["onss.dimona"].fetch(_subject(hub, msg, flow))}


def _subject(hub, msg, flow):
    from hub.infra.store.schema import dossiers, stored_application
    from hub.messaging.enrichment import subject_of
    with hub.engine.connect() as conn:
        app = conn.execute(select(stored_application).where(dossiers.c.id == msg["dossier_id"])).scalar_one()
    return subject_of(app, flow, msg["correlation_id"], utcnow())


def test_a_living_holder_renews_its_lease_while_its_sources_are_slow(tmp_path):
    hub, message_id, job = _pending_job(tmp_path)
    try:
        before = _outbox_rows(hub, message_id)
        slow = {name: _Slow(source, 3.0) for name, source in hub.sources.items()}
        holder = Enrichment(hub.registry, hub.work, slow, lease_s=1.2, holder="slow")
        other = Enrichment(hub.registry, hub.work, slow, lease_s=1.2, holder="other")
        done = []
        t = threading.Thread(target=lambda: done.append(holder.run_once()))
        t.start()
        assert wait_until(lambda: job().claimed_by == "slow", timeout=5)
        took = 0
        while t.is_alive():                       # the other enricher keeps trying all the while
            took += other.run_once()
            time.sleep(0.05)
        t.join()
        assert done == [1] and took == 0          # the holder kept it, past two lease lengths
        assert job().state == "done" and _outbox_rows(hub, message_id) == before + 1
        with hub.engine.connect() as conn:
            sources = conn.execute(select(enrichments.c.source).where(enrichments.c.message_id == message_id)).scalars().all()
        assert sorted(sources) == sorted(set(sources))   # each source stored once
        holder.close()
        other.close()
    finally:
        shut_down(hub)


def test_the_lease_is_the_setting(tmp_path):
    hub = build_hub(hub_settings(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{uuid.uuid4().hex}",
                                 enrich_lease_seconds=4.0))
    try:
        assert hub.enrichment.lease_s == 4.0 and hub.enrichment.holder == hub.runtime.process_id
        now = utcnow()
        assert hub.enrichment._claim(now) == []
        assert timedelta(seconds=hub.enrichment.lease_s) < timedelta(seconds=120)
    finally:
        hub.close()
