"""SOAP on both sides, hardened: zeep clients and simulator-side parsing with DTDs, entities and
network access off, and bounded sizes.

Clients: `soap_client(wsdl, url, http)` — a zeep Client whose service address is `url` and whose
HTTP goes through the given requests session (timeouts set by the adapter). Simulators:
`parse_request(body)` returns the first element of the SOAP Body; `envelope(element)` and
`fault(...)` build answers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import requests
import zeep
from lxml import etree
from zeep.plugins import Plugin
from zeep.transports import Transport

from hub.ports.safexml import UnsafeXml, parse_untrusted, refuse_unsafe

__all__ = ["SOAP_ENV", "MAX_SOAP_BYTES", "ZEEP_SETTINGS", "UnsafeXml", "parse_xml", "GuardedTransport",
           "soap_client", "parse_request", "envelope", "fault"]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_SOAP_BYTES = 5 * 1024 * 1024

ZEEP_SETTINGS = zeep.Settings(strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)


def parse_xml(data: bytes, limit: int = MAX_SOAP_BYTES) -> etree._Element:
    """Parse untrusted XML (hub.ports.safexml rules); a document that is not well-formed is a ValueError."""
    try:
        return parse_untrusted(data, limit, remove_blank_text=True)
    except etree.XMLSyntaxError as err:
        raise ValueError(f"malformed XML: {err}") from err


class GuardedTransport(Transport):
    """Refuses an answer over the size bound or with a DOCTYPE/entity declaration before zeep (lxml)
    parses it: zeep's forbid_dtd only objects after parsing; XXE and billion laughs never get there."""

    def post(self, address, message, headers):
        response = super().post(address, message, headers)
        refuse_unsafe(response.content, MAX_SOAP_BYTES)
        return response


def soap_client(wsdl: Path | str, url: str, session: requests.Session | None = None,
                timeout_s: float = 10.0, plugins: Sequence[Plugin] = ()) -> zeep.Client:
    """A hardened zeep client for the local `wsdl`, whose default service talks to `url`."""
    transport = GuardedTransport(session=session or requests.Session(), timeout=timeout_s,
                                 operation_timeout=timeout_s)
    client = zeep.Client(str(wsdl), transport=transport, settings=ZEEP_SETTINGS, plugins=list(plugins))
    binding = next(iter(client.wsdl.bindings))
    # zeep's Client.service is a read-only property: bind the default service proxy to our address
    client._default_service = client.create_service(binding, url)
    return client


def parse_request(data: bytes) -> etree._Element:
    """The first child of the SOAP Body of a request."""
    root = parse_xml(data)
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if root.tag != f"{{{SOAP_ENV}}}Envelope" or body is None or len(body) == 0:
        raise ValueError("not a SOAP 1.1 envelope with a body")
    return body[0]


def envelope(element: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    etree.SubElement(env, f"{{{SOAP_ENV}}}Body").append(element)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def fault(code: str, reason: str, detail: etree._Element | None = None) -> bytes:
    """A SOAP 1.1 fault; `code` is "soapenv:Server" (transient) or "soapenv:Client" (the request is wrong)."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    f = etree.SubElement(etree.SubElement(env, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(f, "faultcode").text = code
    etree.SubElement(f, "faultstring").text = reason
    if detail is not None:
        etree.SubElement(f, "detail").append(detail)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")
