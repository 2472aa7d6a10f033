"""Settings, read once from the environment (prefix HUB_). One place decides every knob."""
from __future__ import annotations

import ipaddress
import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from hub.domain.errors import RegistryError


class ConfigurationError(RegistryError):
    """A setting is missing or contradicts a configuration file: start-up stops, naming the file and
    the setting. A RegistryError, so every command that reports a wrong contracts file reports this
    the same way: one line, exit 2."""

    @property
    def line(self) -> str:
        """The one line a command prints: `HUB_X: what was expected (got …)` for a variable of the
        environment, `file: field: message` for a configuration file."""
        if self.file == "environment":
            return f"{self.field}: {self.message}"
        return f"{self.file}: {self.field}: {self.message}"


class Unreachable(ConfigurationError):
    """The store or the broker of the settings does not answer: `broker amqp://host:port/vhost
    unreachable: connection refused` (the URL without user or password)."""

    def __init__(self, kind: str, variable: str, url: str, reason: str):
        super().__init__("environment", variable, f"{kind} {safe_url(url)} unreachable: {reason}")
        self.kind, self.url, self.reason = kind, safe_url(url), reason

    @property
    def line(self) -> str:
        return self.message


_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "postgresql": 5432, "postgres": 5432}


APP_NAME = "wib-hub"


def default_data_dir() -> Path:
    """The platform's user data directory (platformdirs: on Linux $XDG_DATA_HOME/wib-hub, else
    ~/.local/share/wib-hub), never the working directory: every command finds the same store."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def safe_url(url: str) -> str:
    """scheme://host:port/path of a server URL, never its user or password (a file URL as it is)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme in ("sqlite", "embedded", "memory", ""):
        return url.split("?", 1)[0]
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or _DEFAULT_PORTS.get(scheme)
    host = parts.hostname or "localhost"
    return f"{scheme}://{host}{f':{port}' if port else ''}{parts.path or '/'}"


def clip(value: object, limit: int = 40) -> str:
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: default_data_dir(),
                           description="where the embedded default keeps its files (an absolute path; a relative "
                                       "HUB_DATA_DIR is taken from the directory it is read in); default: the "
                                       "platform's user data directory, e.g. ~/.local/share/wib-hub ($XDG_DATA_HOME)")
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
    enrich_retry_max_seconds: float = Field(10.0, description="longest wait before a pending enrichment is tried again (a source back is used within it)")
    enrich_lease_seconds: float = Field(10.0, gt=0, description="how long an enricher holds a job without renewing "
                                        "it (renewed every third of it while its calls run); a dead holder's jobs "
                                        "are taken over after this")
    heartbeat_seconds: float = Field(5.0, ge=0, description="how often a process with workers writes its heartbeat "
                                     "to the store (`wib-hub doctor`, /readyz); 0: never")
    office_hours: str = Field("Mon-Fri 08:00-18:00 Europe/Brussels", description="the security officer's report flags consultations outside these hours")
    audit_key_file: Path | None = Field(None, description="Ed25519 private key (PEM) signing audit checkpoints; default: generated into data_dir (mode 0600)")
    audit_checkpoint_events: int = Field(1000, description="sign a checkpoint of the audit chain every N events")
    audit_checkpoint_seconds: float = Field(60.0, description="... or when T seconds passed since the last one")
    clock_scan_seconds: float = Field(60.0, description="how often the worker checks statutory clocks (reminders, deemed authorisation)")
    retention_batch: int = Field(1000, description="dossiers deleted per transaction by the retention run")
    retention_run_seconds: float = Field(3600.0, description="how often the worker runs retention (0: never; `wib-hub retention run` still works)")
    professional_card_start: date | None = Field(None, description="Art. 34/36: the day the professional-card procedure starts on the platform; before it (or unset) its flows refuse submissions")

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Every path derived from it (store, broker, keys, clients file, sandbox) is absolute, so a
        command run from another directory opens the same files, and prints where they are."""
        return Path(os.path.abspath(value.expanduser()))

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

    def resolved_store_file(self) -> Path | None:
        """The SQLite file of the store (the embedded default, or a sqlite:/// URL); None for a server."""
        url = self.resolved_database_url()
        scheme, sep, rest = url.partition(":///")
        if not sep or scheme.split("+", 1)[0].lower() != "sqlite":
            return None
        path = rest.split("?", 1)[0]
        return None if not path or path == ":memory:" or path.startswith("file:") else Path(path)

    def resolved_token_key_file(self) -> Path:
        return self.token_key_file or self.data_dir / "token.key"

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


# ── a setting of the environment that is not what it must be: one line per variable ─────────────

_EXPECTED = {
    "int_parsing": "expected an integer", "int_type": "expected an integer", "int_from_float": "expected an integer",
    "float_parsing": "expected a number", "float_type": "expected a number",
    "bool_parsing": "expected true or false", "bool_type": "expected true or false",
    "date_parsing": "expected a date YYYY-MM-DD", "date_from_datetime_parsing": "expected a date YYYY-MM-DD",
    "date_type": "expected a date YYYY-MM-DD",
    "dict_type": "expected a JSON object", "list_type": "expected a list", "string_type": "expected text",
    "path_type": "expected a path",
}
_SECRET = ("key", "secret", "password", "url")   # variables whose value is not echoed whole


def _variable(field: str) -> str:
    return "HUB_" + field.upper()


def _got(field: str, value: object) -> str:
    if any(word in field for word in _SECRET):
        return "a value that is not valid"
    return clip(value)


def settings_errors(err: Exception) -> list[str] | None:
    """The lines that say what is wrong with the environment, one per variable: `HUB_PORT: expected
    an integer (got 'abc')`; None when `err` is not an error of reading the Settings."""
    if isinstance(err, ValidationError):
        if err.title != Settings.__name__:
            return None
        lines = []
        for item in err.errors():
            loc = [str(p) for p in item.get("loc", ())]
            field = loc[0] if loc else "?"
            kind, ctx = item.get("type", ""), item.get("ctx") or {}
            if kind in _EXPECTED:
                expected = _EXPECTED[kind]
            elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
                bound = next(iter(ctx.values()), "?")
                expected = {"greater_than_equal": "at least", "greater_than": "more than",
                            "less_than_equal": "at most", "less_than": "less than"}[kind]
                expected = f"expected a number {expected} {bound}"
            else:
                expected = str(item.get("msg", "not valid")).removeprefix("Value error, ")
            if len(loc) > 1:
                expected += f" (at {'.'.join(loc[1:])})"
            line = f"{_variable(field)}: {expected}"
            if "input" in item and kind != "value_error":
                line += f" (got {_got(field, item['input'])})"
            if line not in lines:
                lines.append(line)
        return lines
    if isinstance(err, SettingsError):
        m = re.search(r'field "([a-z_]+)"', str(err))
        if not m:
            return [f"environment: {str(err)[:200]}"]
        field = m[1]
        raw = next((v for k, v in os.environ.items() if k.upper() == _variable(field)), "")
        hint = ', e.g. {"onss.dimona": "https://…"}' if field == "sources" else ""
        return [f"{_variable(field)}: expected JSON{hint} (got {_got(field, raw)})"]
    return None


def load_settings(**values: Any) -> Settings:
    """Settings() for a command: a bad variable is a ConfigurationError naming it (the first one)."""
    try:
        return Settings(**values)
    except (ValidationError, SettingsError) as err:
        lines = settings_errors(err)
        if not lines:
            raise
        field, _, message = lines[0].partition(": ")
        raise ConfigurationError("environment", field, message) from None
