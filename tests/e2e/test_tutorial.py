"""docs/tutorial.md, run as a newcomer runs it.

The tutorial's ```bash blocks, in order, become one bash script (`set -euo pipefail`) run in one
session against a real `wib-hub serve` (the installed command, in a process of its own) — the
```sh block of the first terminal is the one the test replaces by starting serve itself. Both run
in a temporary directory laid out like a clean clone's root: `.venv` is a symlink to the venv the
tests run in, so `.venv/bin/wib-hub` resolves. Serve keeps its files in the user data directory, as
it does for a user; here XDG_DATA_HOME (which that directory honours on Linux) is a temporary
directory of the test, the same for serve and the script, as a user's environment is the same in
both terminals (the tutorial finds the directory with `wib-hub doctor --data-dir`). Only the port
differs: serve listens on a free one and the script gets it as HUB_URL, which the tutorial honours.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from tests.support.served import dossier_row, free_port

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial.md"
VENV = Path(sys.prefix)
WIB_HUB = VENV / "bin" / "wib-hub"


def tutorial_script() -> str:
    """The ```bash blocks of the tutorial, in order, as one script."""
    blocks = re.findall(r"^```bash[ \t]*\n(.*?)^```[ \t]*$", TUTORIAL.read_text(), re.DOTALL | re.MULTILINE)
    assert blocks, "docs/tutorial.md has no ```bash block"
    return "set -euo pipefail\n" + "\n".join(blocks)


def clean_env(clone_root: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any HUB_* (as on a newcomer's machine), direct to localhost,
    the user data directory under the clone root's `xdg-data/` (never the real one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["XDG_DATA_HOME"] = str(clone_root / "xdg-data")
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", COLUMNS="160", **extra)
    return env


@pytest.fixture
def clone_root(tmp_path) -> Path:
    if not WIB_HUB.exists():
        pytest.skip(f"no installed wib-hub command in {VENV}")
    (tmp_path / ".venv").symlink_to(VENV, target_is_directory=True)
    return tmp_path


@pytest.fixture
def serve(clone_root) -> Iterator[str]:
    """`.venv/bin/wib-hub serve` from the clone root, on a free port; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = clone_root / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([".venv/bin/wib-hub", "serve"], cwd=clone_root,
                                env=clean_env(clone_root, HUB_PORT=str(port), HUB_LOG_LEVEL="WARNING"),
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"wib-hub serve exited {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"wib-hub serve not ready within 30 s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)   # as an operator stops it: the hub closes and seals its tail
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_tutorial_runs_from_a_clean_clone_to_a_notified_dossier(serve, clone_root):
    script = tutorial_script()
    run = subprocess.run(["bash", "-c", script], cwd=clone_root, env=clean_env(clone_root, HUB_URL=serve),
                         capture_output=True, text=True, timeout=240, check=False)
    output = f"--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}\n--- serve.log\n" \
             f"{(clone_root / 'serve.log').read_text()}"
    assert run.returncode == 0, output

    # the states the tutorial shows, in the order it shows them
    states = re.findall(r"^dossier state: (\w+)$", run.stdout, re.MULTILINE)
    assert states == ["submitted", "under_examination", "residence_decided", "decided", "notified"], output

    # and the store agrees: the dossier the script submitted is notified
    dossier_id = json.loads((clone_root / "submitted.json").read_text())["dossier_id"]
    assert not (clone_root / "var").exists(), "serve kept its files under the working directory"
    engine = create_engine(f"sqlite:///{clone_root / 'xdg-data' / 'wib-hub' / 'hub.db'}")
    try:
        assert dossier_row(engine, dossier_id)["state"] == "notified"
    finally:
        engine.dispose()
    assert "audit chain intact" in run.stdout, output
