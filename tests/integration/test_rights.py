"""Data-subject rights (Art. 28–29; GDPR arts. 12, 15–21): request → dated acknowledgment → routed to
the competent controller → overdue after a month → export of that person's data only → answered.

(Here: the tests that run on PostgreSQL and RabbitMQ as well as locally.)"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.domain.identifiers import is_valid_insz
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import audit_events
from hub.infra.store.unit_of_work import UnitOfWork
from hub.interfaces.cli.main import app
from hub.lifecycle import rights
from hub.registry import default_contracts_dir, load_registry
from tests.support.rights import BAD_INSZ, DUE, STRANGER_INSZ, T0

assert not is_valid_insz(BAD_INSZ)


runner = CliRunner()


def test_cli_list_and_export_on_each_store(store_url, tmp_path, monkeypatch):
    engine = open_engine(store_url)
    migrate(engine)
    registry = load_registry(default_contracts_dir())
    work = UnitOfWork(engine)
    req = rights.submit_request(work, registry, kind="access", concerning="professional_card",
                                insz=STRANGER_INSZ, region="region.wallonia", submitted_by="portal", now=T0)
    assert req.controller == "region.wallonia" and req.due_at == DUE
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HUB_DATABASE_URL", store_url)

    r = runner.invoke(app, ["rights", "list", "--controller", "region.wallonia", "--overdue",
                            "--now", "2026-03-03T00:00:00+00:00", "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["requests"]
    assert row["id"] == req.id and row["overdue"] and row["due_at"] == DUE.isoformat()
    r = runner.invoke(app, ["rights", "list", "--overdue", "--now", "2026-03-02T12:00:00+00:00", "--json"])
    assert json.loads(r.stdout)["requests"] == []
    r = runner.invoke(app, ["rights", "list", "--now", "2026-03-03T00:00:00+00:00"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "overdue" in r.output and req.id in r.output

    out = tmp_path / "export.json"
    r = runner.invoke(app, ["rights", "export", "--request", req.id, "--out", str(out), "--now", T0.isoformat()])
    assert r.exit_code == 0, r.output
    body = json.loads(out.read_text())
    assert body["dossiers"] == [] and [x["id"] for x in body["rights_requests"]] == [req.id]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    r = runner.invoke(app, ["rights", "export", "--insz", BAD_INSZ, "--controller", "dvz", "--out", str(out)])
    assert r.exit_code == 2 and "invalid_insz" in r.output
    r = runner.invoke(app, ["rights", "export", "--insz", STRANGER_INSZ, "--out", str(out)])
    assert r.exit_code == 2 and "controller_required" in r.output

    rights.answer(work, req.id, "region.wallonia", {"outcome": "no_data"}, T0 + timedelta(days=3))
    with pytest.raises(Exception) as err:
        rights.answer(work, req.id, "region.wallonia", {"outcome": "no_data"}, T0 + timedelta(days=4))
    assert getattr(err.value, "code", None) == "already_answered"
    with engine.connect() as conn:
        events = [r.event for r in conn.execute(select(audit_events.c.event).order_by(audit_events.c.seq))]
    assert events == ["rights_request", "consulted", "consulted", "consulted", "consulted", "rights_answered"]
    engine.dispose()
