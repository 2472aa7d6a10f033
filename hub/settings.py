"""Settings, read once from the environment (prefix HUB_). One place decides every knob."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    def resolved_sandbox_dir(self) -> Path:
        return self.sandbox_dir or self.data_dir / "sandbox"

    def resolved_clients_file(self) -> Path:
        return self.clients_file or self.data_dir / "clients.json"
