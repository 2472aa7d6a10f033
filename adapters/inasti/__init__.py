"""INASTI self-employed register (service SelfEmployed v2 via the CBSS): the career of an applicant
for a professional card in the general register of the self-employed (cooperation agreement on
the single permit, Art. 14). SOAP; contracts in contracts/inasti/ and contracts/cbss/."""
from hub.ports import Adapter

from .conformance import conformance
from .enricher import SelfEmployedEnricher, make_enricher
from .simulator import make_simulator

ADAPTER = Adapter(
    name="inasti.self-employed",
    system="INASTI self-employed register",
    protocol="SOAP",
    contracts=("inasti/self-employed-v2.wsdl", "inasti/self-employed-v2.xsd", "cbss/common-types-v3.xsd",
               "enrichment/inasti.self-employed.schema.json"),
    make_simulator=make_simulator,
    conformance=conformance,
    make_enricher=make_enricher,
)

__all__ = ["ADAPTER", "SelfEmployedEnricher"]
