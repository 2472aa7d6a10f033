"""Tamper-evident audit trail: signed checkpoints, verify, export bundles, PostgreSQL protection."""
from __future__ import annotations

import json
import stat
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from hub import audit
from hub.audit import CheckpointPolicy, bundle, checkpoints
from hub.audit.chain import AuditEvent
from hub.infra.store import migrate, open_engine
from hub.infra.store.unit_of_work import UnitOfWork
from tests.support.audit_integrity import T0, _fill
from tests.support.audit_integrity import signer  # noqa: F401 (a fixture)


def test_key_file_is_generated_private(tmp_path):
    s = checkpoints.ensure_key(tmp_path / "k" / "audit.pem")
    assert stat.S_IMODE((tmp_path / "k" / "audit.pem").stat().st_mode) == 0o600
    assert checkpoints.ensure_key(tmp_path / "k" / "audit.pem").key_id == s.key_id


@pytest.fixture
def sqlite_engine(tmp_path, signer):
    e = open_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    migrate(e)
    yield e
    e.dispose()


@pytest.fixture
def sqlite_work(sqlite_engine, signer):
    return UnitOfWork(sqlite_engine, CheckpointPolicy(signer, every_events=5, every_seconds=3600))


def test_dossier_bundle_verifies_offline_and_hides_other_dossiers(sqlite_engine, sqlite_work, signer, tmp_path):
    _fill(sqlite_work, 23, dossier=lambda i: "dossier-A" if i % 3 == 0 else "dossier-B")
    out = tmp_path / "a.jsonl"
    summary = bundle.export(sqlite_engine, signer, out, recorder=sqlite_work, dossier_id="dossier-A")
    assert summary.events == 8 and summary.unsealed == 1 and summary.hash_only > 0
    data = out.read_bytes()
    assert b"dossier-B" not in data and b"m1\"" not in data   # other events: hash only
    report = bundle.verify_bundle(data, pinned=signer.public_key)
    assert report.intact, report
    assert report.events == 8 and report.unsealed == [22] and report.checkpoints == 4


def test_bundle_fails_after_any_byte_is_changed(sqlite_engine, sqlite_work, signer, tmp_path):
    _fill(sqlite_work, 9, dossier=lambda i: "dossier-A" if i in (1, 7) else "dossier-B")
    out = tmp_path / "a.jsonl"
    bundle.export(sqlite_engine, signer, out, recorder=sqlite_work, dossier_id="dossier-A")
    data = out.read_bytes()
    assert bundle.verify_bundle(data).intact
    for i in range(len(data)):
        changed = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
        assert not bundle.verify_bundle(changed).intact, f"byte {i} changed, still intact"
    assert not bundle.verify_bundle(data + b"\n").intact
    assert not bundle.verify_bundle(data[:-1]).intact


def test_bundle_names_the_bad_event_and_pins_the_key(sqlite_engine, sqlite_work, signer, tmp_path):
    _fill(sqlite_work, 10, dossier=lambda i: "dossier-A")
    out = tmp_path / "a.jsonl"
    bundle.export(sqlite_engine, signer, out, recorder=sqlite_work, since=T0, until=T0 + timedelta(hours=1))
    lines = out.read_bytes().split(b"\n")
    event = json.loads(lines[3])
    assert event["seq"] == 3
    event["actor"] = "dvz"
    lines[3] = bundle._line(event)[:-1]
    report = bundle.verify_bundle(b"\n".join(lines))
    assert not report.intact and report.first_bad_seq == 3
    # the same bundle re-keyed and re-sealed by someone else: only a pinned key catches it
    other = checkpoints.ensure_key(tmp_path / "other.pem")
    report = bundle.verify_bundle(out.read_bytes(), pinned=other.public_key)
    assert not report.intact and "pinned" in report.reason


def test_cli_export_and_verify_bundle(tmp_path, monkeypatch):
    from hub.infra.settings import Settings
    from hub.interfaces.cli.main import app
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    settings = Settings()
    e = open_engine(settings.resolved_database_url())
    migrate(e)
    _fill(UnitOfWork(e), 7, dossier=lambda i: "dossier-A" if i % 2 else "dossier-B")
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "checkpoint"]).stdout.startswith("checkpoint signed at sequence 7")
    verified = runner.invoke(app, ["audit", "verify"], env={"COLUMNS": "200"})
    assert verified.exit_code == 0 and "1 signed checkpoint, sealed up to 7, 0 unsealed" in verified.output
    out = tmp_path / "bundle.jsonl"
    result = runner.invoke(app, ["audit", "export", "--dossier", "dossier-A", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    last = audit.tail(e, 1)[0]
    assert (last["event"], last["dossier_id"], last["reason"]) == ("exported", "dossier-A", "audit bundle: 3 events")
    pem = tmp_path / "audit.pub"
    pem.write_text(runner.invoke(app, ["audit", "public-key"]).output)
    ok = runner.invoke(app, ["audit", "verify", "--bundle", str(out), "--public-key", str(pem)])
    assert ok.exit_code == 0 and "bundle intact: 3 events" in ok.output and "not pinned" not in ok.output
    assert "not pinned" in runner.invoke(app, ["audit", "verify", "--bundle", str(out)]).output
    out.write_bytes(out.read_bytes().replace(b"dossier-A", b"dossier-C", 1))
    broken = runner.invoke(app, ["audit", "verify", "--bundle", str(out), "--public-key", str(pem)])
    assert broken.exit_code == 1 and "BROKEN" in broken.output
    assert runner.invoke(app, ["audit", "export", "--since", "2026-01-01", "--out", str(out)]).exit_code == 2
    e.dispose()


def test_the_hub_signs_checkpoints_with_its_configured_key(local_hub):
    hub = local_hub.hub
    key_file = hub.settings.resolved_audit_key_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    hub.work.record([AuditEvent("received", actor="portal")])
    assert hub.work.seal() is not None
    report = audit.verify(hub.engine, public_key=checkpoints.load_public_key(key_file))
    assert report.intact and report.unsealed == 0 and report.checkpoints >= 1


def test_a_hub_that_ran_workers_seals_its_tail_when_it_closes(tmp_path):
    """A clean shutdown leaves nothing unsealed: the events after the last checkpoint are signed on close."""
    from hub.bootstrap import build_hub
    from tests.support import hub_settings, sqlite_store
    hub = build_hub(hub_settings(tmp_path / "data", sqlite_store(tmp_path / "hub.db"), f"memory://{tmp_path.name}"))
    hub.start_workers()
    hub.work.record([AuditEvent("received", actor="portal")])
    assert audit.verify(hub.engine).unsealed >= 1
    engine_url, key_file = hub.engine.url, hub.settings.resolved_audit_key_file()
    hub.close()
    e = create_engine(engine_url.render_as_string(hide_password=False))
    report = audit.verify(e, public_key=checkpoints.load_public_key(key_file))
    assert report.intact and report.unsealed == 0
    e.dispose()
