"""The API as a published contract: a client generated from /openapi.json by openapi-python-client,
used as a partner would use it, against a real hub served by uvicorn (tests/support/served.py).

The generator runs once for the module, in a temporary directory, on the document the running hub
serves; what it warns about is collected (`GENERATION.warnings`): each warning is a part of the
document a generated client does without. The client then gets its own tokens (the generated
token operation, a form), submits an application as the portal (the generated operation for
POST /v1/applications, its body the generated Application model), reads the inbox as the competent
region (GET /v1/inbox), acknowledges the delivery, and reads a refusal as the generated Problem.

Operations are found by method and URL in the generated code, not by their generated names, so
that a change of operationId does not break the test, only a change of the API.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
import typing
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from hub.domain import samples
from tests.support.served import served_hub

# Parts of the document openapi-python-client cannot express, whatever the document says: not
# defects of the hub's document (the document is valid OpenAPI 3.1), limits of the generator.
GENERATOR_LIMITS = {
    # POST /v1/contracts/{name}/validate takes JSON or XML: the generator has no XML bodies and
    # keeps the operation with its JSON body only.
    ("POST /v1/contracts/{name}/validate", "Unsupported content type application/xml"),
}


@dataclass
class Generated:
    package: ModuleType
    root: Path
    output: str
    warnings: list[str] = field(default_factory=list)

    def operation(self, method: str, url: str) -> ModuleType:
        """The generated module of `method url` (found by the request it builds)."""
        pattern = re.compile(r'"method":\s*"%s",\s*"url":\s*(f?)"%s"' % (method.lower(), re.escape(url)))
        for path in sorted((self.root / "api").glob("*/*.py")):
            if pattern.search(path.read_text()):
                name = f"{self.package.__name__}.api.{path.parent.name}.{path.stem}"
                return importlib.import_module(name)
        raise AssertionError(f"the generated client has no operation {method} {url}")


def warnings_of(output: str) -> list[str]:
    """Each warning block of the generator's output, as '<where>: <what>'."""
    found = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("WARNING"):
            where = line.removeprefix("WARNING").strip().removeprefix("parsing").strip()
            what = next((x.strip() for x in lines[i + 1:] if x.strip()), "")
            found.append(f"{where}: {what}")
    return found


def _is_limit(warning: str) -> bool:
    return any(warning.startswith(where) and what in warning for where, what in GENERATOR_LIMITS)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_hub("sqlite", tmp_path_factory.mktemp("generated-client")) as hub:
        yield hub


@pytest.fixture(scope="module")
def generated(served, tmp_path_factory) -> Generated:
    work = tmp_path_factory.mktemp("client")
    document = served.http.get("/openapi.json")
    assert document.status_code == 200
    (work / "openapi.json").write_text(document.text)
    (work / "config.json").write_text(json.dumps({"post_hooks": []}))   # no formatter needed
    package = f"wib_hub_client_{uuid.uuid4().hex[:8]}"
    run = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate",
                          "--path", str(work / "openapi.json"), "--output-path", str(work / package),
                          "--meta", "none", "--config", str(work / "config.json")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    sys.path.insert(0, str(work))
    try:
        module = importlib.import_module(package)
    finally:
        sys.path.remove(str(work))
    sys.path.append(str(work))          # the package's own imports (relative, but lazily loaded modules)
    return Generated(module, work / package, output, warnings_of(output))


def client_for(generated: Generated, served, party: str | None):
    """A generated Client (anonymous) or AuthenticatedClient, its token from the generated token operation."""
    clients = importlib.import_module(f"{generated.package.__name__}.client")
    if party is None:
        return clients.Client(base_url=served.url, raise_on_unexpected_status=True)
    token_op = generated.operation("POST", "/oauth/token")
    body_type = typing.get_type_hints(token_op._get_kwargs)["body"]
    form = body_type.from_dict({"grant_type": "client_credentials", "client_id": party,
                                "client_secret": served.client.secrets[party]["secret"]})
    answer = token_op.sync_detailed(client=clients.Client(base_url=served.url), body=form)
    assert answer.status_code == 200, answer.content
    token = answer.parsed.access_token
    return clients.AuthenticatedClient(base_url=served.url, token=token, raise_on_unexpected_status=True)


def test_the_document_generates_a_client_without_warnings(generated):
    """Every warning is a part of the document a generated client goes without (known limits of
    the generator apart, GENERATOR_LIMITS)."""
    defects = [w for w in generated.warnings if not _is_limit(w)]
    assert not defects, "openapi-python-client warns about the document:\n  " + "\n  ".join(defects) + \
        f"\n\n{generated.output}"


