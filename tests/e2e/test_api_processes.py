"""`wib-hub api --processes N`: N processes answer on one port; a signal stops them all (exit 0);
one dying on its own ends the set with exit 1, for the supervisor to start it again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.served import free_port


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _start(tmp_path: Path, processes: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(tmp_path / "data"), HUB_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-c", "from hub.interfaces.cli.main import main; main()",
                             "api", "--processes", str(processes), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if len(_children(proc.pid)) == processes and httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the API processes did not start")


def test_processes_share_the_port_and_stop_together(tmp_path):
    proc, base = _start(tmp_path, 2)
    children = _children(proc.pid)
    assert len(set(children)) == 2
    with httpx.Client(base_url=base) as client:
        answers = [client.get("/livez").status_code for _ in range(20)]
        assert answers == [200] * 20
        assert client.post("/v1/messages", json={}).status_code == 401   # each process is a whole hub
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{c}").exists() and "zombie" not in Path(f"/proc/{c}/status").read_text()
                   for c in children)


def test_a_process_that_dies_ends_the_set_non_zero(tmp_path):
    proc, _ = _start(tmp_path, 2)
    first, second = _children(proc.pid)
    os.kill(first, signal.SIGKILL)
    assert proc.wait(timeout=30) == 1
    deadline = time.monotonic() + 10
    while Path(f"/proc/{second}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{second}").exists()
