"""The contract catalogue for integration engineers: list it, and check a document against a contract.

`GET /v1/contracts`, `GET /v1/contracts/{name}/example` (a valid, synthetic example of a message
contract, from hub/domain/samples.py) and `POST /v1/contracts/{name}/validate` (any authenticated
party). The body of a validation is the document itself; its content type decides JSON or XML (anything else: 415). JSON is read as
strictly as every JSON body of the API (hardening.load_json: bounded depth, no NaN, numbers the
hub can hold, clean strings); XML is parsed without DTDs or entities (hub/ports/safexml.py). A
document that breaks its contract is a 422 `contract_violation` problem whose `issues` name each
fault (`name`: JSON pointer or XPath, `line`, `rule`, `detail`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.domain import samples
from hub.domain.errors import ContractViolation, NotFound, UnsupportedMediaType
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.hardening import load_json
from hub.interfaces.api.problems import problem_responses
from hub.registry import default_contracts_dir
from hub.registry.catalogue import Catalogue, load_catalogue

router = APIRouter(prefix="/v1/contracts", tags=["contracts"], route_class=StrictRoute)


@lru_cache(maxsize=4)
def _catalogue(contracts_dir: FilePath) -> Catalogue:
    return load_catalogue(contracts_dir)


def catalogue_of(hub) -> Catalogue:
    return _catalogue(FilePath(hub.settings.contracts_dir or default_contracts_dir()).resolve())


class CatalogueEntry(BaseModel):
    name: str = Field(description="what to name in /v1/contracts/{name}/validate")
    system: str
    protocol: str
    version: str
    file: str = Field(description="the file under contracts/")
    root: str | None = Field(description="the document element (XSD) or default component (OpenAPI)")
    used_for: str
    adapter: str | None
    kind: Literal["xsd", "wsdl", "openapi", "jsonschema"]
    exists: bool = Field(description="false: listed, but the file is not (yet) in contracts/")


class ContractList(BaseModel):
    """Every catalogued contract and every message contract of the hub (the whole list)."""

    contracts: list[CatalogueEntry]


class Valid(BaseModel):
    valid: Literal[True]
    contract: str = Field(description="the contract checked against (name or name#Component)")


_DOCUMENT = {
    "required": True,
    "description": "the document to check, as its Content-Type says: JSON (`application/json` or `…+json`, "
                   "UTF-8) or XML (`application/xml`, `text/xml` or `…+xml`; a SOAP envelope is checked by "
                   "its Body's element)",
    "content": {
        "application/json": {"schema": {"description": "any JSON document"}},
        "application/xml": {"schema": {"type": "string", "description": "an XML document"}},
    },
}


def document_syntax(content_type: str | None) -> str:
    """json or xml, from the Content-Type; UnsupportedMediaType (415) for anything else."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return "xml"
    if media == "application/json" or media.endswith("+json"):
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
                raise UnsupportedMediaType("JSON documents are UTF-8")
        return "json"
    raise UnsupportedMediaType(f"the document is JSON or XML, not {media[:60] or 'unlabelled'}")


@router.get("", operation_id="listContracts",
            summary="Every external contract the hub speaks, and its own message contracts",
            response_model=ContractList)
def list_contracts(hub: HubDep, caller: CallerDep) -> dict[str, Any]:
    return {"contracts": [entry.to_json() for entry in catalogue_of(hub)]}


@router.get("/{name}/example", operation_id="getContractExample",
            summary="A valid, synthetic example document of one message contract (no real person)",
            response_model=dict[str, Any],
            responses={200: {"description": "the example: a document of the named message contract "
                                            "(`#/components/schemas/<Contract>`); optional authority fields "
                                            "(`x-bound-to`) left out, the hub fills them in"},
                       **problem_responses(404, s404="no message contract of that name (`unknown_contract`)")})
def get_contract_example(hub: HubDep, caller: CallerDep,
                         name: Annotated[str, Path(max_length=80, description="a message contract, e.g. "
                                                   "`application` (contracts/messages/<name>.schema.json)")],
                         seed: Annotated[int, Query(ge=0, le=10**6, description="another seed, another "
                                                    "synthetic person and documents")] = 0) -> dict[str, Any]:
    known = hub.registry.contracts
    if name not in known or name not in samples.EXAMPLE_PAYLOADS:
        raise NotFound(f"no message contract named {name[:80]!r}; known: "
                       f"{', '.join(sorted(set(known) & set(samples.EXAMPLE_PAYLOADS)))}", code="unknown_contract")
    return samples.example(name, seed)


@router.post("/{name}/validate", operation_id="validateDocument",
             summary="Check a document against one contract (name or name#Component)",
             response_model=Valid,
             responses=problem_responses(
                 404, 422, 503, s404="no such contract or component (`unknown_contract`)",
                 s422="the document does not follow the contract (`contract_violation`: `issues` name each "
                      "fault with its `line` and `rule`)",
                 s503="the catalogue lists the contract but its file is missing (`contract_file_missing`)"),
             openapi_extra={"requestBody": _DOCUMENT})
async def validate_document(request: Request, hub: HubDep, caller: CallerDep,
                            name: Annotated[str, Path(max_length=160, description="a catalogue name, or "
                                                      "name#Component for an OpenAPI contract")],
                            component: Annotated[str | None, Query(max_length=120, description="an OpenAPI "
                                                                   "contract's component")] = None) -> dict[str, Any]:
    """200 {"valid": true}, or a 422 problem `contract_violation` listing each fault."""
    syntax = document_syntax(request.headers.get("content-type"))
    body = await request.body()
    full = f"{name}#{component}" if component and "#" not in name else name
    problems = await run_in_threadpool(catalogue_of(hub).validate, full, body, media_type=syntax,
                                       parse_json=load_json)
    if problems:
        raise ContractViolation([p.to_json() for p in problems])
    return {"valid": True, "contract": full}
