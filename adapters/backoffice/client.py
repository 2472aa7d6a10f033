"""HTTP clients of the poller: one for an authority's back office (contract backoffice-v1), one for the hub.

Errors are types: transient trouble (timeout, connection, 5xx, 401/429 that a retry may cure, a body
that breaks the contract) is `SourceUnavailable`; a permanent refusal (other 4xx) is `SourceRefused`.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Iterable

import httpx

from adapters.backoffice import contract
from hub.ports import BackOfficeEvent, SourceRefused, SourceUnavailable
from hub.domain.errors import MalformedMessage
from hub.domain.values import strict_loads

__all__ = ["BackOfficeClient", "BackOfficeRefused", "HubApi", "HubUnavailable", "HubRefused", "event_from_json"]


class HubUnavailable(SourceUnavailable):
    """The hub did not answer usefully; try again later."""


class HubRefused(SourceRefused):
    """The hub refused the request for good (4xx other than 401/429); `code` is its error code."""

    def __init__(self, status: int, code: str, detail: Any = None):
        super().__init__(f"hub refused ({status} {code}): {detail}")
        self.status, self.code, self.detail = status, code, detail


class BackOfficeRefused(SourceRefused):
    """The back office refused the request for good (4xx other than 401/429), or the hub item cannot be
    said in the contract (`code` "contract_violation")."""

    def __init__(self, message: str, status: int | None, code: str):
        super().__init__(message)
        self.status, self.code = status, code


def _send(http: httpx.Client, method: str, url: str, who: str, **kw: Any) -> httpx.Response:
    try:
        return http.request(method, url, **kw)
    except httpx.TimeoutException as err:
        raise SourceUnavailable(f"{who}: timeout on {method} {url}") from err
    except httpx.HTTPError as err:
        raise SourceUnavailable(f"{who}: {type(err).__name__} on {method} {url}") from err


def _json(r: httpx.Response, who: str) -> Any:
    try:
        return strict_loads(r.content)
    except MalformedMessage as err:     # not JSON, or a value the hub does not take (NaN, NUL, …)
        raise SourceUnavailable(f"{who}: malformed JSON answer ({r.status_code}): {err.code}") from err


def _problem(r: httpx.Response) -> tuple[str, Any]:
    try:
        body = r.json()
        return str(body.get("error", "error")), body.get("detail")
    except (ValueError, AttributeError):
        return "error", r.text[:200]


def event_from_json(e: dict[str, Any]) -> BackOfficeEvent:
    return BackOfficeEvent(event_id=e["event_id"], flow=e["flow"], dossier_id=e.get("dossier_id"),
                           correlation_id=e.get("correlation_id"), payload=e["payload"])


class BackOfficeClient:
    """An authority's back office over backoffice-v1: `events_since`, `acknowledge`, `deliver`.

    Implements the `BackOffice` port of hub.ports. Every request body is checked against the
    contract before it leaves, every answer when it arrives.
    """

    def __init__(self, party: str, url: str | None = None, api_key: str = "", *, http: httpx.Client | None = None,
                 timeout_s: float = 10.0):
        self.party = party
        self.http = http or httpx.Client(base_url=url or "", timeout=timeout_s)
        if http is not None and url:
            self.http.base_url = httpx.URL(url)
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = _send(self.http, method, path, f"back office {self.party}", headers=self._auth, **kw)
        if r.status_code >= 500 or r.status_code in (401, 429):
            raise SourceUnavailable(f"back office {self.party}: {r.status_code} on {method} {path}")
        if r.status_code >= 400:
            code, detail = _problem(r)
            raise BackOfficeRefused(f"back office {self.party}: {r.status_code} {code} on {method} {path}: {detail}",
                                    r.status_code, code)
        return r

    def _answer(self, r: httpx.Response, component: str) -> Any:
        body = _json(r, f"back office {self.party}")
        found = contract.errors(component, body)
        if found:
            raise SourceUnavailable(f"back office {self.party}: answer breaks {component}: {found[:3]}")
        return body

    def events_page(self, cursor: str | None, limit: int = 100) -> dict[str, Any]:
        """GET /events: the raw page (validated), events oldest first."""
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["after"] = cursor
        return self._answer(self._call("GET", "/events", params=params), "EventPage")

    def events_since(self, cursor: str | None, limit: int = 100) -> tuple[list[BackOfficeEvent], str | None]:
        page = self.events_page(cursor, limit)
        return [event_from_json(e) for e in page["events"]], page["cursor"]

    def acknowledge(self, cursor: str) -> int:
        body = {"cursor": cursor}
        contract.check("AckRequest", body)
        return self._answer(self._call("POST", "/events/ack", json=body), "AckResult")["acknowledged"]

    def deliver(self, item: dict[str, Any]) -> bool:
        """POST /hub-messages; True when new (201), False when the back office already had it (200)."""
        try:
            contract.check("HubMessage", item)
        except contract.ContractViolation as err:   # the hub item cannot be said in this contract
            raise BackOfficeRefused(f"back office {self.party}: {err}", None, "contract_violation") from err
        r = self._call("POST", "/hub-messages", json=item)
        self._answer(r, "DeliveryResult")
        if r.status_code not in (200, 201):
            raise SourceUnavailable(f"back office {self.party}: unexpected {r.status_code} on POST /hub-messages")
        return r.status_code == 201


class HubApi:
    """The hub's authority API as one party: token (client credentials), send, inbox, acknowledge.

    A 401 is answered by fetching a new token and trying once more. Accepts an injected httpx.Client
    (e.g. FastAPI's TestClient) whose base URL is the hub.
    """

    def __init__(self, client_id: str, client_secret: str, url: str | None = None, *,
                 http: httpx.Client | None = None, timeout_s: float = 10.0, clock=time.monotonic):
        self.client_id, self._secret = client_id, client_secret
        self.http = http or httpx.Client(base_url=url or "", timeout=timeout_s)
        self._token: str | None = None
        self._expires = 0.0
        self._clock = clock
        self._lock = threading.Lock()

    def _fetch_token(self) -> str:
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret}
        r = _send(self.http, "POST", "/oauth/token", "hub", data=form)
        if r.status_code >= 500 or r.status_code == 429:
            raise HubUnavailable(f"hub token endpoint: {r.status_code}")
        if r.status_code != 200:
            raise HubRefused(r.status_code, *_problem(r))
        body = _json(r, "hub")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise HubUnavailable("hub token endpoint: no access_token in the answer")
        self._token = body["access_token"]
        self._expires = self._clock() + float(body.get("expires_in", 60)) - 10
        return self._token

    def token(self, fresh: bool = False) -> str:
        with self._lock:
            if fresh or self._token is None or self._clock() >= self._expires:
                return self._fetch_token()
            return self._token

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for attempt in (0, 1):
            headers = {"Authorization": f"Bearer {self.token(fresh=attempt == 1)}"}
            r = _send(self.http, method, path, "hub", headers=headers, **kw)
            if r.status_code != 401:
                break
        if r.status_code >= 500 or r.status_code in (401, 429):
            raise HubUnavailable(f"hub: {r.status_code} on {method} {path}")
        if r.status_code >= 400:
            raise HubRefused(r.status_code, *_problem(r))
        return r

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/messages; the answer has `duplicate` true when the hub already had this message id."""
        body = _json(self._call("POST", "/v1/messages", json=message), "hub")
        if not isinstance(body, dict) or "message_id" not in body:
            raise HubUnavailable("hub: answer to POST /v1/messages without message_id")
        return body

    def inbox(self, limit: int = 100, after: int = 0) -> list[dict[str, Any]]:
        body = _json(self._call("GET", "/v1/inbox", params={"limit": limit, "after": after}), "hub")
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise HubUnavailable("hub: inbox answer without items")
        return list(body["items"])

    def acknowledge(self, ids: Iterable[int]) -> dict[str, str]:
        ids = list(ids)
        if not ids:
            return {}
        results: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            body = _json(self._call("POST", "/v1/inbox/ack", json={"ids": ids[i:i + 500]}), "hub")
            results.update(body.get("results", {}))
        return results
