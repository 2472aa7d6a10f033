"""Documents arriving in a message (passport copy, contract, medical certificate…) are checked
before anything is stored: the content must be what it says it is.

- `content_base64` decodes (strict alphabet) and its SHA-256 is the declared `sha256`;
- the type sniffed from the first bytes is the declared `media_type` (a PDF called a PNG, or an
  executable called a PDF, is refused);
- the file name is a plain name: no path, no leading dot, no "..", an extension that fits the type.

The contract already bounds sizes and the file name's characters; these are the checks a schema
cannot make. Problems use the contract-violation shape: path, rule, message — never the content.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Iterator

from hub.domain.errors import ContractViolation

SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
}


def sniff(content: bytes) -> str | None:
    """The media type the first bytes show, among those the contracts accept."""
    for media_type, magics in SIGNATURES.items():
        if content.startswith(magics):
            return media_type
    return None


def documents_in(payload: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON pointer, document) for every document object anywhere in the payload."""
    if isinstance(payload, dict):
        if "content_base64" in payload and "media_type" in payload:
            yield pointer, payload
            return
        for key, value in payload.items():
            yield from documents_in(value, f"{pointer}/{key}")
    elif isinstance(payload, list):
        for i, value in enumerate(payload):
            yield from documents_in(value, f"{pointer}/{i}")


def problems(payload: Any) -> list[dict[str, str]]:
    found = []
    for pointer, doc in documents_in(payload):
        declared, name = doc.get("media_type"), str(doc.get("filename", ""))
        try:
            content = base64.b64decode(doc.get("content_base64", ""), validate=True)
        except (binascii.Error, ValueError, TypeError):
            found.append({"path": f"{pointer}/content_base64", "rule": "document",
                          "message": "content is not valid base64"})
            continue
        if hashlib.sha256(content).hexdigest() != doc.get("sha256"):
            found.append({"path": f"{pointer}/sha256", "rule": "document",
                          "message": "sha256 does not match the content"})
        sniffed = sniff(content)
        if sniffed != declared:
            found.append({"path": f"{pointer}/media_type", "rule": "document",
                          "message": f"declared {declared}, content is {sniffed or 'of no accepted type'}"})
        if name.startswith(".") or ".." in name or not name.lower().endswith(EXTENSIONS.get(declared, ())):
            found.append({"path": f"{pointer}/filename", "rule": "document",
                          "message": f"file name must be a plain name ending in {' or '.join(EXTENSIONS.get(declared, ('?',)))}"})
    return found


def check(payload: Any) -> None:
    """Raise ContractViolation (422) naming every document that is not what it says."""
    found = problems(payload)
    if found:
        raise ContractViolation(found)
