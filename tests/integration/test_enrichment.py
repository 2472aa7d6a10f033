"""Art. 14 enrichment: resilience parts alone, then the content enricher in the message path —
including a source that goes down and comes back (the dossier waits, then completes by itself).

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub import audit
from hub.domain import samples
from hub.infra.store.schema import audit_events, enrichment_jobs, enrichments
from hub.interfaces.cli.demo import DemoClient
from tests.support import start_hub
from tests.support.enrichment import _dvz_item, _forward


def test_forwarded_dossier_reaches_dvz_with_its_records(running_hub):
    c = DemoClient(running_hub.http, running_hub.secrets)
    c.load_flows()
    dossier = c.apply(samples.synthetic_application(7))
    item = _dvz_item(c, _forward(c, dossier), timeout=20)
    assert item is not None
    records = {r["source"]: r for r in item["attachments"]["enrichment"]}
    # not posted and not self-employed: Limosa and INASTI are not asked
    assert set(records) == {"onss.dimona", "onss.dmfa"}
    for r in records.values():
        assert r["status"] in ("found", "no_data") and r["contract_version"] and r["retrieved_at"]
    assert "social_security" in item["data_categories"]
    hub = running_hub.hub
    with hub.engine.connect() as conn:
        enriched = conn.execute(select(audit_events).where(audit_events.c.event == "enriched",
                                                           audit_events.c.dossier_id == dossier)).all()
    assert len(enriched) == 2 and all(e.data_categories == ["social_security"] for e in enriched)
    assert audit.verify(hub.engine).intact


@pytest.mark.parametrize("combo", ["embedded", pytest.param("production", marks=[pytest.mark.postgres,
                                                                                  pytest.mark.rabbitmq])])
def test_source_down_delays_the_dossier_which_completes_when_it_is_back(combo, request, tmp_path):
    if combo == "embedded":
        store, broker = f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'broker.db'}"
    else:
        store, broker = request.getfixturevalue("pg_schema_url"), request.getfixturevalue("amqp_url")
    gen = start_hub(tmp_path / "data", store, broker, enrich_retry_max_seconds=0.5)
    client = next(gen)
    try:
        from adapters.sandbox import shared_sandbox
        hub = client.hub
        dmfa = shared_sandbox(hub.settings.resolved_sandbox_dir(), ["onss.dmfa"]).faults("onss.dmfa")
        c = DemoClient(client.http, client.secrets)
        c.load_flows()
        dossier = c.apply(samples.synthetic_application(9))
        dmfa.down = True
        try:
            message_id = _forward(c, dossier)
            assert _dvz_item(c, message_id, timeout=3) is None        # waiting, not lost
            with hub.engine.connect() as conn:
                job = conn.execute(select(enrichment_jobs).where(enrichment_jobs.c.message_id == message_id)).one()
                stored = {r.source for r in conn.execute(select(enrichments.c.source)
                                                         .where(enrichments.c.message_id == message_id))}
                pending = conn.execute(select(audit_events).where(audit_events.c.event == "enrichment_pending",
                                                                  audit_events.c.message_id == message_id)).all()
            assert job.state == "pending" and job.attempts >= 2 and "onss.dmfa" in job.last_error
            assert stored == {"onss.dimona"}                         # what came back is kept, not asked again
            assert len(pending) == 1 and "onss.dmfa" in pending[0].reason
            assert hub.sources["onss.dmfa"].breaker.state in ("open", "half-open")
        finally:
            dmfa.down = False
        item = _dvz_item(c, message_id, timeout=20)
        assert item is not None, "the dossier did not complete after the source came back"
        assert {r["source"] for r in item["attachments"]["enrichment"]} == {"onss.dimona", "onss.dmfa"}
        assert hub.sources["onss.dmfa"].breaker.state == "closed"
        with hub.engine.connect() as conn:
            assert conn.execute(select(enrichment_jobs.c.state)
                                .where(enrichment_jobs.c.message_id == message_id)).scalar_one() == "done"
        assert audit.verify(hub.engine).intact
    finally:
        gen.close()
