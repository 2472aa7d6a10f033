"""The back-office pollers' settings: one declaration, read from the environment and shown by `--help`.

Every setting a poller reads is a field of `PollerSettings`; its metadata (`setting(...)`) names the
environment variable, the default and what it is. `PollerSettings.from_env` reads them and
`help_epilog()` lists them, so the help cannot forget one (tests/contract/test_backoffice.py walks
the same fields).

The sandbox: `wib-hub sandbox` serves the DVZ and regional back-office simulators on its ports
(`--port`, default 8100; one port per adapter in name order) with the simulators' static API key
(`SIMULATOR_API_KEY` of adapters/backoffice/simulator.py). `--sandbox` makes those the defaults of
BACKOFFICE_URL and BACKOFFICE_API_KEY, and takes POLLER_CLIENT_SECRET from the hub's clients file.
"""
from __future__ import annotations

import json
import os
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from adapters.backoffice.simulator import SIMULATOR_API_KEY

__all__ = ["PollerSettings", "SettingsError", "help_epilog", "sandbox_backoffice_url", "SANDBOX_HOST",
           "SANDBOX_FIRST_PORT", "SIMULATOR_API_KEY"]

SANDBOX_HOST = "127.0.0.1"
SANDBOX_FIRST_PORT = 8100           # `wib-hub sandbox --port` default


class SettingsError(ValueError):
    """A required setting is missing or not valid."""


def setting(env: str, help: str, *, default: Any = None, shown: str | None = None, required: bool = False,
            sandbox: str | None = None) -> Any:
    """A field read from environment variable `env`; `shown` is how the default reads in `--help`
    (when it is not a plain value), `sandbox` what `--sandbox` takes instead."""
    return field(metadata={"env": env, "help": help, "default": default, "shown": shown, "required": required,
                           "sandbox": sandbox})


def hub_data_dir() -> Path:
    """The hub's default data directory (hub/infra/settings.py: platformdirs' user data directory,
    never the working directory), where `wib-hub serve` keeps clients.json."""
    import platformdirs
    return Path(platformdirs.user_data_dir("wib-hub", appauthor=False))


