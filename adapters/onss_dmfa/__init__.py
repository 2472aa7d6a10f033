"""ONSS DmfA: consultation of a worker's quarterly declarations (SOAP, dmfa-consultation-v1.wsdl
around the published DmfAConsultationRequest/Answer_20224 schemas)."""
from __future__ import annotations

from hub.ports import Adapter
from adapters.onss_dmfa import contract
from adapters.onss_dmfa.conformance import conformance
from adapters.onss_dmfa.enricher import DmfAEnricher, make_enricher
from adapters.onss_dmfa.simulator import make_simulator

__all__ = ["ADAPTER", "DmfAEnricher"]

ADAPTER = Adapter(
    name="onss.dmfa", system="ONSS DmfA", protocol="SOAP",
    contracts=(contract.WSDL_FILE, contract.REQUEST_XSD, contract.ANSWER_XSD, contract.ENRICHMENT_FILE),
    make_simulator=make_simulator, conformance=conformance, make_enricher=make_enricher)
