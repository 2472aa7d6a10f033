"""`wib-hub clients`: the parties' credentials in the clients file (hub/infra/auth.py has its format).

A client secret is generated here, printed once and never stored: the file keeps its SHA-256
(`secret_sha256`). A public key (PEM or JWKS) registers the party for private_key_jwt, checked as the
hub checks it at start-up (RSA ≥ 2048 bits, P-256 or Ed25519; never a private key). Every write
replaces the file atomically, mode 0600. The party must be one of contracts/parties.yaml."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from hub.infra import auth
from hub.infra.settings import Settings
from hub.interfaces.cli.options import cli_console, party_id, registry

app = typer.Typer(help="The parties' credentials at /oauth/token: client secrets (hashes only) and public keys.",
                  no_args_is_help=True)
console = cli_console()
notes = cli_console(stderr=True)   # what is said beside the secret, which alone goes to stdout

FileOption = Annotated[Optional[Path], typer.Option("--file", help="the clients file; default: HUB_CLIENTS_FILE, "
                                                                   "else clients.json in HUB_DATA_DIR")]
PublicKeyOption = Annotated[Optional[Path], typer.Option("--public-key", help="the party's public key (PEM) for "
                                                                              "private_key_jwt")]
JwksOption = Annotated[Optional[Path], typer.Option("--jwks", help="the party's public keys as a JWKS (JSON) for "
                                                                   "private_key_jwt")]
ContractsDir = Annotated[Optional[Path], typer.Option(help="default: HUB_CONTRACTS_DIR or the repository's")]


def _refuse(code: str, message: str) -> typer.Exit:
    """One line, exit 2."""
    console.print(f"[red]{code}[/red]: {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(2)


def _party(value: str, contracts_dir: Path | None) -> str:
    party = party_id(value) or ""
    known = registry(contracts_dir).parties
    if party not in known:
        raise _refuse("unknown_party", f"{value[:60]!r} is not a party of contracts/parties.yaml "
                                       f"(one of: {', '.join(sorted(known))})")
    return party


def _file(path: Path | None) -> Path:
    return path or Settings().resolved_clients_file()


def _read(path: Path) -> dict[str, Any]:
    try:
        return auth.read_clients_file(path)
    except (ValueError, OSError) as err:
        raise _refuse("clients_file_refused", f"{path}: {err}") from err


def _write(path: Path, entries: dict[str, Any]) -> None:
    try:
        auth.write_clients_file(path, entries)
    except (ValueError, OSError) as err:
        raise _refuse("clients_file_refused", str(err)) from err


def _key_material(party: str, public_key: Path | None, jwks: Path | None) -> tuple[str, Any] | None:
    """("pem", text) or ("jwks", [jwk, …]) of the key file given, checked; None without one."""
    if public_key is not None and jwks is not None:
        raise _refuse("invalid_option", "give --public-key or --jwks, not both")
    try:
        if public_key is not None:
            pem = public_key.read_text()
            auth.public_key_from_pem(pem, f"{public_key}")
            return "pem", pem.strip() + "\n"
        if jwks is not None:
            raw = json.loads(jwks.read_text())
            keys = raw.get("keys") if isinstance(raw, dict) and "keys" in raw else [raw]
            if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
                raise ValueError(f"{jwks}: not a JWK or a JWKS ({{\"keys\": [...]}})")
            auth.client_entry(party, {"jwks": {"keys": keys}})   # the start-up checks, private keys refused
            return "jwks", keys
    except (OSError, ValueError, json.JSONDecodeError) as err:
        raise _refuse("key_refused", str(err).replace(f"clients file: {party}: ", f"{party}: ")) from err
    except Exception as err:   # PyJWK's own errors (an unknown kty, a bad curve)
        raise _refuse("key_refused", f"{party}: not a usable public key: {err}") from err
    return None


def _pems(entry: dict[str, Any]) -> list[str]:
    pems = entry.get("public_key_pem") or []
    return [pems] if isinstance(pems, str) else list(pems)


def _add_key(entry: dict[str, Any], material: tuple[str, Any]) -> None:
    kind, value = material
    if kind == "pem":
        pems = _pems(entry)
        if value.strip() not in (p.strip() for p in pems):
            pems.append(value)
        entry["public_key_pem"] = pems[0] if len(pems) == 1 else pems
    else:
        keys = list((entry.get("jwks") or {}).get("keys", []))
        keys += [k for k in value if k not in keys]
        entry["jwks"] = {"keys": keys}


def _only_key(entry: dict[str, Any], material: tuple[str, Any]) -> None:
    """The key given becomes the party's only key; its other keys and its secret are dropped."""
    for field in ("public_key_pem", "jwks", "secret", "secret_sha256"):
        entry.pop(field, None)
    _add_key(entry, material)


