"""Reading the files of contracts/: the one YAML reader and the one way a file's fault is named.

Every loader of hub.registry parses through `parse` (pydantic models that forbid unknown fields)
and reads through `read_yaml`, so that a wrong file always stops start-up with a RegistryError
naming the file and the field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from hub.domain.errors import RegistryError

__all__ = ["FileModel", "default_contracts_dir", "parse", "read_yaml"]

# libyaml's parser when PyYAML was built with it: the same safe loader, several times faster
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FileModel(BaseModel):
    """The base of every file model: unknown fields are refused, parsed values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def default_contracts_dir() -> Path:
    """The repository's contracts/ directory."""
    return Path(__file__).resolve().parents[2] / "contracts"


def read_yaml(path: Path, file: str) -> dict[str, Any]:
    """A YAML file holding a mapping; `file` is its name relative to contracts/, for the error."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(file, "(file)", f"not readable YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(file, "(file)", "expected a mapping at the top level")
    return data


def parse(model: type[BaseModel], data: Any, file: str) -> Any:
    """`data` as `model`; the first fault names its field (and how many more there are)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RegistryError(file, _field_of(first), first["msg"] + more) from None


def _field_of(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(file)"
