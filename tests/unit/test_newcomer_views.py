"""What a newcomer reads first: the dossier's procedural dates over the API, `contracts show` without
`None`, `contracts test` against a dead URL (one line, exit 2), and `flows list`."""
from __future__ import annotations

import socket
from datetime import datetime

import pytest
from typer.testing import CliRunner

from hub.interfaces.cli.main import app
from hub.messaging.inbox import PROCEDURAL_FIELDS

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


def _dead_url() -> str:
    with socket.socket() as s:           # a port nothing listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- GET /v1/dossiers/{id}: the dates of each move, the outcomes, retain_until ----------------------

def test_the_dossier_view_carries_its_procedural_facts(local_hub):
    from hub.interfaces.cli.demo import DemoClient, procedure
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    granted, refused = procedure(c)
    view = local_hub.get("region.flanders", f"/v1/dossiers/{granted}")
    assert view.status_code == 200, view.text
    d = view.json()
    assert set(PROCEDURAL_FIELDS) <= set(d)                      # always there, null when not set
    assert d["state"] == "notified"
    for key in ("complete_at", "decided_at", "notified_at", "retain_until", "created_at", "updated_at"):
        assert datetime.fromisoformat(d[key]).tzinfo is not None, key
    assert d["created_at"] <= d["complete_at"] <= d["decided_at"] <= d["notified_at"] < d["retain_until"]
    assert (d["residence_outcome"], d["work_outcome"]) == ("granted", "granted")
    assert d["residence_decision_kind"] and d["work_decision_kind"]
    assert d["appeal_lodged_at"] is None and d["appeal_ended_at"] is None and d["closed_at"] is None
    assert "medical_documents" not in d["messages"][0]["payload"]       # need to know, as before

    r = local_hub.get("dvz", f"/v1/dossiers/{refused}").json()
    assert r["residence_outcome"] == "refused" and r["decided_at"] and r["notified_at"] and r["retain_until"]


def test_a_fresh_dossier_answers_every_procedural_key_as_null(local_hub):
    from hub.domain import samples
    from hub.interfaces.cli.demo import DemoClient
    c = DemoClient(local_hub.http, local_hub.secrets)
    c.load_flows()
    dossier = c.apply(samples.synthetic_application(3))
    d = local_hub.get("region.flanders", f"/v1/dossiers/{dossier}").json()
    assert {k: d[k] for k in PROCEDURAL_FIELDS} == dict.fromkeys(PROCEDURAL_FIELDS)


def test_the_openapi_document_declares_the_procedural_fields(local_hub):
    spec = local_hub.http.get("/openapi.json").json()
    props = spec["components"]["schemas"]["DossierView"]["properties"]
    assert set(PROCEDURAL_FIELDS) <= set(props)


# --- `contracts show`: no "None" ---------------------------------------------------------------------

def test_contracts_show_prints_a_dash_for_a_missing_root():
    result = runner.invoke(app, ["contracts", "show", "onss.dimona.personnel-file"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "None" not in result.output
    assert any(line.split("│")[1:3] and line.split("│")[1].strip() == "root" and line.split("│")[2].strip() == "—"
               for line in result.output.splitlines() if "│" in line)


# --- `contracts test` against a dead URL -------------------------------------------------------------

@pytest.mark.parametrize("name", ["onss.dimona", "onss.dmfa", "onss.limosa", "inasti.self-employed",
                                  "dvz.back-office", "regions.back-office"])
def test_contracts_test_against_a_dead_url_says_unreachable_once(name):
    url = _dead_url()
    result = runner.invoke(app, ["contracts", "test", name, "--url", url], env=WIDE)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"unreachable: {url}: "), result.output
    assert "refused" in lines[0]


def test_contracts_test_names_an_unknown_host_and_a_url_without_host():
    result = runner.invoke(app, ["contracts", "test", "onss.dimona", "--url", "http://no-such-host.invalid"], env=WIDE)
    assert result.exit_code == 2 and result.output.startswith("unreachable: http://no-such-host.invalid: unknown host")
    result = runner.invoke(app, ["contracts", "test", "onss.dimona", "--url", "not-a-url", "--json"], env=WIDE)
    assert result.exit_code == 2 and result.output.strip() == "unreachable: not-a-url: not an http(s) URL with a host"


def test_each_suite_stops_at_one_failed_check_on_a_dead_url():
    from hub.ports import SourceConfig, load_adapters
    url = _dead_url()
    for adapter in load_adapters().values():
        checks = adapter.conformance(SourceConfig(url=url))
        assert len(checks) == 1 and not checks[0].passed and "refused" in checks[0].detail, adapter.name


# --- `flows list` ------------------------------------------------------------------------------------

def test_flows_list_is_a_table_of_the_registry():
    from hub.interfaces.cli.options import registry
    result = runner.invoke(app, ["flows", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "flow" in line and "senders" in line)
    assert [h.strip() for h in header.strip("┃ ").split("┃")] == ["flow", "senders", "recipients", "purpose", "enabled"]
    flows = registry().flows
    assert f"{len(flows)} flows" in result.output
    for f in flows.values():
        assert f.id in result.output
    assert "registry valid" not in result.output           # the listing; `flows check` is the check
    assert "list" in runner.invoke(app, ["flows", "--help"], env=WIDE).output
