"""A wrong setting or a server that does not answer is one line naming the variable (or the server's
host and port) and what was expected, exit 2: no traceback, never a password."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hub.interfaces.cli.main import main

WIB_HUB = Path(sys.executable).with_name("wib-hub")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Runs `wib-hub ARGS` in this process on a clean HUB_* environment (a fresh data dir)."""
    def run(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
        for name in list(os.environ):
            if name.startswith("HUB_") and not name.startswith("HUB_TEST_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", ["wib-hub", *args])
        with pytest.raises(SystemExit) as stopped:
            main()
        out = capsys.readouterr()
        # the dim line naming the data directory (stderr) is not the message
        return stopped.value.code, [line for line in (out.out + out.err).splitlines()
                                    if line.strip() and not line.startswith("data directory: ")]
    return run


def _one_line(code: int, lines: list[str], *names: str, secret: str = "s3cret") -> str:
    assert code == 2, lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert "Traceback" not in line and secret not in line
    for name in names:
        assert name in line, line
    return line


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") or k.startswith("HUB_TEST_")}
    env.update(HUB_DATA_DIR=str(tmp_path / "var"), **extra)
    return env


def test_a_broker_that_is_down_is_waited_for_in_one_line(tmp_path):
    """A broker that is down (connection refused) is not a configuration error: the API starts and
    accepts into the outbox, and says so once (issue: a restart during a broker outage took the whole
    intake down). A broker configured wrongly still stops it (the tests below)."""
    import httpx

    from tests.support.served import free_port
    port, broker = free_port(), _closed_port()
    env = _clean_env(tmp_path, HUB_BROKER_URL=f"amqp://guest:s3cret@127.0.0.1:{broker}/%2F", HUB_PORT=str(port))
    api = subprocess.Popen([str(WIB_HUB), "api"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        ready = None
        for _ in range(300):
            try:
                ready = httpx.get(f"{url}/readyz", timeout=1, trust_env=False)
                break
            except httpx.HTTPError:
                assert api.poll() is None, api.communicate()
                import time
                time.sleep(0.1)
        assert ready is not None and ready.status_code == 200, ready
        assert ready.json()["checks"] == {"store": True, "broker": False}
    finally:
        api.terminate()
        out, err = api.communicate(timeout=30)
    assert api.returncode in (0, -15), err    # uvicorn ends a SIGTERM by raising it again once shut down
    waiting = [line for line in err.splitlines() if "broker.unavailable" in line]
    assert len(waiting) == 1 and f"127.0.0.1:{broker}" in waiting[0] and "s3cret" not in err, err


def test_an_unknown_broker_host_is_named(cli):
    code, lines = cli({"HUB_BROKER_URL": "amqp://guest:s3cret@nohost.invalid/%2F"}, "serve", "--port", "18999")
    line = _one_line(code, lines, "nohost.invalid:5672")
    assert "unknown host" in line


def test_a_bad_integer_names_the_variable(cli):
    line = _one_line(*cli({"HUB_PORT": "abc"}, "serve"), "HUB_PORT")
    assert line == "HUB_PORT: expected an integer (got 'abc')"


@pytest.mark.parametrize("env, expected", [
    ({"HUB_SOURCES": "notjson"}, 'HUB_SOURCES: expected JSON, e.g. {"onss.dimona": "https://…"} (got \'notjson\')'),
    ({"HUB_SOURCES": "[1]"}, "HUB_SOURCES: expected a JSON object (got '[1]')"),
    ({"HUB_SANDBOX": "maybe"}, "HUB_SANDBOX: expected true or false (got 'maybe')"),
    ({"HUB_PROFESSIONAL_CARD_START": "soon"}, "HUB_PROFESSIONAL_CARD_START: expected a date YYYY-MM-DD (got 'soon')"),
    ({"HUB_MAX_HEADER_COUNT": "0"}, "HUB_MAX_HEADER_COUNT: expected a number at least 1 (got '0')"),
    ({"HUB_TRUSTED_PROXIES": "nope"}, "HUB_TRUSTED_PROXIES: not an IP address or network: 'nope'"),
    ({"HUB_DATABASE_URL": "mysql://u:s3cret@db/hub"},
     "HUB_DATABASE_URL: expected postgresql://user@host:5432/db or sqlite:///path (got 'mysql://db/hub')"),
    ({"HUB_BROKER_URL": "bogus"}, "HUB_BROKER_URL: broker URL needs a scheme: amqp://, amqps://, sqlite:/// or "
                                  "embedded:/// (got 'bogus')"),
    ({"HUB_OFFICE_HOURS": "whenever"}, ("HUB_OFFICE_HOURS: expected days, hours and a time zone like "
                                        "'Mon-Fri 08:00-18:00 Europe/Brussels' (got 'whenever')")),
])
def test_each_bad_setting_is_its_line(cli, env, expected):
    assert _one_line(*cli(env, "serve")) == expected


def test_a_long_value_is_clipped(cli):
    line = _one_line(*cli({"HUB_PORT": "9" * 30 + "x" * 100}, "serve"), "HUB_PORT")
    assert len(line) < 120 and "…" in line


def test_a_missing_clients_file_is_named(cli, tmp_path):
    missing = tmp_path / "nope" / "clients.json"
    assert _one_line(*cli({"HUB_CLIENTS_FILE": str(missing)}, "serve")) == f"HUB_CLIENTS_FILE: no such file {missing}"


def test_an_unreadable_clients_file_is_named(cli, tmp_path):
    bad = tmp_path / "clients.json"
    bad.write_text("{not json")
    _one_line(*cli({"HUB_CLIENTS_FILE": str(bad)}, "serve"), "HUB_CLIENTS_FILE", str(bad))


def test_no_source_url_without_the_sandbox_names_hub_sources(cli):
    _one_line(*cli({"HUB_SANDBOX": "false"}, "serve"), "HUB_SOURCES", "onss.dimona")


def test_a_store_on_a_closed_port_is_one_line_without_password(cli):
    port = _closed_port()
    url = f"postgresql://postgres:s3cret@127.0.0.1:{port}/hubdb"
    for command in (["serve"], ["audit", "verify"]):
        line = _one_line(*cli({"HUB_DATABASE_URL": url}, *command), f"127.0.0.1:{port}/hubdb")
        assert line.startswith(f"store postgresql://127.0.0.1:{port}/hubdb unreachable:"), line


def test_the_installed_command_prints_one_line(tmp_path):
    """The reported case, end to end: 141 lines ending in gaierror before."""
    env = _clean_env(tmp_path, HUB_BROKER_URL="amqp://nohost.invalid")
    done = subprocess.run([str(WIB_HUB), "serve", "--port", "18999"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2 and lines == ["broker amqp://nohost.invalid:5672/ unreachable: unknown host 'nohost.invalid'"]


def test_one_wrong_node_of_a_cluster_is_named(cli, amqp_url):
    code, lines = cli({"HUB_BROKER_URL": f"{amqp_url},amqp://guest:s3cret@nohost.invalid:5672/%2F"},
                      "serve", "--port", "18999")
    assert "nohost.invalid:5672" in _one_line(code, lines)


def test_a_wrong_broker_password_is_named_without_it(cli, amqp_url):
    from urllib.parse import urlsplit
    parts = urlsplit(amqp_url)
    url = f"amqp://{parts.username or 'guest'}:s3cret-wrong@{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"
    line = _one_line(*cli({"HUB_BROKER_URL": url}, "serve", "--port", "18999"), f"{parts.hostname}:{parts.port or 5672}")
    assert "authentication refused" in line and line.startswith("broker amqp://")
