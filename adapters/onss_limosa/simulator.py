"""The Limosa simulator (limosa-v1.openapi.yaml) over the synthetic population, behind a
private_key_jwt token endpoint (`TokenService`, clients from `SimulatorConfig.clients`).

A search by employer and a look-up by id see the people of `Population.sample(EMPLOYER_POOL)` and
every worker asked about before: the simulator cannot enumerate the whole population.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.ports import SimulatorConfig
from adapters.oauth import TokenService
from adapters.onss_limosa import contract
from adapters.population import Posting
from adapters.simulator import FaultInjector

EMPLOYER_POOL = 2_000
_SSIN = re.compile(r"[0-9]{11}")
_CBE = re.compile(r"[01][0-9]{9}")
_ID = re.compile(r"L1-[0-9]{10}")


def declaration(ssin: str, p: Posting) -> dict[str, Any]:
    """One population posting as a limosa-v1 `Declaration`."""
    return {"id": p.declaration_id, "worker": {"ssin": ssin},
            "employer": {"name": p.foreign_employer, "country": p.employer_country},
            "belgianClient": {"enterpriseNumber": p.belgian_client},
            "period": {"startDate": p.start.isoformat(), "endDate": p.end.isoformat()},
            "services": {"sector": p.sector},
            "placesOfWork": [{"postCode": pc} for pc in p.workplace_postcodes[:20]],
            "workingSchedule": {"hoursPerWeek": 38, "daysPerWeek": 5, "regime": "fixed"},
            "liaisonPerson": {"name": f"Liaison {p.foreign_employer}"}}


def _problem(status: int, title: str, detail: str = "") -> JSONResponse:
    body = {"title": title, "status": status} | ({"detail": detail} if detail else {})
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def make_app(config: SimulatorConfig) -> Starlette:
    population = config.population
    tokens = TokenService(audience="")
    for client_id, public_pem in config.clients.items():
        tokens.register(client_id, public_pem, (contract.SCOPE,))
    known: dict[str, dict[str, Any]] = {}        # declaration id → declaration, as seen
    pool: list[str] = []

    def of(ssin: str) -> list[dict[str, Any]]:
        found = [declaration(ssin, p) for p in population.person(ssin).postings]
        known.update((d["id"], d) for d in found)
        return found

    def scan() -> None:
        if not pool:
            pool.extend(insz for insz, _ in population.sample(EMPLOYER_POOL))
            for insz in pool:
                of(insz)

    async def token(request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        tokens.audience = str(request.url.replace(query=""))
        status, body = tokens.issue(form)
        return JSONResponse(body, status_code=status)

    def denied(request: Request) -> JSONResponse | None:
        status = tokens.check(request.headers.get("authorization"), contract.SCOPE)
        if status == 401:
            return _problem(401, "Unauthorized", "a bearer token is required")
        if status == 403:
            return _problem(403, "Forbidden", f"the token lacks {contract.SCOPE}")
        return None

    async def search(request: Request) -> JSONResponse:
        if (refused := denied(request)) is not None:
            return refused
        q = request.query_params
        ssin, employer = q.get("ssin"), q.get("employer")
        if (ssin is None) == (employer is None) or set(q) - {"ssin", "employer"}:
            return _problem(400, "Bad request", "give exactly one of ssin or employer")
        if ssin is not None:
            if not _SSIN.fullmatch(ssin):
                return _problem(400, "Bad request", "ssin must be 11 digits")
            return JSONResponse({"declarations": of(ssin)})
        if not _CBE.fullmatch(employer):
            return _problem(400, "Bad request", "employer must be an enterprise number of 10 digits")
        scan()
        found = sorted((d for d in known.values() if d["belgianClient"]["enterpriseNumber"] == employer),
                       key=lambda d: d["id"])
        return JSONResponse({"declarations": found})

    async def one(request: Request) -> JSONResponse:
        if (refused := denied(request)) is not None:
            return refused
        ident = request.path_params["id"]
        if not _ID.fullmatch(ident):
            return _problem(400, "Bad request", "not a Limosa declaration id")
        if ident not in known:
            scan()
        if ident not in known:
            return _problem(404, "Not found", "no such declaration")
        return JSONResponse(known[ident])

    return Starlette(routes=[Route(contract.TOKEN_PATH, token, methods=["POST"]),
                             Route(contract.BASE_PATH + "/declarations", search, methods=["GET"]),
                             Route(contract.BASE_PATH + "/declarations/{id}", one, methods=["GET"])])


def make_simulator(config: SimulatorConfig) -> FaultInjector:
    return FaultInjector(make_app(config), config.faults)
