"""`DimonaEnricher`: the Dimona periods of a worker as an EnrichmentRecord (source "onss.dimona",
contract dimona-rest v2; cooperation agreement on the single permit, Art. 14).

`fetch_many` is the batch path (100,000 INSZ a night): the processor's bulk consultation in chunks
of 500 over one keep-alive httpx.Client, one token, and the mapping only.
"""
from __future__ import annotations

import time
from typing import Iterable

import httpx

from hub.ports import EnrichmentRecord, SourceConfig, SourceUnavailable, Subject, utcnow

from .client import DimonaClient
from .mapping import REST_CONTRACT, REST_VERSION, SOURCE, MalformedAnswer, from_rest, to_record


class DimonaEnricher:
    name = SOURCE
    contract = REST_CONTRACT
    contract_version = REST_VERSION

    def __init__(self, config: SourceConfig, http: httpx.Client | None = None, *, validate: bool = True):
        self.client = DimonaClient(config, http, validate=validate)

    def applies(self, subject: Subject) -> bool:
        """Every employed worker has Dimona periods; posted and self-employed people may too."""
        return True

    def fetch(self, subject: Subject) -> EnrichmentRecord:
        started = time.perf_counter()
        periods = self.client.periods_for(subject.insz)
        return self._record(subject, periods, started)

    def fetch_many(self, subjects: Iterable[Subject], *, running_only: bool = False) -> list[EnrichmentRecord]:
        """One record per subject, in order; the bulk search in chunks of 500. With `running_only`
        (the daily batch, the follow-up) only the periods running on the subjects' common reference
        date are asked for: less to carry, check and map."""
        subjects = list(subjects)
        started = time.perf_counter()
        dates = {s.reference_date for s in subjects}
        on = dates.pop() if running_only and len(dates) == 1 else None
        by_insz = self.client.periods_for_many((s.insz for s in subjects), on)
        retrieved = utcnow()
        now = time.perf_counter()
        share = (now - started) / max(len(subjects), 1)
        return [self._record(s, by_insz[s.insz], now - share, retrieved, now) for s in subjects]

    def _record(self, subject: Subject, periods: list[dict], started: float, retrieved=None,
                now: float | None = None) -> EnrichmentRecord:
        try:
            canonical = [from_rest(p) for p in periods]
            return to_record(subject, canonical, started, now or time.perf_counter(), retrieved_at=retrieved)
        except MalformedAnswer as err:
            raise SourceUnavailable(f"onss.dimona: {err}") from err

    def close(self) -> None:
        self.client.close()


def make_enricher(config: SourceConfig) -> DimonaEnricher:
    return DimonaEnricher(config)
