"""The two hub configurations a run measures, and `wib-hub` in a process of its own.

    production  RabbitMQ + PostgreSQL, in a fresh schema and under a fresh queue prefix
    embedded    SQLite file + the embedded transport

Both in a temporary directory; schema, queues and directory are removed after the run.
"""
from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.services import delete_hub_queues, queue_prefix, rabbitmq_version, temp_schema
from hub.infra.settings import Settings


@dataclass
class HubSetup:
    settings: Settings
    versions: dict[str, str]   # of the store and broker, reported with the figures


@contextmanager
def hub_setup(config: str, args: argparse.Namespace) -> Iterator[HubSetup]:
    """The settings of one hub run (`production` or `embedded`), removed with all they hold after."""
    with tempfile.TemporaryDirectory(prefix="wib-bench-") as tmpdir:
        data = Path(tmpdir) / "data"
        if config == "embedded":
            yield HubSetup(Settings(data_dir=data, database_url=f"sqlite:///{data / 'hub.db'}", broker_url=None,
                                    queue_prefix="", log_level="WARNING"),
                           {"SQLite": sqlite3.sqlite_version})
            return
        with temp_schema(args.database_url) as schema:
            settings = Settings(data_dir=data, database_url=schema.url, broker_url=args.amqp_url,
                                queue_prefix=queue_prefix(), log_level="WARNING")
            try:
                yield HubSetup(settings, {"PostgreSQL": schema.server_version,
                                          "RabbitMQ": rabbitmq_version(args.amqp_url)})
            finally:
                delete_hub_queues(settings)


def start_hub_process(st: Settings, command: list[str], log_name: str | None = None,
                      **env_extra: str) -> tuple[subprocess.Popen, Path]:
    """`wib-hub <command>` in its own process, configured through HUB_* as in a deployment; its
    output goes to a log file in the data directory (returned), read when it fails to start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(st.data_dir), HUB_DATABASE_URL=st.resolved_database_url(),
               HUB_BROKER_URL=st.resolved_broker_url(), HUB_QUEUE_PREFIX=st.queue_prefix,
               HUB_LOG_LEVEL="WARNING",
               # the benchmark measures the pipeline, not the per-party limiter (its clients poll hard)
               HUB_RATE_LIMIT_PER_SECOND="0", **env_extra)
    st.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = st.data_dir / f"{log_name or command[0]}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-c", "from hub.interfaces.cli.main import main; main()",
                                 *command], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return proc, log_path


def stop_hub_process(proc: subprocess.Popen) -> None:
    """SIGINT, as an operator stops it: the process closes its hub (and seals the audit tail)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
