"""`DmfAEnricher`: the worker's last four DmfA quarters (cooperation agreement on the single permit,
Art. 14), as the canonical record of contracts/enrichment/onss.dmfa.schema.json."""
from __future__ import annotations

import time

import requests

from hub.ports import EnrichmentRecord, SourceConfig, SourceUnavailable, Subject
from adapters.common import ClientEnricher, pooled_session
from adapters.onss_dmfa import mapping
from adapters.onss_dmfa.client import DmfAClient


class DmfAEnricher(ClientEnricher):
    name = mapping.SOURCE
    contract = mapping.CONTRACT
    contract_version = mapping.VERSION
    client: DmfAClient

    def applies(self, subject: Subject) -> bool:
        return True

    def fetch(self, subject: Subject) -> EnrichmentRecord:
        started = time.perf_counter()
        answer = self.client.consult(subject.insz, mapping.last_quarters(subject.reference_date),
                                     legal_context=subject.legal_context,
                                     ticket=subject.ticket)
        try:
            lines = mapping.from_answer(answer.payload, subject.insz) if answer.payload is not None else []
        except mapping.MalformedAnswer as err:
            raise SourceUnavailable(f"DmfA answer: {err}") from err
        return mapping.to_record(subject, lines, (time.perf_counter() - started) * 1000)


def make_enricher(config: SourceConfig, session: requests.Session | None = None) -> DmfAEnricher:
    return DmfAEnricher(DmfAClient(config, session if session is not None else pooled_session(config)))
