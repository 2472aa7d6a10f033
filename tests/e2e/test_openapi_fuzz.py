"""The API against its own published contract: schemathesis over the COMPLETE /openapi.json of a hub
built like `local_hub` (SQLite store, in-memory transport, max body 64 KiB; the app in this process,
over ASGI).

Three runs, the Authorization header supplied per run by the `authorization` fixture: anonymous
(no token of ours; schemathesis may send a made-up bearer credential: every operation but health and
the token endpoint must refuse, as its document says), as the portal, and as a region
(region.flanders). Each run fuzzes every operation of the document (the
test checks that the operations it fuzzed are exactly the document's).

Configuration (reproducible, bounded: about 35 s for the three runs on one core):
- data: schemathesis's strategies for each operation (`operation.as_strategy`), POSITIVE and
  NEGATIVE modes, MAX_EXAMPLES cases per operation and mode; the document's own examples first
  (hypothesis phases explicit + generate: no shrinking, a failure is reported as found).
- hypothesis: derandomize=True (the same cases on every run), deadline=None, no example database,
  every health check suppressed (the message contracts are large schemas: slow to generate from).
- checks: not_a_server_error, status_code_conformance, content_type_conformance,
  response_schema_conformance, and negative_data_rejection: a request that breaks the document must
  be refused with a 4xx (the hub believes nothing it did not check); POST /v1/messages:batch answers
  each message on its own, so there a 200 must carry at least one refused message instead. positive_data_acceptance is
  NOT used: the document cannot say who may do what, so valid data is rightly refused (401 without a
  token, 403 for a party not allowed, 404 for a dossier that is someone else's, 409 for a move the
  dossier does not allow). Coverage and stateful phases are not run; the boundaries are the hostile
  corpus's (tests/integration/test_hostile_corpus.py).
- the hub's rate limits are off: the run tests the contract, not the limiter (tested elsewhere).

The hypothesis loop is driven here rather than by schemathesis's pytest plugin:
`schemathesis.pytest.from_fixture` fails under pytest 9.2 (schemathesis 4.32: "'Function' object has
no attribute '_nodeid'"), and a module-level `schema.parametrize()` would need a hub at import time,
in every xdist worker. Each failure names the operation, the mode, the request and the answer.
"""
from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi import checks as openapi_checks

from tests.support import sqlite_store, start_hub

MAX_EXAMPLES = 25
SEED = 20_260_401
IDENTITIES = ["anonymous", "portal", "region.flanders"]
_METHODS = ("get", "put", "post", "delete", "patch")
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

CONFIG = {"seed": SEED, "suppress-health-check": ["all"],
          "generation": {"deterministic": True, "database": "none"}}

# Operations that answer each item of the body on its own (200, a problem per refused item): for them
# negative data must be refused item by item, not as a whole.
PER_ITEM = {"POST /v1/messages:batch"}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    yield from start_hub(tmp / "data", sqlite_store(tmp / "hub.db"), f"memory://{uuid.uuid4().hex}",
                         max_body_bytes=64 * 1024, rate_limit_per_second=0, token_rate_limit_per_minute=0)


def _operations(schema):
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())     # an operation schemathesis cannot read is itself a failure
    return found


def _request_of(case, headers: dict[str, str]) -> str:
    shown = {k: ("Bearer …" if k.lower() == "authorization" and headers else v) for k, v in (case.headers or {}).items()}
    body = "-" if case.body is NOT_SET else repr(case.body)[:400]
    query = "?" + "&".join(f"{k}={v}" for k, v in case.query.items()) if case.query else ""
    return f"{case.method} {case.formatted_path}{query} headers={shown} media_type={case.media_type} body={body}"


def fuzz(operation, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """MAX_EXAMPLES cases of `operation` in `mode`; the first failure (request, answer, checks), or None."""
    seen: dict[str, str] = {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
              print_blob=False, report_multiple_bugs=False)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        if headers:
            case.headers = {**(case.headers or {}), **headers}
        response = case.call()
        checks = CHECKS
        if operation.label in PER_ITEM and mode is GenerationMode.NEGATIVE and response.status_code == 200:
            # a batch answers each message on its own: a message that breaks its contract is refused
            # inside the 200 (its own problem), not the whole batch
            refused = [r for r in response.json()["results"] if r["status"] >= 400]
            if not refused:
                seen["failure"] = (f"{operation.label} [{mode.value}]\n    request: {_request_of(case, headers)}"
                                   f"\n    answer: 200, every message taken: {response.text[:400]}")
                raise AssertionError(seen["failure"])
            checks = [c for c in CHECKS if c is not openapi_checks.negative_data_rejection]
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            seen["failure"] = (
                f"{operation.label} [{mode.value}]\n    request: {_request_of(case, headers)}"
                f"\n    answer: {response.status_code} {response.headers.get('content-type')} {response.text[:400]}"
                + "".join(f"\n    - {f.title}: {str(f.message)[:400]}" for f in group.exceptions))
            raise

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.NEGATIVE:
            return None               # nothing to break: no parameters, no body (health checks)
        return f"{operation.label} [{mode.value}]: no case could be generated from the document"
    except FailureGroup:
        return seen.get("failure", f"{operation.label} [{mode.value}]: failed")
    except Exception as err:  # noqa: BLE001 - a generation or transport error is a finding too
        return f"{operation.label} [{mode.value}]: {type(err).__name__}: {str(err)[:600]}"
    return None


@pytest.fixture(params=IDENTITIES)
def authorization(request, fuzz_hub) -> dict[str, str]:
    """The run's Authorization header: none (anonymous), or a token of the party."""
    return {} if request.param == "anonymous" else fuzz_hub.as_(request.param)


def test_every_operation_answers_as_its_document_says(fuzz_hub, authorization, request):
    headers, who = authorization, request.node.callspec.params["authorization"]
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_hub.http.app,
                                            config=SchemathesisConfig.from_dict(CONFIG))
    operations = _operations(schema)
    document = fuzz_hub.http.get("/openapi.json").json()
    declared = [f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item if m in _METHODS]
    assert sorted(op.label for op in operations) == sorted(declared), "every operation of the document is fuzzed"
    failures = [f for op in operations for mode in MODES if (f := fuzz(op, mode, headers))]
    assert not failures, f"{len(failures)} operation(s) do not answer as the document says ({who}):\n" + \
        "\n".join(failures)

