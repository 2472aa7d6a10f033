"""Valid payloads for every message contract, for synthetic workers (no real person).

Used by the demo, the benchmarks and the tests. Each factory returns a fresh dict; keyword
overrides replace top-level keys (None removes one). A field that names an authority is bound to
the sender or the dossier (`x-bound-to`): the factories state the usual one (region.flanders, dvz,
flanders), which must then be the sender's or the dossier's; None leaves it to the hub to fill in.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import date
from typing import Any

from hub.domain.identifiers import make_enterprise_number, make_insz

WORKER_BIRTH_DATE = date(1991, 3, 15)
# A bis number (month + 40): the usual case for a worker not yet in the national register.
WORKER_INSZ = make_insz(WORKER_BIRTH_DATE, 123, month_offset=40)
EMPLOYER_ENTERPRISE_NUMBER = make_enterprise_number(1_234_567)  # "0123456749"
EMPLOYER_ONSS_NUMBER = "0123456789"
DOSSIER_ID = "WIB-2026-000001"


def _apply(payload: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def sample_document(document_type: str, text: str | None = None, *, media_type: str = "application/pdf") -> dict[str, Any]:
    """A small document whose sha256 matches its base64 content."""
    magic = {"application/pdf": b"%PDF-1.4\n", "image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff\xe0"}
    content = magic[media_type] + (text or f"synthetic {document_type} for tests\n").encode()
    return {
        "document_type": document_type,
        "filename": document_type + {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}[media_type],
        "media_type": media_type,
        "content_base64": base64.b64encode(content).decode("ascii"),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def sample_documents() -> dict[str, list[dict[str, Any]]]:
    """One array per data category, as the application and additional-documents contracts have them."""
    return {
        "identity_documents": [sample_document("passport_copy"), sample_document("photo", media_type="image/png"),
                               sample_document("visa_d_copy")],
        "medical_documents": [sample_document("medical_certificate")],
        "criminal_record_documents": [{**sample_document("criminal_record_extract"), "issued_on": "2026-01-05"}],
        "employment_documents": [sample_document("employment_contract"), sample_document("diploma"),
                                 sample_document("health_insurance")],
        "administrative_documents": [sample_document("proof_of_fee_payment")],
    }


def sample_address(**overrides: Any) -> dict[str, Any]:
    return _apply({"street": "Rue de la Loi", "house_number": "16", "postal_code": "1000",
                   "municipality": "Brussels", "country": "BEL"}, overrides)


def sample_application(**overrides: Any) -> dict[str, Any]:
    """A complete single-permit application (Art. 2 §1 1° a) with documents of every category."""
    payload: dict[str, Any] = {
        "application_kind": "single_permit",
        "category": "single_permit",
        "competent_region": "flanders",
        "portal_reference": "WIB-PORTAL-000001",
        "submitted_at": "2026-02-02T09:30:00+01:00",
        "worker": {
            "first_name": "Amara",
            "last_name": "Testworker",
            "birth_date": WORKER_BIRTH_DATE.isoformat(),
            "birth_place": "Springfield",
            "birth_country": "CAN",
            "sex": "F",
            "nationality": "CAN",
            "civil_status": "single",
            "insz": WORKER_INSZ,
            "passport_number": "AB1234567",
        },
        "contact": {
            "address": sample_address(street="Main Street", house_number="1", postal_code="K1A0B1",
                                      municipality="Ottawa", country="CAN"),
            "email": "amara.testworker@example.org",
            "phone": "+1 613 555 0100",
            "preferred_language": "en",
        },
        "residence": {
            "visa_d_requested": True,
            "visa_diplomatic_post": "Ottawa",
            "temporary_residence_document_requested": True,
            "municipality_nis_code": "44021",
            "present_in_belgium": False,
        },
        "employment": {
            "employer": {
                "enterprise_number": EMPLOYER_ENTERPRISE_NUMBER,
                "onss_registration_number": EMPLOYER_ONSS_NUMBER,
                "name": "Synthetic Engineering NV",
                "email": "hr@synthetic-engineering.example",
                "phone": "+32 9 123 45 67",
                "seat_address": sample_address(street="Veldstraat", house_number="1", postal_code="9000",
                                               municipality="Gent"),
            },
            "job_title": "Software engineer",
            "joint_committee": "200",
            "weekly_hours": 38,
            "gross_monthly_pay": 4200.0,
            "start_date": "2026-05-01",
            "end_date": "2028-04-30",
            "contract_type": "employment_contract",
            "posted": False,
        },
        **sample_documents(),
        "fee_paid": True,
    }
    return _apply(payload, overrides)


_FIRST = ("Amara", "Bao", "Chidi", "Daria", "Emre", "Farah", "Goran", "Hana", "Ines", "Jun")
_LAST = ("Testworker", "Sample", "Synthetic", "Example", "Fixture")
_NATIONALITY = ("CAN", "IND", "BRA", "TUR", "MAR", "PHL", "UKR", "USA", "JPN", "NGA")


def synthetic_application(serial: int, competent_region: str = "flanders", **overrides: Any) -> dict[str, Any]:
    """A different synthetic worker per serial: names, birth date, INSZ (bis number) and nationality."""
    birth = date(1970 + serial % 35, 1 + serial % 12, 1 + serial % 28)
    payload = sample_application(competent_region=competent_region,
                                 portal_reference=f"WIB-PORTAL-{serial:06d}", **overrides)
    payload["worker"].update(first_name=_FIRST[serial % len(_FIRST)], last_name=_LAST[serial % len(_LAST)],
                             birth_date=birth.isoformat(), nationality=_NATIONALITY[serial % len(_NATIONALITY)],
                             insz=make_insz(birth, 1 + serial % 997, month_offset=40),
                             passport_number=f"P{serial:08d}")
    return payload


def sample_additional_documents_requested(dossier_id: str = DOSSIER_ID, **overrides: Any) -> dict[str, Any]:
    return _apply({
        "dossier_id": dossier_id,
        "requested_by": "region.flanders",
        "addressee": "applicant",
        "requested_documents": ["diploma", "proof_of_fee_payment"],
        "due_date": "2026-03-01",
        "message_to_applicant": "Please upload a legible copy of your diploma and the proof of payment of the fee.",
    }, overrides)


def sample_additional_documents(dossier_id: str = DOSSIER_ID, **overrides: Any) -> dict[str, Any]:
    documents = sample_documents()
    return _apply({
        "dossier_id": dossier_id,
        "employment_documents": [sample_document("diploma", "%PDF-1.4 synthetic diploma, second copy\n")],
        "administrative_documents": documents["administrative_documents"],
        "medical_documents": [sample_document("fitness_for_work_certificate")],
    }, overrides)


def sample_admissibility_decision(dossier_id: str = DOSSIER_ID, *, region: str | None = "region.flanders",
                                  **overrides: Any) -> dict[str, Any]:
    return _apply({
        "dossier_id": dossier_id,
        "decision": "admissible",
        "decided_at": "2026-02-10T14:00:00+01:00",
        "case_reference": "EM-2026-0001",
    }, {"deciding_authority": region, **overrides})


_RESIDENCE_KIND = {"granted": "residence_authorisation", "refused": "residence_refusal",
                   "withdrawn": "residence_withdrawal", "ended": "residence_end"}
_WORK_KIND = {"granted": "work_authorisation", "refused": "work_refusal", "withdrawn": "work_withdrawal"}


def sample_residence_decision(dossier_id: str = DOSSIER_ID, *, outcome: str = "granted", **overrides: Any) -> dict[str, Any]:
    payload = {
        "dossier_id": dossier_id,
        "decision_kind": _RESIDENCE_KIND[outcome],
        "outcome": outcome,
        "decided_at": "2026-03-20T10:00:00+01:00",
        "deciding_authority": "dvz",
        "case_reference": "DVZ-2026-0001",
    }
    if outcome == "granted":
        payload.update(valid_from="2026-05-01", valid_until="2028-04-30")
    return _apply(payload, overrides)


def sample_work_decision(dossier_id: str = DOSSIER_ID, *, region: str | None = "region.flanders",
                         outcome: str = "granted", **overrides: Any) -> dict[str, Any]:
    payload = {
        "dossier_id": dossier_id,
        "decision_kind": _WORK_KIND[outcome],
        "outcome": outcome,
        "decided_at": "2026-03-18T10:00:00+01:00",
        "case_reference": "EM-2026-0001",
    }
    if outcome == "granted":
        payload.update(valid_from="2026-05-01", valid_until="2028-04-30")
    return _apply(payload, {"deciding_authority": region, **overrides})


def sample_single_act(dossier_id: str = DOSSIER_ID, **overrides: Any) -> dict[str, Any]:
    return _apply({
        "dossier_id": dossier_id,
        "residence_outcome": "granted",
        "work_outcome": "granted",
        "act_date": "2026-03-21",
        "valid_from": "2026-05-01",
        "valid_until": "2028-04-30",
        "notification_channel": "ebox",
        "decision_text": "The single permit is granted for employment with Synthetic Engineering NV.",
        "grounds": "The conditions of residence and of work are met.",
        "applicant": {"first_name": "Amara", "last_name": "Testworker", "birth_date": WORKER_BIRTH_DATE.isoformat()},
        "employer": {"enterprise_number": EMPLOYER_ENTERPRISE_NUMBER, "name": "Synthetic Engineering NV"},
        "notify_employer": True,
    }, overrides)


def sample_authorisation_notice(dossier_id: str = DOSSIER_ID, *, requested_document: str = "visa_d",
                                authorisation_kind: str = "single_permit", **overrides: Any) -> dict[str, Any]:
    payload = {
        "dossier_id": dossier_id,
        "authorisation_kind": authorisation_kind,
        "requested_document": requested_document,
        "decided_at": "2026-03-21T09:00:00+01:00",
        "valid_from": "2026-05-01",
        "valid_until": "2028-04-30",
        "holder": {"first_name": "Amara", "last_name": "Testworker", "birth_date": WORKER_BIRTH_DATE.isoformat(),
                   "nationality": "CAN", "passport_number": "AB1234567"},
    }
    if requested_document == "visa_d":
        payload["diplomatic_post"] = "Ottawa"
    else:
        payload["municipality_nis_code"] = "44021"
    return _apply(payload, overrides)


def sample_negative_decision_notice(dossier_id: str = DOSSIER_ID, *, decided_by: str | None = "dvz",
                                    **overrides: Any) -> dict[str, Any]:
    return _apply({"dossier_id": dossier_id, "negative_decision_taken": True, "decided_at": "2026-03-20"},
                  {"decided_by": decided_by, **overrides})


def sample_permit_withdrawal_notice(dossier_id: str = DOSSIER_ID, *, decided_by: str | None = "region.flanders",
                                    competent_region: str | None = "flanders", **overrides: Any) -> dict[str, Any]:
    return _apply({
        "dossier_id": dossier_id,
        "withdrawal_kind": "work_authorisation_withdrawal",
        "decided_at": "2026-09-01",
        "worker": {"first_name": "Amara", "last_name": "Testworker", "birth_date": WORKER_BIRTH_DATE.isoformat(),
                   "nationality": "CAN", "insz": WORKER_INSZ},
        "contact": {"email": "amara.testworker@example.org", "phone": "+32 470 00 00 00", "preferred_language": "en"},
    }, {"decided_by": decided_by, "competent_region": competent_region, **overrides})


def sample_appeal_lodged(dossier_id: str = DOSSIER_ID, *, informed_by: str | None = "dvz",
                         **overrides: Any) -> dict[str, Any]:
    return _apply({"dossier_id": dossier_id, "appeal_body": "council_for_alien_law_litigation",
                   "lodged_on": "2026-04-10", "against": "residence"}, {"informed_by": informed_by, **overrides})


def sample_appeal_ended(dossier_id: str = DOSSIER_ID, *, outcome: str = "rejected", informed_by: str | None = "dvz",
                        **overrides: Any) -> dict[str, Any]:
    return _apply({"dossier_id": dossier_id, "appeal_outcome": outcome, "ended_on": "2026-09-15"},
                  {"informed_by": informed_by, **overrides})


def sample_clock_reminder(dossier_id: str = DOSSIER_ID, **overrides: Any) -> dict[str, Any]:
    return _apply({"dossier_id": dossier_id, "clock": "blue-card.decision", "due_at": "2026-06-01T00:00:00+00:00",
                   "days_left": 7, "legal_basis": "Law of 15 December 1980, Art. 61/27-4 §2"}, overrides)


def sample_deemed_authorisation(dossier_id: str = DOSSIER_ID, **overrides: Any) -> dict[str, Any]:
    return _apply({"dossier_id": dossier_id, "clock": "blue-card.decision",
                   "complete_at": "2026-03-02T09:00:00+00:00", "due_at": "2026-05-31T09:00:00+00:00",
                   "legal_basis": "Law of 15 December 1980, Art. 61/27-4 §2, 61/27-5 §3"}, overrides)


# Contract name → factory taking a dossier id (the application has none yet: the hub creates the dossier).
SAMPLE_PAYLOADS: dict[str, Callable[[str], dict[str, Any]]] = {
    "application": lambda dossier_id: sample_application(),
    "additional-documents-requested": sample_additional_documents_requested,
    "additional-documents": sample_additional_documents,
    "admissibility-decision": sample_admissibility_decision,
    "residence-decision": sample_residence_decision,
    "work-decision": sample_work_decision,
    "single-act": sample_single_act,
    "authorisation-notice": sample_authorisation_notice,
    "negative-decision-notice": sample_negative_decision_notice,
    "permit-withdrawal-notice": sample_permit_withdrawal_notice,
    "appeal-lodged": sample_appeal_lodged,
    "appeal-ended": sample_appeal_ended,
    "clock-reminder": sample_clock_reminder,
    "deemed-authorisation": sample_deemed_authorisation,
}


def sample_payload(contract_name: str, dossier_id: str = DOSSIER_ID) -> dict[str, Any]:
    """A valid payload for the named contract."""
    return SAMPLE_PAYLOADS[contract_name](dossier_id)


# Flow id → (a sender allowed on it, a valid payload for a dossier id), for end-to-end tests and the demo.
# The payloads leave out what the hub derives (x-bound-to: the sender, the dossier's region), so that
# every party that may send on the flow may send them, about any dossier: the hub fills it in.
FLOW_SAMPLES: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "single-permit.application-submitted": ("portal", lambda d: sample_application()),
    "professional-card.application-submitted": ("portal", lambda d: sample_application(
        application_kind="professional_card", category="professional_card", employment=None,
        self_employment={"activity_description": "Independent software consultancy", "start_date": "2026-06-01"})),
    "single-permit.additional-documents-requested": ("region.flanders", lambda d: sample_additional_documents_requested(
        d, requested_by=None)),
    "single-permit.additional-documents": ("portal", sample_additional_documents),
    "single-permit.admissible-to-dvz": ("region.flanders", lambda d: sample_admissibility_decision(d, region=None)),
    "single-permit.residence-decision": ("dvz", lambda d: sample_residence_decision(d, deciding_authority=None)),
    "single-permit.work-decision": ("region.flanders", lambda d: sample_work_decision(d, region=None)),
    "single-permit.single-act-notified": ("dvz", sample_single_act),
    "single-permit.authorisation-to-diplomatic-post": ("dvz", sample_authorisation_notice),
    "single-permit.authorisation-to-municipality": ("dvz", lambda d: sample_authorisation_notice(
        d, requested_document="temporary_residence_document")),
    "work-permit.authorisation-to-diplomatic-post": ("region.flanders", lambda d: sample_authorisation_notice(
        d, authorisation_kind="work_permit")),
    "single-permit.negative-decision-notice": ("dvz", lambda d: sample_negative_decision_notice(d, decided_by=None)),
    "single-permit.withdrawal-to-employment-service": ("region.flanders", lambda d: sample_permit_withdrawal_notice(
        d, decided_by=None, competent_region=None)),
    "single-permit.appeal-lodged": ("dvz", lambda d: sample_appeal_lodged(d, informed_by=None)),
    "single-permit.appeal-ended": ("dvz", lambda d: sample_appeal_ended(d, informed_by=None)),
    "platform.clock-reminder": ("onss", sample_clock_reminder),
    "single-permit.deemed-authorisation": ("onss", sample_deemed_authorisation),
}


# ── examples for newcomers: `wib-hub contracts example`, `wib-hub flows example`, GET /v1/contracts/{name}/example ──

# Contract name → a valid payload for a dossier id that leaves out the optional authority fields
# (x-bound-to: the hub fills in the sender or the dossier's region), so any allowed sender may send it.
# The application's competent_region stays: it is required (the application opens the dossier).
EXAMPLE_PAYLOADS: dict[str, Callable[[str], dict[str, Any]]] = {
    "application": lambda d: sample_application(),
    "additional-documents-requested": lambda d: sample_additional_documents_requested(d, requested_by=None),
    "additional-documents": sample_additional_documents,
    "admissibility-decision": lambda d: sample_admissibility_decision(d, region=None),
    "residence-decision": lambda d: sample_residence_decision(d, deciding_authority=None),
    "work-decision": lambda d: sample_work_decision(d, region=None),
    "single-act": sample_single_act,
    "authorisation-notice": sample_authorisation_notice,
    "negative-decision-notice": lambda d: sample_negative_decision_notice(d, decided_by=None),
    "permit-withdrawal-notice": lambda d: sample_permit_withdrawal_notice(d, decided_by=None, competent_region=None),
    "appeal-lodged": lambda d: sample_appeal_lodged(d, informed_by=None),
    "appeal-ended": lambda d: sample_appeal_ended(d, informed_by=None),
    "clock-reminder": sample_clock_reminder,
    "deemed-authorisation": sample_deemed_authorisation,
}

_PERSON_FIELDS = ("first_name", "last_name", "birth_date", "nationality", "insz", "passport_number")


def _personalised(value: Any, seed: int, person: dict[str, Any]) -> Any:
    """The same document about the seed's synthetic person: names, birth date, nationality, INSZ and
    passport of every person object, e-mail addresses, the portal reference, and each document's
    content (and so its sha256)."""
    if isinstance(value, list):
        return [_personalised(item, seed, person) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _personalised(item, seed, person) for key, item in value.items()}
    if "content_base64" in out and "sha256" in out and "document_type" in out:
        out.update(sample_document(out["document_type"], f"synthetic {out['document_type']} #{seed}\n",
                                   media_type=out.get("media_type", "application/pdf")))
    if "first_name" in out:
        out.update({key: person[key] for key in _PERSON_FIELDS if key in out})
    if isinstance(out.get("email"), str) and out["email"].startswith("amara.testworker@"):
        out["email"] = f"{person['first_name']}.{person['last_name']}.{seed}@example.org".lower()
    if "portal_reference" in out:
        out["portal_reference"] = f"WIB-PORTAL-{seed:06d}"
    return out


def _for_seed(payload: dict[str, Any], seed: int) -> dict[str, Any]:
    if seed < 0:
        raise ValueError("a seed is a whole number from 0")
    if seed == 0:                     # the fixed default: the usual samples, unchanged
        return payload
    return _personalised(payload, seed, synthetic_application(seed)["worker"])


def example(contract_name: str, seed: int = 0, dossier_id: str = DOSSIER_ID) -> dict[str, Any]:
    """A valid, synthetic example of the named message contract; another seed, another synthetic person
    and other documents (seed 0: the usual samples). Optional authority fields (x-bound-to) are left
    out: the hub fills them in. KeyError for a contract without an example."""
    return _for_seed(EXAMPLE_PAYLOADS[contract_name](dossier_id), seed)


def flow_example(flow_id: str, seed: int = 0, dossier_id: str = DOSSIER_ID) -> dict[str, Any]:
    """A valid, synthetic payload for the flow (its constraints met, e.g. the municipality's notice asks
    for a temporary residence document), as `example` varies it by seed. KeyError for an unknown flow."""
    return _for_seed(FLOW_SAMPLES[flow_id][1](dossier_id), seed)
