"""Batch enrichment (the daily pattern of seeds/004) and the follow-up of Art. 10 6°, against the
Dimona simulator; results checked against the synthetic population the simulator answers from."""
from __future__ import annotations

import csv
from datetime import date

from sqlalchemy import select
from typer.testing import CliRunner

from adapters.population import Population
from hub.domain.territory import region_of_postcode
from hub.infra.store import open_engine
from hub.infra.store.schema import audit_events
from hub.interfaces.cli.demo import DemoClient, procedure
from hub.interfaces.cli.main import app
from hub.lifecycle.monitor import permit_holders_without_employment
from tests.support import SANDBOX_DIR

runner = CliRunner()


def _env(tmp_path):
    return {"HUB_DATA_DIR": str(tmp_path / "data"), "HUB_SANDBOX_DIR": str(SANDBOX_DIR)}


def test_enrich_batch_writes_one_file_per_authority(tmp_path):
    env = _env(tmp_path)
    source = tmp_path / "in.csv"
    r = runner.invoke(app, ["synthetic-batch", "600", str(source)], env=env)
    assert r.exit_code == 0, r.output
    with source.open("a") as f:                      # two bad lines among the good ones
        f.write("12345678901,2026-11-01,1000\n")
        f.write(f"{Population().sample(1)[0][0]},01/11/2026,1000\n")
    out = tmp_path / "out"
    r = runner.invoke(app, ["enrich-batch", str(source), "--out", str(out), "--chunk", "100"], env=env)
    assert r.exit_code == 1, r.output                # refused lines make the run fail, after doing the rest
    assert "2 lines refused" in r.output
    refused = list(csv.reader((out / "in-refused-lines.csv").open()))
    assert refused == [["line", "reason"], ["602", "not a valid INSZ"], ["603", "date is not YYYY-MM-DD"]]

    people = dict(Population().sample(600))
    seen = {}
    for path in out.glob("*-region.*.csv"):
        authority = path.stem.split("-", 1)[1]
        for row in csv.DictReader(path.open()):
            assert region_of_postcode(row["postcode"]) == authority
            seen[row["insz"]] = row
    assert set(seen) == set(people)                  # every good line in exactly one file
    pop = Population()
    for insz, row in list(seen.items())[:100]:
        running = pop.person(insz).employments_at(date.fromisoformat(row["reference_date"]))
        assert (row["employed"] == "yes") == bool(running)
        if running:
            assert row["period_id"] == running[0].period_id and row["employer"] == running[0].employer

    engine = open_engine(f"sqlite:///{tmp_path / 'data' / 'hub.db'}")
    with engine.connect() as conn:
        events = conn.execute(select(audit_events).where(audit_events.c.event == "batch_enriched")).all()
    assert {e.recipient for e in events} == {p.stem.split("-", 1)[1] for p in out.glob("*-region.*.csv")}
    assert all(e.payload_hash and "insz" not in (e.reason or "").lower() for e in events)


def test_enrich_batch_refuses_a_file_that_is_not_a_list_of_insz(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,city\nAmara,Gent\n")
    r = runner.invoke(app, ["enrich-batch", str(bad), "--out", str(tmp_path / "out")], env=_env(tmp_path))
    assert r.exit_code == 2 and "insz" in r.output


def test_monitor_lists_permit_holders_without_running_employment(local_hub):
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    procedure(c)                                     # applicant A ends with residence and work granted
    hub = local_hub.hub
    today = date.today()
    findings = permit_holders_without_employment(hub.work, hub.sources["onss.dimona"], today, "test")
    with hub.engine.connect() as conn:
        from hub.infra.store.schema import dossiers
        granted = conn.execute(select(dossiers.c.id, dossiers.c.application)
                               .where(dossiers.c.work_outcome == "granted")).all()
    assert len(granted) == 1
    insz = granted[0].application["worker"]["insz"]
    employed = bool(Population().person(insz).employments_at(today))
    listed = [f for rows in findings.values() for f in rows]
    assert (not employed) == (len(listed) == 1)
    if listed:
        assert listed[0]["dossier_id"] == granted[0].id and set(findings) == {"region.flanders"}
    with hub.engine.connect() as conn:
        looked_up = conn.execute(select(audit_events).where(audit_events.c.event == "consulted",
                                                            audit_events.c.actor == "onss",
                                                            audit_events.c.dossier_id == granted[0].id)).all()
    assert len(looked_up) == 1 and looked_up[0].purpose == 6 and looked_up[0].recipient == "region.flanders"


def test_monitor_leaves_out_a_single_permit_refused_on_residence(local_hub):
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    procedure(c)
    hub = local_hub.hub
    from hub.infra.store.schema import dossiers
    with hub.engine.begin() as conn:                 # work granted, then residence refused: no permit
        conn.execute(dossiers.update().where(dossiers.c.work_outcome == "granted").values(residence_outcome="refused"))
    findings = permit_holders_without_employment(hub.work, hub.sources["onss.dimona"], date.today(), "test")
    assert findings == {} or not any(findings.values())
