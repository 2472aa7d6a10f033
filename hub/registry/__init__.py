"""The registry: everything the hub reads from contracts/, loaded and cross-checked at start-up.

    files.py          the one YAML reader; every fault names its file and field (RegistryError)
    contracts.py      contracts/messages/*.schema.json: the message contracts, compiled
    flows.py          contracts/parties.yaml and contracts/flows/*.yaml: the protocol agreement's flows
    designations.py   contracts/designations.yaml: the persons designated for special categories
    consultations.py  contracts/consultations.yaml: the grounds of Art. 25 and 26
    clocks.py         contracts/clocks.yaml: the statutory clocks
    catalogue.py      contracts/catalogue.yaml: the external contracts (sources, back offices)

`load` reads all of it once per process: compiling the contracts is the costly part of starting a
hub, and a process (a test run, a CLI command) that builds several hubs on the same unchanged files
gets the same immutable result back.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from hub.domain.clocks import ClockRules
from hub.domain.consultation import Consultation
from hub.domain.designations import Designations
from hub.domain.flows import Registry
from hub.registry.clocks import load_clocks
from hub.registry.consultations import load_consultations
from hub.registry.designations import load_designations
from hub.registry.files import default_contracts_dir
from hub.registry.flows import load_registry

__all__ = ["Contracts", "load", "load_registry", "load_designations", "load_consultations", "load_clocks",
           "default_contracts_dir"]

# What the loaders read (catalogue.yaml and the external contracts are loaded apart, on demand).
_READ = ("parties.yaml", "designations.yaml", "consultations.yaml", "clocks.yaml", "flows/*.yaml", "flows/*.yml",
         "messages/*.schema.json")


@dataclass(frozen=True)
class Contracts:
    """contracts/ as the hub runs on it: the flow registry and the rules that refer to it."""

    directory: Path
    registry: Registry
    designations: Designations
    consultations: Mapping[str, Consultation]
    clocks: ClockRules


def load(contracts_dir: Path | None = None) -> Contracts:
    """Load and cross-check contracts/ (default: the repository's); the same result while no file
    changed. A wrong file raises RegistryError (never cached)."""
    directory = Path(contracts_dir or default_contracts_dir()).resolve()
    return _load(directory, _fingerprint(directory))


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file the loaders read."""
    found = []
    for pattern in _READ:
        for path in directory.glob(pattern):
            st = path.stat()
            found.append((str(path.relative_to(directory)), st.st_size, st.st_mtime_ns))
    return tuple(sorted(found))


@lru_cache(maxsize=8)
def _load(directory: Path, _fingerprint: tuple[tuple[str, int, int], ...]) -> Contracts:
    registry = load_registry(directory)
    return Contracts(directory, registry, load_designations(directory, registry),
                     MappingProxyType(load_consultations(directory, registry)), load_clocks(directory, registry))
