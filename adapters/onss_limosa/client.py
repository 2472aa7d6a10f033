"""The Limosa REST client (limosa-v1.openapi.yaml): httpx with `PrivateKeyJwt` (private_key_jwt,
scope scope:limosa:declaration:consult). Every answer is checked against the contract.

`SourceUnavailable`: timeout, connection error, 5xx, 401/429 after the token refresh, a token
endpoint that fails, malformed or invalid JSON. `SourceRefused`: any other 4xx (404 on one
declaration is `None`, not an error).
"""
from __future__ import annotations

from typing import Any

import httpx

from hub.ports import SourceConfig, SourceRefused, SourceUnavailable
from hub.domain.errors import MalformedMessage
from hub.domain.values import strict_loads
from adapters.common import http_client
from adapters.oauth import PrivateKeyJwt, TokenError
from adapters.onss_limosa import contract


class LimosaClient:
    def __init__(self, config: SourceConfig, http: httpx.Client | None = None):
        if config.private_key_pem is None:
            raise ValueError("Limosa needs the client's private_key_jwt signing key")
        base = config.url.rstrip("/")
        self.auth = PrivateKeyJwt(config.client_id, config.private_key_pem, base + contract.TOKEN_PATH,
                                  scopes=(contract.SCOPE,))
        self.base = base + contract.BASE_PATH
        self.http = http or http_client(config)

    def _get(self, path: str, params: dict[str, str] | None = None, component: str = "DeclarationList",
             missing_ok: bool = False) -> Any:
        try:
            r = self.http.get(self.base + path, params=params, auth=self.auth,
                              headers={"Accept": "application/json"})
        except TokenError as err:
            raise SourceUnavailable(f"Limosa token: {err}") from err
        except httpx.TimeoutException as err:
            raise SourceUnavailable(f"Limosa timed out: {type(err).__name__}") from err
        except httpx.HTTPError as err:
            raise SourceUnavailable(f"Limosa unreachable: {type(err).__name__}") from err
        if r.status_code == 404 and missing_ok:
            return None
        if r.status_code >= 500 or r.status_code in (401, 429):
            raise SourceUnavailable(f"Limosa answered HTTP {r.status_code}")
        if r.status_code >= 400:
            raise SourceRefused(f"Limosa refused {path}: HTTP {r.status_code}")
        if r.status_code != 200:
            raise SourceUnavailable(f"Limosa answered unexpected HTTP {r.status_code}")
        try:
            body = strict_loads(r.content)
        except MalformedMessage as err:     # not JSON, or a value the hub does not take (NaN, NUL, …)
            raise SourceUnavailable(f"Limosa answered malformed JSON: {err.code}") from err
        found = contract.errors(component, body)
        if found:
            raise SourceUnavailable(f"Limosa answer not valid against {component}: {found[:3]}")
        return body

    def by_ssin(self, ssin: str) -> list[dict[str, Any]]:
        return self._get("/declarations", {"ssin": ssin})["declarations"]

    def by_employer(self, enterprise_number: str) -> list[dict[str, Any]]:
        return self._get("/declarations", {"employer": enterprise_number})["declarations"]

    def get(self, declaration_id: str) -> dict[str, Any] | None:
        return self._get(f"/declarations/{declaration_id}", component="Declaration", missing_ok=True)

    def close(self) -> None:
        self.http.close()
