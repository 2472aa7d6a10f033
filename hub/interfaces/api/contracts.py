"""The contract catalogue for integration engineers: list it, and check a document against a contract.

`GET /v1/contracts` and `POST /v1/contracts/{name}/validate` (any authenticated party). The body is
the document itself; its content type decides JSON or XML. XML is parsed without DTDs or entities.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.interfaces.api.deps import CallerDep, HubDep
from hub.registry.catalogue import Catalogue, load_catalogue
from hub.registry import default_contracts_dir

router = APIRouter(prefix="/v1/contracts", tags=["contracts"])


@lru_cache(maxsize=4)
def _catalogue(contracts_dir: Path) -> Catalogue:
    return load_catalogue(contracts_dir)


def catalogue_of(hub) -> Catalogue:
    return _catalogue(Path(hub.settings.contracts_dir or default_contracts_dir()).resolve())


@router.get("", summary="Every external contract the hub speaks, and its own message contracts")
def list_contracts(hub: HubDep, caller: CallerDep) -> dict:
    return {"contracts": [entry.to_json() for entry in catalogue_of(hub)]}


@router.post("/{name}/validate", summary="Check a document against one contract (name or name#Component)",
             responses={404: {"description": "unknown contract"}, 422: {"description": "contract violation"}})
async def validate_document(name: str, request: Request, hub: HubDep, caller: CallerDep,
                            component: Optional[str] = None) -> JSONResponse:
    """200 {"valid": true}, or 422 {"error": "contract_violation", "problems": [{path, line, rule, message}]}."""
    body = await request.body()
    full = f"{name}#{component}" if component and "#" not in name else name
    problems = catalogue_of(hub).validate(full, body, media_type=request.headers.get("content-type"))
    if problems:
        return JSONResponse({"error": "contract_violation", "contract": full,
                             "problems": [p.to_json() for p in problems]}, status_code=422)
    return JSONResponse({"valid": True, "contract": full})