def _new_secret(entry: dict[str, Any]) -> str:
    secret, digest = auth.new_client_secret()
    entry.pop("secret", None)   # a plain secret (the embedded default's) is replaced too
    entry["secret_sha256"] = digest
    return secret


def _show_secret(party: str, path: Path, secret: str) -> None:
    notes.print(f"{party}: client secret below, shown this once; {path} keeps only its SHA-256. "
                "Hand it to the party over a secure channel.", soft_wrap=True, highlight=False)
    print(secret)


@app.command("add")
def add(party: Annotated[str, typer.Argument(help="a party id of contracts/parties.yaml, e.g. dvz")],
        public_key: PublicKeyOption = None, jwks: JwksOption = None, file: FileOption = None,
        contracts_dir: ContractsDir = None) -> None:
    """Register a party: with no key, a new random client secret (printed once, only its SHA-256 kept);
    with --public-key or --jwks, its key for private_key_jwt."""
    party = _party(party, contracts_dir)
    path = _file(file)
    material = _key_material(party, public_key, jwks)
    entries = _read(path)
    if party in entries:
        raise _refuse("already_registered", f"{party} is already in {path}; use `wib-hub clients rotate {party}`")
    entry: dict[str, Any] = {}
    secret = _new_secret(entry) if material is None else _add_key(entry, material)
    _save(path, entries, party, entry, secret, "registered (private_key_jwt; the hub needs HUB_TOKEN_URL)")


@app.command("rotate")
def rotate(party: Annotated[str, typer.Argument(help="a party id already in the clients file")],
           public_key: PublicKeyOption = None, jwks: JwksOption = None,
           drop_old: Annotated[bool, typer.Option("--drop-old", help="with --public-key/--jwks: that key becomes the "
                                                                     "party's only key (its other keys and its "
                                                                     "secret are removed)")] = False,
           file: FileOption = None, contracts_dir: ContractsDir = None) -> None:
    """A new client secret (the old one stops working at once), or, with --public-key/--jwks, a new key
    beside the old ones for a rollover; finish it with the same key and --drop-old.

    The running hub reads the clients file at start: restart the API processes to apply."""
    party = _party(party, contracts_dir)
    path = _file(file)
    material = _key_material(party, public_key, jwks)
    if drop_old and material is None:
        raise _refuse("invalid_option", "--drop-old needs the key to keep (--public-key or --jwks)")
    entries = _read(path)
    if party not in entries:
        raise _refuse("not_registered", f"{party} is not in {path}; use `wib-hub clients add {party}`")
    entry = dict(entries[party])
    if material is None:
        secret = _new_secret(entry)
    else:
        secret = _only_key(entry, material) if drop_old else _add_key(entry, material)
    what = "is now its only key (old keys and secret removed)" if drop_old else "added beside its other keys"
    _save(path, entries, party, entry, secret, f"{what}; restart the API processes to apply")


def _save(path: Path, entries: dict[str, Any], party: str, entry: dict[str, Any], secret: str | None,
          key_note: str) -> None:
    """Write the file with the party's entry, then show the new secret once, or say what became of its key."""
    entries[party] = entry
    _write(path, entries)
    if secret is not None:
        _show_secret(party, path, secret)
    else:
        notes.print(f"{party}: public key {key_note} in {path}", soft_wrap=True, highlight=False)


def _describe(party: str, entry: dict[str, Any]) -> tuple[str, str, str]:
    """(secret, keys, certificate subject) of an entry as the list shows them: never a secret."""
    if entry.get("secret_sha256"):
        secret = f"sha256 {str(entry['secret_sha256'])[:12]}…"
    elif entry.get("secret"):
        secret = "plain secret in the file (embedded default; `clients rotate` hashes it)"
    else:
        secret = "—"
    try:
        client = auth.client_entry(party, entry)
        keys = "\n".join(f"{k.alg} kid={k.kid or '—'} sha256:{auth.key_fingerprint(k.key)}"
                         for k in client.public_keys) or "—"
    except Exception as err:   # shown, not fatal: the list is how one finds the bad entry
        keys = f"NOT VALID: {err}"
    return secret, keys, (entry.get("certificate_subject") or "").strip() or "—"


@app.command("list")
def list_clients(file: FileOption = None) -> None:
    """The registered parties and how each authenticates: secret hash, keys (alg, kid, fingerprint),
    certificate subject. Never a secret."""
    path = _file(file)
    entries = _read(path)
    table = Table(title=f"{len(entries)} clients in {path}")
    for col in ("party", "secret", "keys", "certificate subject"):
        table.add_column(col)
    for party in sorted(entries):
        entry = entries[party] if isinstance(entries[party], dict) else {}
        table.add_row(escape(party), *(escape(v) for v in _describe(party, entry)))
    console.print(table)
