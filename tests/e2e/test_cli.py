"""The `wib-hub` command as an operator uses it."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from hub.interfaces.cli.main import app
from hub.registry import default_contracts_dir

runner = CliRunner()


def test_flows_check_lists_the_registry():
    result = runner.invoke(app, ["flows", "check"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "single-permit.admissible-to-dvz" in result.output and "registry valid" in result.output


def test_flows_check_names_file_and_field_of_a_fault(tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(default_contracts_dir(), contracts)
    flow = contracts / "flows" / "single-permit.work-decision.yaml"
    flow.write_text(flow.read_text().replace("purpose: 3", "purpose: 12"))
    result = runner.invoke(app, ["flows", "check", "--contracts-dir", str(contracts)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "single-permit.work-decision.yaml" in result.output and "purpose" in result.output


def test_demo_runs_the_procedure_and_verifies_the_audit(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HUB_PORT", "1")          # no hub there: the demo starts its own in-process
    monkeypatch.setenv("HUB_DATA_DIR", str(data_dir))
    result = runner.invoke(app, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "negative-decision-notice" in result.output
    assert "blue-card.decision" in result.output and "deemed authorisation" in result.output   # the clock
    assert "audit chain intact" in result.output and " 0 unsealed" in result.output   # sealed on close
    # its data stays, in the data directory (not under the working directory), to explore afterwards
    assert (data_dir / "hub.db").is_file() and not (tmp_path / "cwd" / "var").exists()
    assert f"the data stays in {data_dir}" in result.stdout and "`wib-hub audit verify`" in result.stdout
    monkeypatch.chdir(tmp_path)                  # from another directory: the same store
    verify = runner.invoke(app, ["audit", "verify"], env={"COLUMNS": "200"})
    assert verify.exit_code == 0, verify.output
    events = int(re.search(r"audit chain intact: (\d+) events", verify.stdout)[1])
    assert events > 50, verify.output
    assert f"data directory: {data_dir}" in verify.stderr
    stats = runner.invoke(app, ["stats", "summary", "--json"], env={"COLUMNS": "200"})
    assert stats.exit_code == 0, stats.output
    assert sum(r["applications"] for r in json.loads(stats.stdout)["rows"]) >= 3, stats.stdout
    # a second demo on a store that already holds dossiers adds its applicants
    again = runner.invoke(app, ["demo"], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "audit chain intact" in again.output, again.output
    assert int(re.search(r"audit chain intact: (\d+) events", again.stdout)[1]) > events


def test_audit_verify_and_tail(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    from hub.audit import AuditEvent
    from hub.infra.settings import Settings
    from hub.infra.store import migrate, open_engine
    from hub.infra.store.unit_of_work import UnitOfWork
    engine = open_engine(Settings().resolved_database_url())
    migrate(engine)
    UnitOfWork(engine).record([AuditEvent("received", actor="portal"), AuditEvent("stored", actor="portal")])
    assert "intact" in runner.invoke(app, ["audit", "verify"]).output
    tail = runner.invoke(app, ["audit", "tail", "--json"])
    assert tail.exit_code == 0 and tail.stdout.count("\n") == 2
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'dvz' WHERE seq = 2")
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "sequence 2" in broken.output


def test_a_store_not_migrated_is_a_message_and_exit_2(tmp_path, monkeypatch, capsys):
    """The installed `wib-hub` command (hub.interfaces.cli.main:main): no traceback, no SQL, a hint."""
    import sys

    from hub.interfaces.cli.main import main
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "hub.db").touch()   # a store that exists (an empty SQLite file), without the tables
    for command in (["audit", "tail"], ["rights", "list"], ["clocks", "due"], ["stats", "summary"]):
        monkeypatch.setattr(sys, "argv", ["wib-hub", *command])
        with pytest.raises(SystemExit) as done:
            main()
        out = capsys.readouterr().out
        assert done.value.code == 2, (command, out)
        assert "store" in out and "SELECT" not in out and "Traceback" not in out, (command, out)
