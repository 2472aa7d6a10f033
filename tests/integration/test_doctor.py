"""`wib-hub doctor`: the start-up checks against the configuration in effect, a table of rows;
exit 0 when none fails. Green on a fresh embedded default (it creates nothing) and on PostgreSQL +
RabbitMQ; red, with the row named, when the broker does not answer."""
from __future__ import annotations

import os
import socket
import uuid

import pytest
from typer.testing import CliRunner

from hub.interfaces.cli.main import app
from tests.support.served import wait_until


def _clean_env(**values: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HUB_") and not k.startswith("HUB_TEST_")}
    env.update(values)
    env["COLUMNS"] = "250"
    return env


def _doctor(env: dict[str, str | None]):
    return CliRunner().invoke(app, ["doctor"], env=env)


def _row(output: str, check: str) -> str:
    rows = [line for line in output.splitlines() if f" {check} " in line]
    assert rows, output
    return rows[0]


CHECKS = ("settings", "data directory", "contracts", "store reachable", "migrations at head", "broker reachable",
          "queues declared", "workers alive", "token key", "audit signing key", "clients file", "sources")


def test_green_on_a_fresh_embedded_default_and_creates_nothing(tmp_path):
    data = tmp_path / "var"
    result = _doctor(_clean_env(HUB_DATA_DIR=str(data)))
    assert result.exit_code == 0, result.output
    for check in CHECKS:
        _row(result.output, check)
    assert "✗" not in result.output
    assert "not created yet" in _row(result.output, "store reachable")
    assert str(data.resolve()) in _row(result.output, "data directory")
    assert not data.exists()


def test_green_after_the_embedded_hub_started(tmp_path):
    from hub.bootstrap import build_hub
    from hub.infra.settings import Settings
    data = tmp_path / "var"
    hub = build_hub(Settings(data_dir=data))
    hub.start_workers(role="serve")
    try:
        assert wait_until(lambda: hub.workers(), timeout=10)
        result = _doctor(_clean_env(HUB_DATA_DIR=str(data)))
    finally:
        hub.close()
    assert result.exit_code == 0, result.output
    assert "1 process (serve " in _row(result.output, "workers alive"), result.output
    assert "!" not in "".join(line[:4] for line in result.output.splitlines() if "│" in line), result.output
    assert "at head" in _row(result.output, "migrations at head")
    assert "mode 0600" in _row(result.output, "token key")
    assert "16 parties" in _row(result.output, "clients file")


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_green_on_postgresql_and_rabbitmq(tmp_path, pg_schema_url, amqp_url):
    from hub.bootstrap import build_hub, hub_queues
    from hub.infra.settings import Settings
    prefix = f"doctor-{uuid.uuid4().hex[:8]}."
    settings = Settings(data_dir=tmp_path / "var", database_url=pg_schema_url, broker_url=amqp_url,
                        queue_prefix=prefix)
    hub = build_hub(settings)
    hub.start_workers()
    try:
        assert wait_until(lambda: hub.workers(), timeout=10)
        result = _doctor(_clean_env(HUB_DATA_DIR=str(tmp_path / "var"), HUB_DATABASE_URL=pg_schema_url,
                                    HUB_BROKER_URL=amqp_url, HUB_QUEUE_PREFIX=prefix))
        assert result.exit_code == 0, result.output
        assert "!" not in "".join(line[:4] for line in result.output.splitlines() if "│" in line), result.output
        assert "1 process (worker " in _row(result.output, "workers alive")
        assert "at head" in _row(result.output, "migrations at head")
        assert "answers" in _row(result.output, "broker reachable")
        assert "declared" in _row(result.output, "queues declared")
        assert "guest@" not in result.output and ":guest" not in result.output
    finally:
        hub.stop_workers()
        for queue in hub_queues(settings, hub.registry):
            hub.transport.delete(queue)
        hub.close()


def test_red_with_the_broker_row_named_when_the_broker_does_not_answer(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _doctor(_clean_env(HUB_DATA_DIR=str(tmp_path / "var"),
                                HUB_BROKER_URL=f"amqp://guest:s3cret@127.0.0.1:{port}/%2F"))
    assert result.exit_code == 1, result.output
    row = _row(result.output, "broker reachable")
    assert "✗" in row and f"127.0.0.1:{port}" in row and "connection refused" in row
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_red_on_a_bad_setting(tmp_path):
    result = _doctor(_clean_env(HUB_DATA_DIR=str(tmp_path / "var"), HUB_OFFICE_HOURS="whenever"))
    assert result.exit_code == 1
    assert "HUB_OFFICE_HOURS" in _row(result.output, "settings")
    result = _doctor(_clean_env(HUB_DATA_DIR=str(tmp_path / "var"), HUB_PORT="abc"))
    assert result.exit_code == 1 and "HUB_PORT: expected an integer" in result.output
