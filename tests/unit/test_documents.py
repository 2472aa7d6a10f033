"""Documents are what they declare: type sniffed from the content, hash, plain file name."""
from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import func, select

from hub.domain import documents, samples
from hub.domain.errors import ContractViolation
from hub.infra.store.schema import audit_events, dossiers, messages


def _doc(content: bytes, media_type: str = "application/pdf", filename: str = "contract.pdf", **over) -> dict:
    doc = {"document_type": "employment_contract", "filename": filename, "media_type": media_type,
           "content_base64": base64.b64encode(content).decode(), "sha256": hashlib.sha256(content).hexdigest()}
    doc.update(over)
    return doc


@pytest.mark.parametrize("content,media_type", [(b"%PDF-1.7 x", "application/pdf"),
                                                (b"\x89PNG\r\n\x1a\nxx", "image/png"),
                                                (b"\xff\xd8\xff\xe1xx", "image/jpeg")])
def test_sniffing_recognises_the_accepted_types(content, media_type):
    assert documents.sniff(content) == media_type


def test_every_sample_document_passes():
    assert documents.problems(samples.sample_application()) == []


@pytest.mark.parametrize("doc,path,words", [
    (_doc(b"MZ\x90\x00 an executable"), "/media_type", "content is of no accepted type"),
    (_doc(b"\x89PNG\r\n\x1a\nimage"), "/media_type", "declared application/pdf, content is image/png"),
    (_doc(b"%PDF-1.4 x", sha256="0" * 64), "/sha256", "does not match"),
    (_doc(b"%PDF-1.4 x", content_base64="%%%not base64"), "/content_base64", "not valid base64"),
    (_doc(b"%PDF-1.4 x", filename=".hidden.pdf"), "/filename", "plain name"),
    (_doc(b"%PDF-1.4 x", filename="contract..pdf"), "/filename", "plain name"),
    (_doc(b"%PDF-1.4 x", filename="contract.exe"), "/filename", "ending in .pdf"),
])
def test_documents_that_are_not_what_they_say_are_named(doc, path, words):
    payload = {"employment_documents": [doc]}
    with pytest.raises(ContractViolation) as err:
        documents.check(payload)
    (problem,) = err.value.detail
    assert problem["path"] == "/employment_documents/0" + path and words in problem["message"]
    assert problem["rule"] == "document"


def test_a_disguised_document_is_refused_at_the_api_and_nothing_is_stored(local_hub):
    application = samples.sample_application()
    exe = b"MZ\x90\x00\x03 not a pdf"
    application["employment_documents"][0].update(content_base64=base64.b64encode(exe).decode(),
                                                   sha256=hashlib.sha256(exe).hexdigest())
    r = local_hub.post("portal", "/v1/applications", application)
    assert r.status_code == 422 and r.json()["error"] == "contract_violation"
    assert r.json()["issues"][0]["name"] == "/employment_documents/0/media_type"
    with local_hub.hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dossiers)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0
        rejected = conn.execute(select(audit_events).where(audit_events.c.event == "rejected")).all()
    assert len(rejected) == 1 and "contract_violation" in (rejected[0].reason or "")
