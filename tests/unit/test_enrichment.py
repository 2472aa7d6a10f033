"""Art. 14 enrichment: resilience parts alone, then the content enricher in the message path —
including a source that goes down and comes back (the dossier waits, then completes by itself)."""
from __future__ import annotations

import time
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from hub.domain import samples
from hub.domain.retry import Backoff, RetryPolicy
from hub.infra.store.schema import audit_events
from hub.interfaces.cli.demo import DemoClient
from hub.messaging.resilience import CircuitBreaker, CircuitOpen, Resilient
from hub.ports import EnrichmentRecord, SourceRefused, SourceUnavailable, Subject
from tests.support import sqlite_store, start_hub
from tests.support.enrichment import _dvz_item, _forward


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


def test_posted_worker_gets_limosa_too(local_hub):
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    application = samples.synthetic_application(8)
    application["employment"]["posted"] = True
    dossier = c.apply(application)
    item = _dvz_item(c, _forward(c, dossier), timeout=20)
    assert {r["source"] for r in item["attachments"]["enrichment"]} == {"onss.dimona", "onss.dmfa", "onss.limosa"}


def test_on_demand_enrichment_for_dvz_and_the_competent_region_only(local_hub):
    c = DemoClient(local_hub.http, local_hub.secrets)
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
    with local_hub.hub.engine.connect() as conn:
        consulted = conn.execute(select(audit_events).where(audit_events.c.event == "consulted",
                                                            audit_events.c.dossier_id == dossier)).all()
    assert any(e.actor == "dvz" and e.data_categories == ["social_security"] for e in consulted)


def test_professional_card_reaches_the_region_with_inastis_register(tmp_path):
    """Art. 14 §2: for a professional card INASTI's register data go to the region (the procedure
    started, Art. 34/36)."""
    from datetime import date

    from hub.domain.samples import FLOW_SAMPLES
    gen = start_hub(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{tmp_path.name}",
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
