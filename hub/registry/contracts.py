"""Loading the message contracts: every contracts/messages/<name>.schema.json, compiled once."""
from __future__ import annotations

import json
from pathlib import Path

from hub.domain.contracts import CONTRACT_SUFFIX, MessageContract
from hub.domain.errors import RegistryError

__all__ = ["load_contracts"]


def load_contracts(messages_dir: Path) -> dict[str, MessageContract]:
    """Every contracts/messages/<name>.schema.json, by name; a bad one stops start-up (RegistryError)."""
    contracts: dict[str, MessageContract] = {}
    messages_dir = Path(messages_dir)
    if not messages_dir.is_dir():
        raise RegistryError(messages_dir.name, "/", "the message contracts directory does not exist")
    for path in sorted(messages_dir.glob("*" + CONTRACT_SUFFIX)):
        name = path.name[: -len(CONTRACT_SUFFIX)]
        source = f"{messages_dir.name}/{path.name}"
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(source, "/", f"not readable JSON: {exc}") from None
        contracts[name] = MessageContract(name, schema, source=source)
    return contracts
