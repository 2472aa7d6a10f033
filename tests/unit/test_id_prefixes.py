"""An id option may be given by the 8-character prefix a table shows on a terminal (hub/interfaces/cli/audit.py
cuts ids there): a unique prefix names the whole id, an unknown or ambiguous one is a one-line refusal (exit 2)."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from hub import audit
from hub.infra.store import migrate, open_engine
from hub.infra.store.schema import rights_requests
from hub.infra.store.unit_of_work import UnitOfWork
from hub.interfaces.cli import audit as audit_cli
from hub.interfaces.cli.main import app
from hub.interfaces.cli.options import CliConsole
from hub.lifecycle import rights
from hub.registry import default_contracts_dir, load_registry
from tests.support.audit_integrity import _fill
from tests.support.rights import STRANGER_INSZ, T0

# two dossiers whose ids share their first 8 characters, and one apart
TWIN_A = "1a2b3c4d-0000-4000-8000-00000000000a"
TWIN_B = "1a2b3c4d-0000-4000-8000-00000000000b"
LONE = "9f8e7d6c-5b4a-4321-8765-0123456789ab"
DOSSIERS = (TWIN_A, TWIN_B, LONE)

runner = CliRunner()


@pytest.fixture
def store(tmp_path, monkeypatch):
    from hub.infra.settings import Settings
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    engine = open_engine(Settings().resolved_database_url())
    migrate(engine)
    _fill(UnitOfWork(engine), 6, dossier=lambda i: DOSSIERS[i % 3])
    yield engine
    engine.dispose()


def _one_line(result, code: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{code}: "), result.output
    return lines[0]


def _search(*args: str):
    return runner.invoke(app, ["audit", "search", "--json", "--limit", "1000", *args])


def test_the_prefix_a_terminal_table_shows_finds_the_dossier(store, monkeypatch):
    monkeypatch.setattr(audit_cli, "console", CliConsole(force_terminal=True, color_system=None, width=200))
    shown = runner.invoke(app, ["audit", "tail", "-n", "6"])
    assert shown.exit_code == 0, shown.output
    assert LONE not in shown.output and LONE[:8] in shown.output     # the table cuts the id to 8 characters
    monkeypatch.setattr(audit_cli, "console", CliConsole())
    result = _search("--dossier", LONE[:8])
    assert result.exit_code == 0, result.output
    assert {i["dossier_id"] for i in json.loads(result.stdout)["items"]} == {LONE}


def test_a_unique_prefix_is_the_whole_dossier_id(store):
    whole = _search("--dossier", LONE)
    assert whole.exit_code == 0, whole.output
    by_prefix = _search("--dossier", LONE[:8])
    assert by_prefix.exit_code == 0, by_prefix.output
    items = json.loads(by_prefix.stdout)["items"]
    # the same events (and, after them, the first search's own `consulted` event, recorded with the id)
    assert items[:-1] == json.loads(whole.stdout)["items"] and {i["dossier_id"] for i in items} == {LONE}
    assert [i["event"] for i in items] == ["received", "received", "consulted"]
    # the consultation is recorded with the whole id, not the prefix typed
    assert audit.tail(store, 1)[0]["dossier_id"] == LONE
    assert _search("--dossier", LONE[:20]).exit_code == 0          # any unique prefix of 4 characters or more
    assert _search("--dossier", LONE[:4]).exit_code == 0


def test_audit_export_takes_a_prefix(store, tmp_path):
    out = tmp_path / "bundle.jsonl"
    result = runner.invoke(app, ["audit", "export", "--dossier", LONE[:8], "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    last = audit.tail(store, 1)[0]
    assert (last["event"], last["dossier_id"]) == ("exported", LONE)


def test_an_ambiguous_prefix_lists_the_matches_in_one_line(store, tmp_path):
    line = _one_line(_search("--dossier", TWIN_A[:8]), "ambiguous_dossier")
    assert TWIN_A in line and TWIN_B in line and LONE not in line
    out = tmp_path / "bundle.jsonl"
    line = _one_line(runner.invoke(app, ["audit", "export", "--dossier", "1a2b", "--out", str(out)]),
                     "ambiguous_dossier")
    assert TWIN_A in line and TWIN_B in line
    assert not out.exists()


def test_more_than_five_matches_are_cut(store):
    _fill(UnitOfWork(store), 7, dossier=lambda i: f"5eed{i:04d}-0000-4000-8000-000000000000")
    line = _one_line(_search("--dossier", "5eed"), "ambiguous_dossier")
    assert len(re.findall(r"5eed\d{4}-", line)) == 5 and line.endswith("…")


@pytest.mark.parametrize("value", ["00000000", "1a2", "1a2b3c4d-0000-4000-8000-00000000000c", "1a2_", "1a%"])
def test_an_unknown_id_or_prefix_is_one_line(store, value):
    line = _one_line(_search("--dossier", value), "unknown_dossier")
    assert line.startswith(f"unknown_dossier: no dossier {value}")


def test_rights_export_takes_a_request_prefix(store, tmp_path):
    registry = load_registry(default_contracts_dir())
    req = rights.submit_request(UnitOfWork(store), registry, kind="access", concerning="professional_card",
                                insz=STRANGER_INSZ, region="region.wallonia", submitted_by="portal", now=T0)
    out = tmp_path / "export.json"
    r = runner.invoke(app, ["rights", "export", "--request", req.id[:8], "--out", str(out), "--now", T0.isoformat()])
    assert r.exit_code == 0, r.output
    assert [x["id"] for x in json.loads(out.read_text())["rights_requests"]] == [req.id]

    with store.begin() as conn:   # a second request whose id starts like the first
        row = dict(conn.execute(select(rights_requests).where(rights_requests.c.id == req.id)).mappings().one())
        conn.execute(insert(rights_requests).values({**row, "id": req.id[:8] + "-twin"}))
    line = _one_line(runner.invoke(app, ["rights", "export", "--request", req.id[:8], "--out", str(out)]),
                     "ambiguous_request")
    assert req.id in line and req.id[:8] + "-twin" in line
    assert runner.invoke(app, ["rights", "export", "--request", req.id, "--out", str(out),
                               "--now", T0.isoformat()]).exit_code == 0       # the whole id still works
    line = _one_line(runner.invoke(app, ["rights", "export", "--request", "ffffffff", "--out", str(out)]),
                     "unknown_request")
    assert line == "unknown_request: no rights request ffffffff"


def test_prefixes_on_each_store(store_url, tmp_path, monkeypatch):
    """LIKE and its escapes as each database reads them (PostgreSQL's LIKE is case-sensitive, SQLite's not)."""
    engine = open_engine(store_url)
    migrate(engine)
    _fill(UnitOfWork(engine), 6, dossier=lambda i: (TWIN_A, TWIN_B, LONE, "ab_cd-x", "ab%cd-y", "abxcd-z")[i])
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HUB_DATABASE_URL", store_url)
    result = _search("--dossier", LONE[:8])
    assert result.exit_code == 0 and {i["dossier_id"] for i in json.loads(result.stdout)["items"]} == {LONE}
    assert TWIN_B in _one_line(_search("--dossier", TWIN_B[:8]), "ambiguous_dossier")
    for prefix, whole in (("ab_c", "ab_cd-x"), ("ab%c", "ab%cd-y"), ("abxc", "abxcd-z")):
        result = _search("--dossier", prefix)        # _ and % are the characters typed, not wildcards
        assert result.exit_code == 0, result.output
        assert {i["dossier_id"] for i in json.loads(result.stdout)["items"]} == {whole}
    engine.dispose()
