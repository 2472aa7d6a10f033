"""Conformance suite for any Dimona endpoint (ours, a partner test bed, the real one): each check
calls the endpoint as the contract describes (dimona-rest-v2.openapi.yaml, personnel-file-
consultation-v1.wsdl with the published ONSS XSDs) and says whether the answer conforms.

It assumes only that the endpoint knows the synthetic population of seed 2026.
"""
from __future__ import annotations

from typing import Any, Callable

import httpx
import requests
from lxml import etree

from hub.ports import Check, SourceConfig, SourceRefused
from adapters.common import reachability, with_and_without
from adapters.oauth import ASSERTION_TYPE, client_assertion
from adapters.population import Population
from adapters.soap import SOAP_ENV, parse_xml

from . import contract
from .client import BASE, BULK_LIMIT, SOAP_PATH, TOKEN_PATH, DimonaClient, PersonnelFileClient, personnel_file_request


def _people(population: Population) -> tuple[str, str, str]:
    """An employed worker, a worker without periods, and the first one's employer."""
    employed, unemployed = with_and_without(population.sample(400),
                                            lambda insz: bool(population.person(insz).employments))
    assert employed and unemployed, "population without both kinds of worker"
    return employed, unemployed, population.person(employed).employments[0].employer


def conformance(config: SourceConfig) -> list[Check]:
    if dead := reachability(config):   # a dead URL: one failed check, not every check on the same cause
        return dead
    population = Population(2026)
    employed, unemployed, employer = _people(population)
    expected = {e.period_id for e in population.person(employed).employments}
    root = config.url.rstrip("/")
    raw = httpx.Client(timeout=config.timeout_s)
    client = DimonaClient(config, httpx.Client(timeout=config.timeout_s))
    soap = PersonnelFileClient(config, requests.Session())
    found: dict[str, Any] = {}
    checks: list[Check] = []

    def run(name: str, fn: Callable[[], str]) -> None:
        try:
            checks.append(Check(name, True, fn() or ""))
        except Exception as err:  # noqa: BLE001 - any failure of an endpoint is a failed check, never a crash
            checks.append(Check(name, False, f"{type(err).__name__}: {err}"[:500]))

    def token() -> str:
        assert config.private_key_pem, "no client key configured"
        url = root + TOKEN_PATH
        r = raw.post(url, data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                                "client_assertion": client_assertion(config.client_id, config.private_key_pem, url),
                                "scope": "scope:dimona:declaration:consult"})
        assert r.status_code == 200, f"token endpoint answered {r.status_code}"
        body = r.json()
        assert body.get("token_type", "").lower() == "bearer" and body.get("access_token"), "no bearer token"
        return f"expires_in={body.get('expires_in')}"

    def auth_required() -> str:
        r = raw.post(root + BASE + "/periods/search", json={"ssin": employed})
        assert r.status_code == 401, f"answered {r.status_code} without a token"
        return ""

    def known_worker() -> str:
        periods = client.periods_for(employed)
        found["period"] = periods[0] if periods else None
        ids = {p["id"] for p in periods}
        assert ids == expected, f"periods {sorted(ids)} != population {sorted(expected)}"
        return f"{len(periods)} period(s)"

    def no_data() -> str:
        periods = client.periods_for(unemployed)
        assert periods == [], f"{len(periods)} period(s) for a worker without any"
        return ""

    def bulk() -> str:
        ssins = [s for s, _ in population.sample(25)]
        many = client.periods_for_many(ssins)
        assert list(many) == ssins, "bulk answer not one item per INSZ in order"
        for s in (ssins[0], ssins[-1]):
            assert many[s] == client.periods_for(s), f"bulk and single differ for {s}"
        return f"{sum(len(v) for v in many.values())} periods for {len(ssins)} workers"

    def _refused(body: dict, what: str) -> str:
        try:
            client._call("POST", "/periods/search", body)
        except SourceRefused:
            pass
        else:
            raise AssertionError(f"{what} was not refused")
        r = client.http.post(client.base + "/periods/search", json=body, auth=client.auth)
        assert r.status_code == 400, f"{what}: answered {r.status_code}"
        contract.check("Problem", r.json())
        return ""

    def bad_insz() -> str:
        return _refused({"ssin": employed[:-2] + f"{(int(employed[-2:]) + 1) % 100:02d}"}, "an INSZ with a bad check")

    def too_many() -> str:
        return _refused({"ssins": [s for s, _ in population.sample(BULK_LIMIT + 1)]}, f"{BULK_LIMIT + 1} INSZ")

    def period_by_id() -> str:
        period = found.get("period")
        assert period, "no period from the search to look up"
        got = client.period(period["id"])
        assert got == period, "GET /periods/{id} differs from the search"
        return period["id"]

    def unknown_period() -> str:
        assert client.period("000000000001") is None, "an unknown period was found"
        r = client.http.get(client.base + "/periods/000000000001", auth=client.auth)
        contract.check("Problem", r.json())
        return ""

    def wsdl() -> str:
        r = raw.get(root + SOAP_PATH, params={"wsdl": ""})
        assert r.status_code == 200, f"?wsdl answered {r.status_code}"
        assert parse_xml(r.content).tag == "{http://schemas.xmlsoap.org/wsdl/}definitions", "not a WSDL"
        return ""

    def personnel_file() -> str:
        answer = soap.consult(employer, None, ticket="conformance-1")
        assert answer is not None, "no personnel file for an employer of a known worker"
        inss = {p.findtext("NaturalPerson/INSS", "").zfill(11) for p in answer.iter("DimonaPeriod")}
        assert employed in inss, "the known worker is not in the employer's personnel file"
        return f"{len(inss)} worker(s)"

    def personnel_file_refused() -> str:
        payload = personnel_file_request(employer, None, "conformance-2")
        payload.find("Form/Identification").text = "PFXXX"           # not the published value
        body = etree.tostring(soap.message(payload, "conformance-2"))
        r = requests.post(root + SOAP_PATH, data=body, timeout=config.timeout_s,
                          headers={"Content-Type": "text/xml; charset=utf-8"})
        code = parse_xml(r.content).findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/faultcode") or ""
        assert r.status_code == 500 and code.endswith("Client"), f"answered {r.status_code} {code!r}"
        return ""

    try:
        for name, fn in (("token issued for private_key_jwt", token), ("REST requires a token", auth_required),
                         ("periods of a known worker", known_worker), ("no periods: empty list", no_data),
                         ("bulk consultation equals single", bulk), ("bad INSZ refused (400 problem)", bad_insz),
                         (f"over {BULK_LIMIT} INSZ refused", too_many), ("period by id", period_by_id),
                         ("unknown period: 404 problem", unknown_period), ("WSDL served", wsdl),
                         ("personnel file valid against published XSD", personnel_file),
                         ("invalid personnel file request: Client fault", personnel_file_refused)):
            run(name, fn)
    finally:
        raw.close()
        client.close()
    return checks
