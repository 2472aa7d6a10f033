"""Shared by the unit and integration tests of test_adapter_inasti."""
from __future__ import annotations

import xmlschema

from adapters.inasti import contract as c
from adapters.population import (
    Population,
)

POP = Population()


# validate against the repo copies, loaded independently of the adapter's cached schema
XSD = xmlschema.XMLSchema(str(c.CONTRACTS_DIR / "inasti" / "self-employed-v2.xsd"))