def test_the_portal_submits_an_application_and_the_region_reads_it(generated, served):
    submit = generated.operation("POST", "/v1/applications")
    inbox = generated.operation("GET", "/v1/inbox")
    ack = generated.operation("POST", "/v1/inbox/{delivery_id}/ack")
    application_type = typing.get_type_hints(submit._get_kwargs)["body"]

    payload = samples.synthetic_application(4711)
    application = application_type.from_dict(payload)
    assert application.to_dict() == payload, "the generated Application model keeps the application as it is"

    portal = client_for(generated, served, "portal")
    key = f"client-{uuid.uuid4().hex}"
    answer = submit.sync_detailed(client=portal, body=application, idempotency_key=key)
    assert answer.status_code == 202, answer.content
    accepted = answer.parsed
    assert accepted.recipients == ["region.flanders"] and accepted.duplicate is False
    again = submit.sync_detailed(client=portal, body=application, idempotency_key=key)
    assert again.status_code == 200 and again.parsed.duplicate is True and again.parsed.message_id == accepted.message_id

    region = client_for(generated, served, "region.flanders")
    item = None
    for _ in range(200):
        page = inbox.sync(client=region)
        item = next((i for i in page.items if i.message_id == accepted.message_id), None)
        if item is not None:
            break
        time.sleep(0.05)
    assert item is not None, "the region's inbox holds the application"
    assert item.flow == "single-permit.application-submitted" and item.sender == "portal"
    assert item.dossier_id == accepted.dossier_id
    content = item.payload.to_dict()
    assert content["worker"]["last_name"] == payload["worker"]["last_name"]
    assert "medical_documents" not in content and "criminal_record_documents" not in content   # Art. 15, 17

    done = ack.sync(client=region, delivery_id=item.id)
    assert done.id == item.id and done.acknowledged is True and done.already is False
    assert all(i.message_id != accepted.message_id for i in inbox.sync(client=region).items)


def test_a_refusal_reads_as_the_generated_problem(generated, served):
    inbox = generated.operation("GET", "/v1/inbox")
    problem_type = importlib.import_module(f"{generated.package.__name__}.models").Problem
    anonymous = client_for(generated, served, None)
    answer = inbox.sync_detailed(client=anonymous)
    assert answer.status_code == 401
    assert isinstance(answer.parsed, problem_type), answer.content
    assert answer.parsed.status == 401 and answer.parsed.error == "missing_token" and answer.parsed.instance == "/v1/inbox"


def _variant_for(union, document: dict):
    """The generated variant of the `Message` oneOf that reads `document` (its `flow` a constant)."""
    matches = []
    for variant in typing.get_args(union):
        try:
            model = variant.from_dict(document)
        except (ValueError, TypeError, KeyError):
            continue
        matches.append(model)
    assert len(matches) == 1, f"{len(matches)} generated variants read flow {document['flow']}"
    return matches[0]


def test_a_region_sends_on_a_flow_with_its_generated_variant(generated, served):
    """POST /v1/messages is one operation whose body is a oneOf of one variant per flow: the
    generated client has a model per flow, and the one for the region's admissibility decision
    moves the dossier; DVZ reads it with the generated inbox operation."""
    submit = generated.operation("POST", "/v1/applications")
    send = generated.operation("POST", "/v1/messages")
    inbox = generated.operation("GET", "/v1/inbox")
    application_type = typing.get_type_hints(submit._get_kwargs)["body"]
    portal, region, dvz = (client_for(generated, served, p) for p in ("portal", "region.flanders", "dvz"))
    accepted = submit.sync(client=portal, body=application_type.from_dict(samples.synthetic_application(4712)))
    dossier = accepted.dossier_id

    document = {"flow": "single-permit.admissible-to-dvz", "dossier_id": dossier,
                "payload": samples.sample_admissibility_decision(dossier, region=None)}
    message = _variant_for(typing.get_type_hints(send._get_kwargs)["body"], document)
    assert message.to_dict() == document
    answer = send.sync_detailed(client=region, body=message)
    assert answer.status_code == 202, answer.content
    sent = answer.parsed
    item = None
    for _ in range(200):
        item = next((i for i in inbox.sync(client=dvz).items if i.message_id == sent.message_id), None)
        if item is not None:
            break
        time.sleep(0.05)
    assert item is not None and item.flow == "single-permit.admissible-to-dvz" and item.dossier_id == dossier
    assert item.payload.to_dict()["deciding_authority"] == "region.flanders"      # filled in by the hub
