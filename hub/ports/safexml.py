"""Untrusted XML, parsed safely: no DTD, no entities, no network, bounded size (ARCHITECTURE:
Conventions). The contract tools and every SOAP adapter (client and simulator) parse through here.

A DOCTYPE or an entity declaration is refused before lxml builds anything: that is where XXE and
billion laughs live, and lxml's own switches only act once parsing has started.
"""
from __future__ import annotations

from lxml import etree

from hub.domain.errors import MalformedMessage

MAX_XML_BYTES = 5 * 1024 * 1024


class UnsafeXml(MalformedMessage, ValueError):
    """A DOCTYPE, an entity declaration, or a document over the size bound."""

    code = "unsafe_document"


def safe_parser(remove_blank_text: bool = False) -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=remove_blank_text)


def refuse_unsafe(data: bytes, limit: int = MAX_XML_BYTES) -> None:
    if len(data) > limit:
        raise UnsafeXml(f"XML document over {limit} bytes")
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise UnsafeXml("DOCTYPE and entity declarations are not accepted")


def parse_untrusted(data: bytes, limit: int = MAX_XML_BYTES, *, remove_blank_text: bool = False) -> etree._Element:
    """The document element; UnsafeXml as above, lxml's XMLSyntaxError when not well-formed."""
    refuse_unsafe(data, limit)
    return etree.fromstring(data, safe_parser(remove_blank_text))
