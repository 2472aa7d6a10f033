"""What a new user of `wib-hub` meets first: --version, counted nouns, the region's two spellings,
closed filter values refused in one line, and output that is not a terminal printed whole."""
from __future__ import annotations

import importlib.metadata
import json
import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.audit.bundle import BundleReport
from hub.audit.chain import AuditEvent, VerifyReport
from hub.interfaces.cli import audit as cli_audit
from hub.interfaces.cli.labels import plural
from hub.interfaces.cli.main import app
from hub.interfaces.cli.options import (
    AUDIT_EVENTS,
    AUDIT_OUTCOMES,
    party_id,
    region_name,
    store,
)

runner = CliRunner()
NOT_A_TERMINAL = {"COLUMNS": None}   # no width asked for: the runner's output is not a terminal
HUB = Path(__file__).resolve().parents[2] / "hub"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An embedded store of its own, migrated."""
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    with store(migrate_store=True, create=True):
        pass
    return tmp_path


def test_version_prints_the_installed_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"wib-hub {importlib.metadata.version('wib-hub')}\n"


def test_plural():
    assert plural(1, "signed checkpoint") == "1 signed checkpoint"
    assert plural(0, "signed checkpoint") == "0 signed checkpoints"
    assert plural(2, "batch", "batches") == "2 batches" and plural(1, "batch", "batches") == "1 batch"
    assert plural(1200, "event") == "1,200 events"


def test_verify_reports_say_one_checkpoint():
    chain = VerifyReport(intact=True, count=1, head_seq=1, checkpoints=1, sealed_seq=1)
    assert cli_audit._verified(chain) == ("audit chain intact: 1 event, head 1; 1 signed checkpoint, "
                                          "sealed up to 1, 0 unsealed after it")
    assert "3 events" in cli_audit._verified(VerifyReport(intact=True, count=3, head_seq=3, checkpoints=2,
                                                          sealed_seq=3))
    bundle = BundleReport(intact=True, events=1, hash_only=0, checkpoints=1)
    assert cli_audit._verified(bundle) == "bundle intact: 1 event, 0 hash-only, 1 signed checkpoint"
    broken = VerifyReport(intact=False, count=3, head_seq=3, first_bad_seq=2, reason="hash mismatch")
    assert cli_audit._verified(broken) == str(broken)


def test_audit_verify_on_a_store_with_one_checkpoint(data_dir):
    with store() as work:
        work.record([AuditEvent("consulted", actor="dvz")])
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    result = runner.invoke(app, ["audit", "verify"], env=NOT_A_TERMINAL)
    assert result.exit_code == 0, result.output
    assert "1 signed checkpoint," in result.output and "checkpoints" not in result.output


def test_region_takes_both_spellings_and_lists_them(data_dir):
    for spelling in ("german_speaking", "german-speaking", "German-Speaking"):
        result = runner.invoke(app, ["stats", "summary", "--region", spelling, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["filter"]["region"] == "german_speaking"
    bad = runner.invoke(app, ["stats", "times", "--region", "atlantis"], env=NOT_A_TERMINAL)
    assert bad.exit_code == 2
    assert bad.output.strip() == ("invalid_option: --region 'atlantis' is not one of: "
                                  "flanders, wallonia, brussels, german_speaking")
    help_text = runner.invoke(app, ["stats", "summary", "--help"], env={"COLUMNS": "200"}).output
    assert "german_speaking (german-speaking also accepted)" in help_text


def test_party_options_take_the_region_with_an_underscore():
    assert party_id("region.german_speaking") == "region.german-speaking"
    assert party_id(" dvz ") == "dvz" and party_id(None) is None
    assert party_id("security-officer") == "security-officer"
    assert region_name(" German-Speaking ") == "german_speaking"


@pytest.mark.parametrize("option, accepted", [("--outcome", AUDIT_OUTCOMES), ("--event", AUDIT_EVENTS)])
def test_audit_search_refuses_a_value_outside_the_vocabulary(option, accepted):
    result = runner.invoke(app, ["audit", "search", option, "whatever"], env=NOT_A_TERMINAL)
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line
    assert line == f"invalid_option: {option} 'whatever' is not one of: {', '.join(accepted)}"


def test_filter_values_refused_by_stats_name_the_option(data_dir):
    result = runner.invoke(app, ["stats", "summary", "--permit-type", "golden_visa"], env=NOT_A_TERMINAL)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--permit-type: one of single_permit, eu_blue_card" in result.output


def test_the_audit_vocabulary_is_what_the_hub_records():
    """Every event and outcome the hub appends is in the CLI's lists (and nothing else is)."""
    events, outcomes = set(), set()
    for path in HUB.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in re.finditer(r"AuditEvent\(\s*\"([a-z_]+)\"(?=(.{0,300}))", text, re.DOTALL):
            events.add(call.group(1))
            outcome = re.search(r"outcome=([^,]+?)(?:, [a-z_]+=|\)\])", call.group(2))
            if outcome:
                outcomes.update(re.findall(r"(?<!\[)\"([a-z_]+)\"(?!\])", outcome.group(1)))   # not r["status"]
    assert events == set(AUDIT_EVENTS)
    assert outcomes | {"ok"} == set(AUDIT_OUTCOMES)


def test_tables_are_whole_when_the_output_is_not_a_terminal(data_dir):
    dossier = str(uuid.uuid4())
    with store() as work:
        work.record([AuditEvent("consulted", dossier_id=dossier, actor="dvz", reason="x" * 120)])
    result = runner.invoke(app, ["audit", "tail"], env=NOT_A_TERMINAL)
    assert result.exit_code == 0, result.output
    assert dossier in result.output and "x" * 120 in result.output and "…" not in result.output

    rules = runner.invoke(app, ["clocks", "rules"], env=NOT_A_TERMINAL)
    assert rules.exit_code == 0, rules.output
    assert "…" not in rules.output
    assert "Law of 15 December 1980" in rules.output
    # every row on one line: the table is no wider than its widest row, not cut to 80 columns
    assert max(len(line) for line in rules.output.splitlines()) > 80
