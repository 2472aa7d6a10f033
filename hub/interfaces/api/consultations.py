"""Art. 25 and 26: consulting a dossier one was not sent, on a ground of contracts/consultations.yaml."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from hub.domain.errors import NotFound
from hub.interfaces.api.deps import CallerDep, HubDep, StrictRoute
from hub.interfaces.api.problems import problem_responses
from hub.interfaces.api.types import DossierPath
from hub.messaging.consultation import consult

router = APIRouter(prefix="/v1/consultations", tags=["consultations"], route_class=StrictRoute)


class Ground(BaseModel):
    """A ground of consultation: who may use it, on which dossiers, and what it opens."""

    id: str
    title: str
    legal_basis: list[str]
    purpose: int = Field(description="Art. 10 n°")
    parties: list[str] = Field(description="party patterns (e.g. inspection.*)")
    dossiers: Literal["any", "other_regions"]
    application_categories: list[str] = Field(description="the data categories of the application it opens")
    decisions: list[str] = Field(description="the flows whose decisions it shows")


class Grounds(BaseModel):
    """Every ground of contracts/consultations.yaml (the whole list)."""

    consultations: list[Ground]


class ProjectedApplication(BaseModel):
    """The stored application (the `Application` contract) projected on the ground's categories:
    only the fields those categories hold are present."""

    model_config = ConfigDict(extra="allow")


class ProjectedPayload(BaseModel):
    """A decision's payload (its flow's contract), projected on the flow's categories without the
    special ones."""

    model_config = ConfigDict(extra="allow")


class Decision(BaseModel):
    message_id: str
    flow: str
    sender: str
    payload: ProjectedPayload


class ConsultationView(BaseModel):
    """What the ground lets the caller read of the dossier (Art. 11); the read is on the record."""

    dossier_id: str
    consultation: str = Field(description="the ground's id")
    legal_basis: list[str]
    purpose: int
    state: str
    competent_region: str
    data_categories: list[str] = Field(description="the categories returned")
    application: ProjectedApplication
    decisions: list[Decision]


@router.get("", operation_id="listConsultationGrounds",
            summary="The consultation grounds (Art. 25, 26) and who may use them", response_model=Grounds)
def grounds(hub: HubDep, caller: CallerDep) -> dict[str, Any]:
    return {"consultations": [
        {"id": r.id, "title": r.title, "legal_basis": list(r.legal_basis), "purpose": r.purpose,
         "parties": list(r.parties), "dossiers": r.dossiers,
         "application_categories": sorted(r.application_categories), "decisions": list(r.decisions)}
        for r in hub.consultations.values()]}


@router.get("/{ground}/dossiers/{dossier_id}", operation_id="consultDossier",
            summary="Consult a dossier on a ground of Art. 25 or 26",
            response_model=ConsultationView,
            responses=problem_responses(403, 404, s403="the ground does not let the caller read this dossier "
                                                       "(`consultation_not_allowed`)",
                                        s404="no such ground (`unknown_ground`) or dossier (`unknown_dossier`)"))
def consult_dossier(hub: HubDep, caller: CallerDep,
                    ground: Annotated[str, Path(max_length=80, description="a ground's id")],
                    dossier_id: DossierPath) -> dict[str, Any]:
    rule = hub.consultations.get(ground)
    if rule is None:
        raise NotFound(f"no consultation ground {ground[:80]!r}", code="unknown_ground")
    return consult(hub.work, hub.registry, rule, caller.party, caller.acting_person, dossier_id)
