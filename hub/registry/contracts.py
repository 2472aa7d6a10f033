"""Loading the message contracts: every contracts/messages/<name>.schema.json, compiled once.

Compiling a contract (checking the schema, building its walk plan, finding its bound fields —
`x-bound-to`, checked per message by the ingress — and its fast validator) is the costly part of
loading the registry, so a contract is compiled once per process for the same name
and text, wherever the file lies (a copy of contracts/ compiles nothing again). A MessageContract
is never changed after it is built, so sharing it is safe.
"""
from __future__ import annotations

import json
from functools import lru_cache
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
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(source, "/", f"not readable JSON: {exc}") from None
        contracts[name] = _compiled(name, source, text)
    return contracts


@lru_cache(maxsize=128)
def _compiled(name: str, source: str, text: str) -> MessageContract:
    """The contract of this text (a refusal is raised, never cached)."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(source, "/", f"not readable JSON: {exc}") from None
    return MessageContract(name, schema, source=source)
