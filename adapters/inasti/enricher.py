"""The INASTI enricher: the self-employed career of an applicant for a professional card
(cooperation agreement on the single permit, Art. 14; source `inasti.self-employed`)."""
from __future__ import annotations

import requests

from hub.ports import EnrichmentRecord, SourceConfig, Subject
from adapters.common import ClientEnricher, pooled_session

from .client import SelfEmployedClient, endpoint
from .mapping import CONTRACT, CONTRACT_VERSION, SOURCE, to_record


class SelfEmployedEnricher(ClientEnricher):
    """Enricher (hub.ports): asks SelfEmployed v2 about the subject; only for self-employed subjects."""

    name = SOURCE
    contract = CONTRACT
    contract_version = CONTRACT_VERSION
    client: SelfEmployedClient

    def applies(self, subject: Subject) -> bool:
        return subject.self_employed

    def fetch(self, subject: Subject) -> EnrichmentRecord:
        answer = self.client.consult(subject)
        return to_record(answer.body, subject.insz, answer.retrieved_at, answer.elapsed_ms)


def make_enricher(config: SourceConfig, session: requests.Session | None = None) -> SelfEmployedEnricher:
    if session is None:
        session = pooled_session(config)
    return SelfEmployedEnricher(SelfEmployedClient(endpoint(config.url), session, config.timeout_s))
