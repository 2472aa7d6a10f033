"""Settings, read once from the environment (prefix HUB_). One place decides every knob."""
from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hub.domain.errors import RegistryError


class ConfigurationError(RegistryError):
    """A setting is missing or contradicts a configuration file: start-up stops, naming the file and
    the setting. A RegistryError, so every command that reports a wrong contracts file reports this
    the same way: one line, exit 2."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    data_dir: Path = Field(Path("var"), description="where the embedded default keeps its files")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    broker_url: str | None = Field(None, description="amqp://… for RabbitMQ; default: embedded SQLite transport in data_dir")
    contracts_dir: Path | None = Field(None, description="flow registry and contracts; default: the repository's contracts/")
    max_body_bytes: int = Field(10 * 1024 * 1024, description="largest accepted request body")
    token_ttl_seconds: int = Field(300, description="lifetime of an access token")
    token_key: str | None = Field(None, description="HS256 key for access tokens")
    token_key_file: Path | None = Field(None, description="file holding that key; default: generated into data_dir")
    clients_file: Path | None = Field(None, description="party client secrets (JSON); default: generated into data_dir")
    allow_client_secrets: bool = Field(True, description="accept client_secret at /oauth/token; false: private_key_jwt only")
    token_url: str | None = Field(None, description="public URL of /oauth/token, the `aud` every client assertion (private_key_jwt) must name, compared exactly; "
                                                "never taken from a request. Required when a party in the clients file has a public key "
                                                "(start-up stops without it); without it only client secrets work")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="addresses or networks (comma-separated, e.g. 10.0.0.5,10.1.0.0/16) of the reverse proxies "
                                          "whose X-Forwarded-For/-Proto are believed; default: none (the peer is the client)")
    max_header_count: int = Field(100, ge=1, description="most header fields a request may carry (more: 431)")
    max_header_bytes: int = Field(16 * 1024, ge=1024, description="largest total size of a request's header fields, names, values, ': ' and CRLF "
                                                                  "counted (more: 431); the request line may add up to 8 KiB")
    mtls_header: str | None = Field(None, description="header in which a TLS-terminating proxy passes the verified client-certificate subject; off by default")
    rate_limit_per_second: float = Field(100.0, description="sustained requests per second per party; 0 disables rate limiting")
    rate_limit_burst: int = Field(300, description="requests a party may send at once before the sustained rate applies")
    token_rate_limit_per_minute: int = Field(30, description="token requests per client id per minute (and at once) at /oauth/token, against guessing; 0 disables")
    queue_prefix: str = Field("", description="prefix of every queue name, to share one broker between hubs")
    log_level: str = Field("INFO", description="operational log level (JSON lines on stderr)")
    host: str = "127.0.0.1"
    port: int = 8080
    relay_batch: int = 500
    relay_poll_seconds: float = Field(0.25, description="longest the relay waits between outbox reads")
    worker_prefetch: int = 200
    sources: dict[str, str] = Field(default_factory=dict, description='source system URLs by adapter name, JSON: {"onss.dimona": "https://…"}')
    sandbox: bool = Field(True, description="start the simulators in-process for sources without a URL (embedded default)")
    sandbox_dir: Path | None = Field(None, description="the sandbox's key; default: data_dir/sandbox")
    source_client_id: str = Field("wib-hub", description="OAuth2 client id at the REST sources")
    source_key_file: Path | None = Field(None, description="private_key_jwt signing key (PEM); default: the sandbox key in data_dir")
    source_timeout_seconds: float = Field(5.0, description="timeout of one call to a source")
    enrich_parallel: int = Field(16, description="concurrent source calls of the enricher")
    enrich_retry_max_seconds: float = Field(30.0, description="longest wait before a pending enrichment is tried again")
    office_hours: str = Field("Mon-Fri 08:00-18:00 Europe/Brussels", description="the security officer's report flags consultations outside these hours")
    audit_key_file: Path | None = Field(None, description="Ed25519 private key (PEM) signing audit checkpoints; default: generated into data_dir (mode 0600)")
    audit_checkpoint_events: int = Field(1000, description="sign a checkpoint of the audit chain every N events")
    audit_checkpoint_seconds: float = Field(60.0, description="... or when T seconds passed since the last one")
    clock_scan_seconds: float = Field(60.0, description="how often the worker checks statutory clocks (reminders, deemed authorisation)")
    retention_batch: int = Field(1000, description="dossiers deleted per transaction by the retention run")
    retention_run_seconds: float = Field(3600.0, description="how often the worker runs retention (0: never; `wib-hub retention run` still works)")
    professional_card_start: date | None = Field(None, description="Art. 34/36: the day the professional-card procedure starts on the platform; before it (or unset) its flows refuse submissions")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        """A comma-separated list (the environment) or a list; each an IP address or network,
        written as uvicorn matches it (a network by its base address: 10.1.2.3/16 is 10.1.0.0/16)."""
        if isinstance(value, str):
            value = [part for part in (p.strip() for p in value.split(",")) if part]
        if not isinstance(value, (list, tuple)):
            return value
        proxies = []
        for item in (str(v).strip() for v in value):
            try:
                proxies.append(str(ipaddress.ip_network(item, strict=False)) if "/" in item
                               else str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"not an IP address or network: {item[:60]!r}") from None
        return proxies

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    def resolved_sandbox_dir(self) -> Path:
        return self.sandbox_dir or self.data_dir / "sandbox"

    def resolved_audit_key_file(self) -> Path:
        return self.audit_key_file or self.data_dir / "audit-signing-key.pem"

    def resolved_clients_file(self) -> Path:
        return self.clients_file or self.data_dir / "clients.json"
