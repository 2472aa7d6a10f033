"""Art. 27 through the API: real dossiers made by the procedure, ten years on (the store-level
retention tests, on SQLite and PostgreSQL: tests/integration/test_retention.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import func, select

from hub import audit
from hub.infra.store.schema import (
    deliveries,
    dossiers,
    enrichment_jobs,
    enrichments,
    messages,
    outbox,
    stats_facts,
)
from hub.lifecycle import retention
from tests.support.retention import DOSSIER_TABLES, UTC, _count


def test_real_dossiers_through_the_api_ten_years_on(local_hub):
    """Dossiers driven by the parties' messages (granted, refused, appeal pending, undecided); ten
    years and a day later the granted and the refused ones are gone, everywhere, and nothing else."""
    from hub.domain import samples
    from hub.interfaces.cli.demo import DemoClient, procedure
    hc = local_hub
    c = DemoClient(hc.http, hc.secrets)
    c.load_flows()
    procedure(c)   # A: granted and notified; B: residence refused, decided and notified by the notice (Art. 24)

    def refused(serial: int) -> str:
        d = c.apply(samples.synthetic_application(serial))
        c.send("region.flanders", "single-permit.admissible-to-dvz", samples.sample_admissibility_decision(d))
        c.send("dvz", "single-permit.residence-decision", samples.sample_residence_decision(d, outcome="refused"))
        c.send("region.flanders", "single-permit.work-decision", samples.sample_work_decision(d, outcome="refused"))
        c.send("dvz", "single-permit.single-act-notified",
               samples.sample_single_act(d, residence_outcome="refused", work_outcome="refused"))
        return d
    refused_id, appealed_id = refused(3), refused(4)
    undecided = c.apply(samples.synthetic_application(5))
    c.send("region.flanders", "single-permit.admissible-to-dvz", samples.sample_admissibility_decision(undecided))
    c.send("dvz", "single-permit.residence-decision", samples.sample_residence_decision(undecided))
    c.send("dvz", "single-permit.appeal-lodged", samples.sample_appeal_lodged(appealed_id))
    engine = hc.hub.engine
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(dossiers))}
        facts = conn.execute(select(func.count()).select_from(stats_facts)).scalar_one()
    granted_id = next(i for i, r in rows.items() if r.state == "notified" and r.work_outcome == "granted")
    undecided_id = next(i for i, r in rows.items() if r.state == "residence_decided")
    assert undecided_id == undecided
    notice_id = next(i for i, r in rows.items() if r.state == "notified" and r.residence_outcome == "refused"
                     and r.work_outcome is None)                # B: the other part no longer needed
    assert rows[appealed_id].state == "appeal_pending" and rows[appealed_id].retain_until is None
    assert rows[refused_id].retain_until is not None and rows[undecided_id].retain_until is None
    assert rows[notice_id].retain_until == rows[notice_id].notified_at.replace(year=rows[notice_id].notified_at.year + 5)
    with engine.connect() as conn:
        mids = {did: conn.execute(select(messages.c.id).where(messages.c.dossier_id == did)).scalars().all()
                for did in rows}
    before = {did: _rows_of_api(engine, did, mids[did]) for did in rows}
    assert before[granted_id]["enrichments"] > 0 and before[granted_id]["deliveries"] > 0

    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 10) + timedelta(days=1)
    assert {d.id for d in retention.expired(engine, later)} == {granted_id, refused_id, notice_id}
    result = retention.run(hc.hub.work, later)
    assert result.dossiers == 3 and result.by_rule == {"granted": 1, "negative": 2}
    for did in (granted_id, refused_id, notice_id):
        assert set(_rows_of_api(engine, did, mids[did]).values()) == {0}, did
    for did in (undecided_id, appealed_id):
        assert _rows_of_api(engine, did, mids[did]) == before[did]
    gone = {rows[granted_id].subject_insz, rows[refused_id].subject_insz, rows[notice_id].subject_insz}
    with engine.connect() as conn:
        left = json.dumps([list(map(str, r)) for t in (dossiers, messages, deliveries, enrichments)
                           for r in conn.execute(select(t))])
        assert conn.execute(select(func.count()).select_from(stats_facts)).scalar_one() == facts
    assert not any(insz in left for insz in gone)          # no trace of the two people in any payload
    r = hc.get("dvz", f"/v1/dossiers/{granted_id}")
    assert r.status_code == 404 and r.json()["error"] == "unknown_dossier"
    assert hc.get("dvz", f"/v1/dossiers/{appealed_id}").status_code == 200
    assert audit.verify(engine).intact


def _rows_of_api(engine, did: str, mids: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        counts = {name: _count(conn, t, did) for name, t in DOSSIER_TABLES.items()}
        counts["dossiers"] = _count(conn, dossiers, did)
        counts["outbox"] = conn.execute(select(func.count()).select_from(outbox)
                                        .where(outbox.c.message_id.in_(mids))).scalar_one()
        counts["enrichment_jobs"] = conn.execute(select(func.count()).select_from(enrichment_jobs)
                                                 .where(enrichment_jobs.c.message_id.in_(mids))).scalar_one()
    return counts
