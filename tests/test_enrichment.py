"""Art. 14 enrichment: resilience parts alone, then the content enricher in the message path —
including a source that goes down and comes back (the dossier waits, then completes by itself)."""
from __future__ import annotations

import time
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from hub.messaging.resilience import CircuitBreaker, CircuitOpen, Resilient
from hub.ports import EnrichmentRecord, SourceRefused, SourceUnavailable, Subject
from hub.domain.retry import Backoff, RetryPolicy
from hub import audit
from hub.domain import samples
from hub.interfaces.cli.demo import DemoClient
from hub.infra.store.schema import audit_events, enrichment_jobs, enrichments

from conftest import start_hub

FORWARD = "single-permit.admissible-to-dvz"


# ---- resilience ---------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """An Enricher that fails `failures` times, then answers; or refuses."""
    name, contract, contract_version = "test.flaky", "flaky", "v1"

    def __init__(self, failures: int = 0, refuse: bool = False):
        self.failures, self.refuse, self.calls = failures, refuse, 0

    def applies(self, subject: Subject) -> bool:
        return True

    def fetch(self, subject: Subject) -> EnrichmentRecord:
        self.calls += 1
        if self.refuse:
            raise SourceRefused("400 bad request")
        if self.calls <= self.failures:
            raise SourceUnavailable("503")
        return EnrichmentRecord(self.name, self.contract, self.contract_version, "found",
                                datetime.now(timezone.utc), 1.0, {"ok": True})


SUBJECT = Subject(insz=samples.WORKER_INSZ, reference_date=date(2026, 11, 1))


def test_breaker_opens_after_threshold_then_half_opens_and_closes():
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    for _ in range(3):
        b.before_call()
        b.failure()
    assert b.state == "open"
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now = 10.5
    b.before_call()                       # the one trial call
    assert b.state == "half-open"
    with pytest.raises(CircuitOpen):      # others fail fast while the trial runs
        b.before_call()
    b.success()
    assert b.state == "closed" and b.failures == 0


def test_half_open_trial_that_fails_opens_again():
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    b.before_call()
    b.failure()
    clock.now = 6
    b.before_call()
    b.failure()
    assert b.state == "open" and b.opened_at == 6


def test_resilient_retries_with_bounded_jittered_sleeps():
    sleeps: list[float] = []
    source = Resilient(Flaky(failures=2), RetryPolicy(max_attempts=3, backoff=Backoff(base_s=0.1, cap_s=0.15)), sleep=sleeps.append)
    assert source.fetch(SUBJECT).status == "found"
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.15
    assert source.breaker.state == "closed"


def test_resilient_gives_up_and_refusals_are_not_retried():
    down = Resilient(Flaky(failures=99), RetryPolicy(max_attempts=3, backoff=Backoff(base_s=0.05, cap_s=1.0)), CircuitBreaker(failure_threshold=3),
                     sleep=lambda s: None)
    with pytest.raises(SourceUnavailable):
        down.fetch(SUBJECT)
    assert down.breaker.state == "open"
    with pytest.raises(CircuitOpen):
        down.fetch(SUBJECT)               # fails fast: no call reaches the source
    assert down.inner.calls == 3
    refusing = Resilient(Flaky(refuse=True), sleep=lambda s: None)
    with pytest.raises(SourceRefused):
        refusing.fetch(SUBJECT)
    assert refusing.inner.calls == 1 and refusing.breaker.state == "closed"


# ---- in the message path ------------------------------------------------------------------------

def _forward(c: DemoClient, dossier_id: str) -> str:
    r = c.http.post("/v1/messages", headers=c.headers("region.flanders"),
                    json={"flow": FORWARD, "dossier_id": dossier_id,
                          "payload": samples.sample_admissibility_decision(dossier_id)})
    assert r.status_code == 202, r.text
    return r.json()["message_id"]


def _dvz_item(c: DemoClient, message_id: str, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in c.http.get("/v1/inbox", headers=c.headers("dvz")).json()["items"]:
            if item["message_id"] == message_id:
                return item
        time.sleep(0.05)
    return None


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


def test_posted_worker_gets_limosa_too(embedded_hub):
    c = DemoClient(embedded_hub.http, embedded_hub.secrets)
    c.load_flows()
    application = samples.synthetic_application(8)
    application["employment"]["posted"] = True
    dossier = c.apply(application)
    item = _dvz_item(c, _forward(c, dossier), timeout=20)
    assert {r["source"] for r in item["attachments"]["enrichment"]} == {"onss.dimona", "onss.dmfa", "onss.limosa"}


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


def test_on_demand_enrichment_for_dvz_and_the_competent_region_only(embedded_hub):
    c = DemoClient(embedded_hub.http, embedded_hub.secrets)
    c.load_flows()
    dossier = c.apply(samples.synthetic_application(10))
    assert _dvz_item(c, _forward(c, dossier), timeout=20) is not None
    stored = c.http.get(f"/v1/dossiers/{dossier}/enrichment", headers=c.headers("dvz"))
    assert stored.status_code == 200 and {r["source"] for r in stored.json()["records"]} == {"onss.dimona", "onss.dmfa"}
    fresh = c.http.post(f"/v1/dossiers/{dossier}/enrichment", headers=c.headers("region.flanders"))
    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    assert body["unavailable"] == [] and {r["source"] for r in body["records"]} == {"onss.dimona", "onss.dmfa"}
    for party in ("region.wallonia", "diplomatic-post", "portal"):
        r = c.http.get(f"/v1/dossiers/{dossier}/enrichment", headers=c.headers(party))
        assert r.status_code == 403 and r.json()["error"] == "not_competent"
    assert c.http.get("/v1/dossiers/nope/enrichment", headers=c.headers("dvz")).status_code == 404
    with embedded_hub.hub.engine.connect() as conn:
        consulted = conn.execute(select(audit_events).where(audit_events.c.event == "consulted",
                                                            audit_events.c.dossier_id == dossier)).all()
    assert any(e.actor == "dvz" and e.data_categories == ["social_security"] for e in consulted)


def test_professional_card_reaches_the_region_with_inastis_register(tmp_path):
    """Art. 14 §2: for a professional card INASTI's register data go to the region (the procedure
    started, Art. 34/36)."""
    from datetime import date

    from hub.domain.samples import FLOW_SAMPLES
    gen = start_hub(tmp_path / "data", f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'broker.db'}",
                    professional_card_start=date(2026, 1, 1))
    client = next(gen)
    try:
        from adapters.population import Population
        _, card = FLOW_SAMPLES["professional-card.application-submitted"]
        payload = card("-")
        # a person the sandbox population has in the self-employed register
        insz = next(i for i, _ in Population().sample(400) if Population().person(i).self_employed)
        payload["worker"]["insz"] = insz
        c = DemoClient(client.http, client.secrets)
        r = c.http.post("/v1/applications", json=payload, headers=c.headers("portal"))
        assert r.status_code == 202, r.text
        message_id = r.json()["message_id"]
        deadline, item = time.monotonic() + 20, None
        while item is None and time.monotonic() < deadline:
            items = c.http.get("/v1/inbox", headers=c.headers("region.flanders")).json()["items"]
            item = next((i for i in items if i["message_id"] == message_id), None)
            time.sleep(0.05)
        assert item is not None
        (record,) = item["attachments"]["enrichment"]
        assert record["source"] == "inasti.self-employed" and record["status"] == "found"
        assert record["data"]["career_periods"] and "social_security" in item["data_categories"]
    finally:
        gen.close()
