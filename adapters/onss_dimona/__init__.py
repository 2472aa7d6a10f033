"""ONSS Dimona adapter: Dimona periods of a worker (REST API v2, bulk consultation for the batch)
and an employer's personnel file (SOAP, published ONSS schemas). Cooperation agreement on the
single permit, Art. 14.
"""
from __future__ import annotations

from hub.ports import Adapter

from .conformance import conformance
from .enricher import DimonaEnricher, make_enricher
from .simulator import make_simulator

__all__ = ["ADAPTER", "DimonaEnricher"]

ADAPTER = Adapter(
    name="onss.dimona",
    system="ONSS Dimona",
    protocol="REST+SOAP",
    contracts=("onss/dimona/dimona-rest-v2.openapi.yaml",
               "onss/dimona/personnel-file-consultation-v1.wsdl",
               "onss/dimona/PersonnelFileConsultationRequest_20231.xsd",
               "onss/dimona/PersonnelFileConsultationAnswer_20223.xsd",
               "enrichment/onss.dimona.schema.json"),
    make_simulator=make_simulator,
    conformance=conformance,
    make_enricher=make_enricher,
)
