"""The sandbox: every simulator on its own local port, and the OAuth key the hub uses with them.

`wib-hub sandbox` runs it in the foreground; the embedded default starts it inside the hub so that
enrichment works on a fresh machine with no source system reachable. The hub's client key is kept
in `<data_dir>/sandbox/client-key.pem` (public half registered with every REST simulator), so
`wib-hub contracts test` can use the same key against the same simulators. The back-office simulators
(DVZ, regions) take a static API key instead, `backoffice_api_key` (adapters/backoffice/simulator.py);
the pollers' `--sandbox` uses it (`python -m adapters.dvz --help`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from hub.ports import Adapter, SimulatorConfig, SourceConfig, Toolkit, load_adapters
from adapters.backoffice.simulator import SIMULATOR_API_KEY
from adapters.oauth import generate_key
from adapters.population import Population
from adapters.simulator import Faults, RunningSimulator, serve_in_thread

CLIENT_ID = "wib-hub"


def client_key(directory: Path) -> tuple[bytes, bytes]:
    """The sandbox client's key pair, created on first use (private key file mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / "client-key.pem", directory / "client-key.pub.pem"
    if not private.exists():
        priv, pub = generate_key()
        private.touch(mode=0o600)
        private.write_bytes(priv)
        public.write_bytes(pub)
    return private.read_bytes(), public.read_bytes()


@dataclass
class Sandbox:
    key_dir: Path
    seed: int = 2026
    host: str = "127.0.0.1"
    running: dict[str, RunningSimulator] = field(default_factory=dict)
    # the API key of the back-office simulators (BACKOFFICE_API_KEY of the pollers); not a field
    backoffice_api_key: ClassVar[str] = SIMULATOR_API_KEY

    def start(self, names: list[str] | None = None, ports: dict[str, int] | None = None) -> dict[str, str]:
        """Start the simulators of `names` (default: all installed adapters); returns name → URL."""
        private, public = client_key(self.key_dir)
        adapters = load_adapters()
        for name in names or list(adapters):
            if name in self.running:
                continue
            config = SimulatorConfig(Population(self.seed), Faults(seed=self.seed), {CLIENT_ID: public})
            app = adapters[name].make_simulator(config)
            self.running[name] = serve_in_thread(name, app, self.host, (ports or {}).get(name, 0))
        return self.urls()

    def urls(self) -> dict[str, str]:
        return {name: sim.url for name, sim in self.running.items()}

    def faults(self, name: str) -> Faults:
        return self.running[name].injector.faults

    def source_config(self, name: str, timeout_s: float = 5.0) -> SourceConfig:
        private, _ = client_key(self.key_dir)
        return SourceConfig(self.running[name].url, timeout_s=timeout_s, client_id=CLIENT_ID,
                            private_key_pem=private)

    def stop(self) -> None:
        for sim in self.running.values():
            sim.stop()
        self.running.clear()


_shared: dict[Path, Sandbox] = {}
_shared_lock = threading.Lock()


def shared_sandbox(key_dir: Path, names: list[str]) -> Sandbox:
    """One sandbox per key directory and process: hubs started in the same process share it."""
    with _shared_lock:
        box = _shared.setdefault(key_dir.resolve(), Sandbox(key_dir))
        box.start(names)
        return box


def enricher_adapters() -> dict[str, Adapter]:
    return {name: a for name, a in load_adapters().items() if a.make_enricher is not None}


# What the hub's tools reach through the `wib_hub.toolkit` entry point (hub.ports.Toolkit).
TOOLKIT = Toolkit(sandbox=Sandbox, shared_sandbox=shared_sandbox, population=Population)
