"""`LimosaEnricher`: the L1 declarations of a posted worker (Programme Law (I) of 27 December 2006,
Art. 137-153), as the canonical record of contracts/enrichment/onss.limosa.schema.json."""
from __future__ import annotations

import time

import httpx

from hub.ports import EnrichmentRecord, SourceConfig, SourceUnavailable, Subject
from adapters.common import ClientEnricher
from adapters.onss_limosa import mapping
from adapters.onss_limosa.client import LimosaClient


class LimosaEnricher(ClientEnricher):
    name = mapping.SOURCE
    contract = mapping.CONTRACT
    contract_version = mapping.VERSION
    client: LimosaClient

    def applies(self, subject: Subject) -> bool:
        return subject.posted

    def fetch(self, subject: Subject) -> EnrichmentRecord:
        started = time.perf_counter()
        declarations = self.client.by_ssin(subject.insz)
        try:
            return mapping.to_record(subject, declarations, (time.perf_counter() - started) * 1000)
        except mapping.MalformedAnswer as err:
            raise SourceUnavailable(f"Limosa answer: {err}") from err


def make_enricher(config: SourceConfig, http: httpx.Client | None = None) -> LimosaEnricher:
    return LimosaEnricher(LimosaClient(config, http))