@dataclass(frozen=True)
class PollerSettings:
    """What one back-office poller reads from its environment."""

    hub_url: str = setting("HUB_URL", "the hub API's base URL", default="http://127.0.0.1:8080")
    client_id: str = setting("POLLER_CLIENT_ID", "the party's hub client id", shown="the party id (dvz, region.flanders, …)")
    client_secret: str = setting("POLLER_CLIENT_SECRET", "the party's hub client secret", required=True,
                                 sandbox="the party's \"secret\" in HUB_CLIENTS_FILE")
    clients_file: Path = setting("HUB_CLIENTS_FILE", "the hub's client secrets file (read with --sandbox only)",
                                 shown="HUB_DATA_DIR/clients.json")
    data_dir: Path = setting("HUB_DATA_DIR", "the hub's data directory (with --sandbox: where clients.json is)",
                             shown="the hub's: the user data directory, as `wib-hub doctor --data-dir` prints it")
    backoffice_url: str = setting("BACKOFFICE_URL", "the back office's backoffice-v1 base URL", required=True,
                                  sandbox=f"the sandbox's simulator, http://{SANDBOX_HOST}:<POLLER_SANDBOX_PORT + n>")
    backoffice_api_key: str = setting("BACKOFFICE_API_KEY", "the static API key the back office issued (sent as a "
                                      "bearer token)", required=True,
                                      sandbox=f"the simulators' key {SIMULATOR_API_KEY!r}")
    sandbox_port: int = setting("POLLER_SANDBOX_PORT", "the first port of `wib-hub sandbox` (its --port; "
                                "with --sandbox only)", default=SANDBOX_FIRST_PORT)
    state_dir: Path = setting("POLLER_STATE_DIR", "where the cursor and the rejected log are kept",
                              default="var/pollers")
    interval_s: float = setting("POLLER_INTERVAL_SECONDS", "wait between passes when idle, in seconds", default=2.0)
    page_size: int = setting("POLLER_PAGE_SIZE", "events / inbox items per request", default=100)
    log_level: str = setting("HUB_LOG_LEVEL", "level of the JSON log lines on stderr (DEBUG, INFO, WARNING, "
                             "ERROR)", default="INFO")

    @classmethod
    def from_env(cls, party: str, env: Mapping[str, str] = os.environ, *, sandbox: bool = False,
                 adapter: str | None = None) -> "PollerSettings":
        """The settings of `party`'s poller; `sandbox`: defaults from `wib-hub sandbox` (the back
        office of `adapter`, e.g. "dvz.back-office")."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        missing: list[str] = []
        for f in fields(cls):
            meta = f.metadata
            raw = env.get(meta["env"]) or None
            if raw is None:
                values[f.name] = meta["default"]
                if meta["required"] and not (sandbox and meta["sandbox"]):
                    missing.append(meta["env"])
                continue
            try:
                values[f.name] = hints[f.name](raw)
            except ValueError as err:
                raise SettingsError(f"{meta['env']}={raw!r} is not a valid {hints[f.name].__name__}: {err}") from err
        if missing:
            raise SettingsError(f"{', '.join(missing)} required (see --help; against `wib-hub sandbox`, "
                                "--sandbox supplies them)")
        values["client_id"] = values["client_id"] or party
        values["data_dir"] = Path(values["data_dir"] or hub_data_dir())
        values["clients_file"] = Path(values["clients_file"] or values["data_dir"] / "clients.json")
        values["state_dir"] = Path(values["state_dir"])
        values["interval_s"], values["page_size"] = float(values["interval_s"]), int(values["page_size"])
        if sandbox:
            if values["backoffice_url"] is None:
                values["backoffice_url"] = sandbox_backoffice_url(adapter, int(values["sandbox_port"]))
            if values["backoffice_api_key"] is None:
                values["backoffice_api_key"] = SIMULATOR_API_KEY
            if values["client_secret"] is None:
                values["client_secret"] = _secret_from(values["clients_file"], values["client_id"])
        _check(values)
        return cls(**values)


def _check(values: dict[str, Any]) -> None:
    from adapters.backoffice import contract
    low, high = contract.limit_bounds()
    if not low <= values["page_size"] <= high:
        raise SettingsError(f"POLLER_PAGE_SIZE must be in [{low}, {high}] (the back-office contract's limit)")
    if values["interval_s"] < 0:
        raise SettingsError("POLLER_INTERVAL_SECONDS must not be negative")


def _secret_from(path: Path, client_id: str) -> str:
    try:
        entry = json.loads(path.read_text(encoding="utf-8")).get(client_id) or {}
    except (OSError, ValueError, AttributeError) as err:
        raise SettingsError(f"POLLER_CLIENT_SECRET is not set and the hub's clients file {path} cannot be read "
                            f"({type(err).__name__}); start the hub once, or set HUB_DATA_DIR / HUB_CLIENTS_FILE") from err
    secret = entry.get("secret") if isinstance(entry, dict) else None
    if not secret:
        raise SettingsError(f"POLLER_CLIENT_SECRET is not set and {path} holds no plain secret for {client_id!r}")
    return str(secret)


def sandbox_backoffice_url(adapter: str | None, first_port: int = SANDBOX_FIRST_PORT) -> str:
    """Where `wib-hub sandbox --port first_port` serves `adapter`'s simulator: the adapters in name
    order take first_port, first_port + 1, … (hub/interfaces/cli/enrich.py)."""
    from hub.ports import load_adapters
    names = list(load_adapters())
    if adapter not in names:
        raise SettingsError(f"--sandbox: no installed adapter {adapter!r}")
    return f"http://{SANDBOX_HOST}:{first_port + names.index(adapter)}"


def help_epilog(settings: type[PollerSettings] = PollerSettings, adapter: str | None = None) -> str:
    """The environment variables of `settings`, for `--help` (`adapter`: name the sandbox URL of its simulator)."""
    lines = ["environment:"]
    for f in fields(settings):
        meta = f.metadata
        if meta["required"]:
            default = "required"
        else:
            default = f"default: {meta['shown'] or meta['default']}"
        if meta["sandbox"]:
            shown = meta["sandbox"]
            if f.name == "backoffice_url" and adapter is not None:
                try:
                    shown = f"{sandbox_backoffice_url(adapter)} (the sandbox's {adapter} at its default ports)"
                except SettingsError:
                    pass
            default += f"; with --sandbox: {shown}"
        lines.append(f"  {meta['env']:<24}{meta['help']}")
        lines.append(f"  {'':<24}({default})")
    lines += ["",
              "the back-office API key: the back office issues it. The sandbox (`wib-hub sandbox`) serves the",
              f"DVZ and regional back-office simulators with the key {SIMULATOR_API_KEY!r}",
              "(adapters/backoffice/simulator.py SIMULATOR_API_KEY); with --sandbox the poller uses it, the",
              "simulator's URL and the party's secret from the hub's clients file. The regional simulator is",
              "Flanders' (run --region flanders against it).",
              "",
              "logs: one JSON object a line on stderr (no personal data); --once prints a table on stdout."]
    return "\n".join(lines)
