"""The data directory: the platform's user data directory (or HUB_DATA_DIR), never the working
directory; a command that reads a store that does not exist yet says so, exit 2, and creates nothing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest
from typer.testing import CliRunner

from hub.infra.settings import Settings
from hub.interfaces.cli.main import app

runner = CliRunner()
WIB_HUB = Path(sys.prefix) / "bin" / "wib-hub"

# read-only commands: none of them may create a store, or answer from an empty one
READERS = [
    ["monitor", "--json"],
    ["clocks", "due", "--within", "7d", "--json"],
    ["retention", "run", "--dry-run", "--json"],
    ["rights", "list", "--json"],
    ["audit", "tail"],
    ["audit", "search", "--json"],
    ["audit", "verify"],
    ["stats", "summary", "--json"],
]


def test_the_default_data_dir_is_the_platform_user_data_dir_and_absolute(monkeypatch, tmp_path):
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    settings = Settings()
    assert settings.data_dir == Path(platformdirs.user_data_dir("wib-hub", appauthor=False))
    assert settings.data_dir.is_absolute()
    # every derived default follows it
    d = settings.data_dir
    assert settings.resolved_database_url() == f"sqlite:///{d / 'hub.db'}"
    assert settings.resolved_broker_url() == f"sqlite:///{d / 'broker.db'}"
    assert settings.resolved_clients_file() == d / "clients.json"
    assert settings.resolved_token_key_file() == d / "token.key"
    assert settings.resolved_audit_key_file() == d / "audit-signing-key.pem"
    assert settings.resolved_sandbox_dir() == d / "sandbox"
    if sys.platform.startswith("linux"):   # platformdirs honours XDG_DATA_HOME there
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert Settings().data_dir == tmp_path / "xdg" / "wib-hub"
    # not the working directory: the same from anywhere
    before = Settings().data_dir
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == before and not str(before).startswith(str(tmp_path / "here"))
    # HUB_DATA_DIR rules; a relative one is made absolute where it is read
    monkeypatch.setenv("HUB_DATA_DIR", "here")
    assert Settings().data_dir == tmp_path / "here"


def test_doctor_prints_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "d"))
    result = runner.invoke(app, ["doctor", "--data-dir"])
    assert result.exit_code == 0 and result.stdout == f"{tmp_path / 'd'}\n", result.output


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_reader_with_no_store_says_so_in_one_line_exit_2(command, monkeypatch, tmp_path):
    monkeypatch.delenv("HUB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    data_dir = Settings().data_dir
    result = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.output             # nothing that reads as an (empty) answer
    lines = result.stderr.strip().splitlines()
    assert lines == [f"data directory: {data_dir}",
                     f"no store yet at {data_dir / 'hub.db'}: start `wib-hub serve` first, or set HUB_DATA_DIR"], \
        result.output
    assert not (data_dir / "hub.db").exists() and not (tmp_path / "elsewhere" / "var").exists()


def test_the_installed_command_from_another_directory(tmp_path):
    if not WIB_HUB.exists():
        pytest.skip(f"no installed wib-hub command in {sys.prefix}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    run = subprocess.run([str(WIB_HUB), "rights", "list", "--json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2 and run.stdout == "", run
    assert run.stderr.strip().splitlines()[-1] == (
        f"no store yet at {tmp_path / 'xdg' / 'wib-hub' / 'hub.db'}: start `wib-hub serve` first, or set HUB_DATA_DIR")
