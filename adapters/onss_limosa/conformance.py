"""Conformance of ANY Limosa endpoint to limosa-v1.openapi.yaml: what the hub's client relies on.

Needs `SourceConfig.private_key_pem` of a client registered at the endpoint; only assumes the
synthetic population of seed 2026 (the people of `Population().sample()`).
"""
from __future__ import annotations

from typing import Callable

import httpx

from hub.ports import Check, SourceConfig, Subject
from adapters.common import reachability, run_check, with_and_without
from adapters.oauth import ASSERTION_TYPE, client_assertion, generate_key
from adapters.onss_limosa import contract
from adapters.onss_limosa.client import LimosaClient
from adapters.onss_limosa.enricher import LimosaEnricher
from adapters.population import Population


def _people(pop: Population) -> tuple[str, str]:
    return with_and_without(pop.sample(300), lambda insz: bool(pop.person(insz).postings))


def conformance(config: SourceConfig) -> list[Check]:
    if dead := reachability(config):   # a dead URL: one failed check, not every check on the same cause
        return dead
    pop = Population()
    posted, plain = _people(pop)
    base = config.url.rstrip("/")
    api = base + contract.BASE_PATH
    checks: list[Check] = []

    def check(name: str, fn: Callable[[], str | None]) -> None:
        run_check(checks, name, fn)

    def expect(r: httpx.Response, status: int, component: str) -> dict:
        assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.status_code}, expected {status}"
        body = r.json()
        found = contract.errors(component, body)
        assert not found, f"{component}: {found[:3]}"
        return body

    with httpx.Client(timeout=config.timeout_s) as http:
        client = LimosaClient(config, http)
        auth = client.auth

        def token() -> str:
            r = http.post(base + contract.TOKEN_PATH, data={
                "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "scope": contract.SCOPE,
                "client_assertion": client_assertion(config.client_id, config.private_key_pem, base + contract.TOKEN_PATH)})
            assert r.status_code == 200 and r.json().get("access_token"), f"token endpoint answered {r.status_code}"
            return "bearer token issued"

        def foreign_key() -> str:
            other, _ = generate_key()
            r = http.post(base + contract.TOKEN_PATH, data={
                "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(config.client_id, other, base + contract.TOKEN_PATH)})
            assert r.status_code in (400, 401), f"an assertion signed by an unknown key got {r.status_code}"
            return f"HTTP {r.status_code}"

        def no_token() -> str:
            r = http.get(api + "/declarations", params={"ssin": posted})
            assert r.status_code == 401, f"no bearer token answered {r.status_code}"
            return "HTTP 401"

        def by_ssin() -> str:
            body = expect(http.get(api + "/declarations", params={"ssin": posted}, auth=auth), 200, "DeclarationList")
            got = {d["id"] for d in body["declarations"]}
            want = {p.declaration_id for p in pop.person(posted).postings}
            assert got == want, f"declarations {sorted(got)}, the population has {sorted(want)}"
            return f"{len(got)} declaration(s)"

        def none() -> str:
            body = expect(http.get(api + "/declarations", params={"ssin": plain}, auth=auth), 200, "DeclarationList")
            assert body["declarations"] == [], "a worker who is not posted has declarations"
            return "empty list"

        def by_id() -> str:
            ident = pop.person(posted).postings[0].declaration_id
            body = expect(http.get(f"{api}/declarations/{ident}", auth=auth), 200, "Declaration")
            assert body["id"] == ident and body["worker"]["ssin"] == posted, "another declaration came back"
            return ident

        def unknown_id() -> str:
            expect(http.get(f"{api}/declarations/L1-0000000000", auth=auth), 404, "Problem")
            return "HTTP 404"

        def by_employer() -> str:
            p = pop.person(posted).postings[0]
            body = expect(http.get(api + "/declarations", params={"employer": p.belgian_client}, auth=auth),
                          200, "DeclarationList")
            assert p.declaration_id in {d["id"] for d in body["declarations"]}, "the client's declaration is missing"
            assert all(d["belgianClient"]["enterpriseNumber"] == p.belgian_client for d in body["declarations"]), \
                "a declaration of another client came back"
            return f"{len(body['declarations'])} declaration(s) for {p.belgian_client}"

        def bad(params: dict[str, str]) -> Callable[[], str]:
            def run() -> str:
                expect(http.get(api + "/declarations", params=params, auth=auth), 400, "Problem")
                return "HTTP 400"
            return run

        def record() -> str:
            rec = LimosaEnricher(client).fetch(Subject(posted, pop.today, posted=True))
            found = contract.enrichment_errors(rec.data)
            assert rec.status == "found" and not found, f"{rec.status}, {found[:3]}"
            return f"posted on reference date: {rec.data['posted_on_reference_date']}"

        check("oauth.token-private-key-jwt", token)
        check("oauth.unknown-key-refused", foreign_key)
        check("auth.required", no_token)
        check("declarations.by-ssin", by_ssin)
        check("declarations.by-ssin-none", none)
        check("declarations.by-id", by_id)
        check("declarations.unknown-id-404", unknown_id)
        check("declarations.by-employer", by_employer)
        check("declarations.bad-ssin-400", bad({"ssin": "123"}))
        check("declarations.no-criterion-400", bad({}))
        check("enrichment-record-valid", record)
    return checks
