"""ONSS Limosa: consultation of L1 posting declarations (REST, limosa-v1.openapi.yaml, private_key_jwt)."""
from __future__ import annotations

from hub.ports import Adapter
from adapters.onss_limosa import contract
from adapters.onss_limosa.conformance import conformance
from adapters.onss_limosa.enricher import LimosaEnricher, make_enricher
from adapters.onss_limosa.simulator import make_simulator

__all__ = ["ADAPTER", "LimosaEnricher"]

ADAPTER = Adapter(
    name="onss.limosa", system="ONSS Limosa", protocol="REST",
    contracts=(contract.REST_FILE, contract.ENRICHMENT_FILE),
    make_simulator=make_simulator, conformance=conformance, make_enricher=make_enricher)
