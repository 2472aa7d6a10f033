"""`wib-hub keys init`: the hub's own two keys, made before the first start of a deployment.

- the access-token key (HS256; HUB_TOKEN_KEY_FILE, default token.key in HUB_DATA_DIR), and
- the audit checkpoint key (Ed25519 private key, PEM; HUB_AUDIT_KEY_FILE, default
  audit-signing-key.pem in HUB_DATA_DIR: the key bootstrap.checkpoint_policy signs with).

Each is written atomically, mode 0600, and never over an existing key unless --force."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.markup import escape

from hub.infra import auth
from hub.infra.settings import Settings
from hub.interfaces.cli.options import choice, cli_console

app = typer.Typer(help="The hub's own keys: the access-token key and the audit checkpoint signing key.",
                  no_args_is_help=True)
console = cli_console()

TOKEN_KEY_NAME = "token.key"
AUDIT_KEY_NAME = "audit-signing-key.pem"
ONLY = ("token", "audit")


def key_paths(settings: Settings, directory: Path | None) -> tuple[Path, Path]:
    """Where the token key and the audit key go: `directory` (both, by their default names), else
    where the settings look for them."""
    if directory is not None:
        return directory / TOKEN_KEY_NAME, directory / AUDIT_KEY_NAME
    return (settings.token_key_file or settings.data_dir / TOKEN_KEY_NAME), settings.resolved_audit_key_file()


def _audit_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@app.command("init")
def init(directory: Annotated[Optional[Path], typer.Option("--dir", help="write both keys here (e.g. deploy/); "
                                                                         "default: HUB_TOKEN_KEY_FILE and "
                                                                         "HUB_AUDIT_KEY_FILE, else HUB_DATA_DIR")] = None,
         force: Annotated[bool, typer.Option("--force", help="replace existing keys: every access token becomes "
                                                              "invalid, and checkpoints signed with the old audit "
                                                              "key no longer verify with the new one")] = False,
         only: Annotated[Optional[str], typer.Option("--only", help="token or audit: make (or with --force "
                                                                    "replace) that key alone",
                                                     callback=choice("--only", ONLY))] = None) -> None:
    """Create the access-token key and the audit checkpoint signing key (mode 0600); print their paths
    and the audit public key (what `wib-hub audit public-key` prints)."""
    from hub.audit.checkpoints import load_signer
    settings = Settings()
    token_path, audit_path = key_paths(settings, directory)
    wanted = [p for name, p in (("token", token_path), ("audit", audit_path)) if only in (None, name)]
    existing = [p for p in wanted if p.exists()]
    if existing and not force:
        console.print(f"[red]key_exists[/red]: {escape(', '.join(map(str, existing)))} already "
                      f"{'exists' if len(existing) == 1 else 'exist'}; nothing written (--force replaces)",
                      soft_wrap=True, highlight=False)
        raise typer.Exit(2)
    if directory is None and settings.token_key:
        console.print("[yellow]HUB_TOKEN_KEY is set: the hub signs tokens with it, not with the file written "
                      "here[/yellow]", soft_wrap=True)
    if token_path in wanted:
        auth.write_token_key(token_path, force=force)
        console.print(f"token key      {escape(str(token_path))} (0600)", soft_wrap=True, highlight=False)
    if audit_path not in wanted:
        return
    auth.write_private_file(audit_path, _audit_pem(), force=force)
    signer = load_signer(audit_path)
    console.print(f"audit key      {escape(str(audit_path))} (0600), key id {signer.key_id}",
                  soft_wrap=True, highlight=False)
    if audit_path in existing:
        console.print("[yellow]the audit key was replaced: keep the old public key to check the checkpoints "
                      "it signed[/yellow]", soft_wrap=True)
    console.print("audit public key (for `wib-hub audit verify --public-key`; `wib-hub audit public-key` "
                  "prints it again):", soft_wrap=True, highlight=False)
    print(signer.public_pem(), end="")
