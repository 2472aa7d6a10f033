"""`wib-hub clients` and `wib-hub keys init`: the clients file an operator writes (hashes only, keys
checked as at start-up, atomic, 0600) authenticates at /oauth/token on a hub built on it; the hub's
own keys are made once, 0600, and never overwritten unless asked."""
from __future__ import annotations

import hashlib
import json
import stat
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from typer.testing import CliRunner

from hub.audit.checkpoints import load_signer
from hub.infra.auth import ASSERTION_TYPE, load_clients
from hub.interfaces.cli.main import app
from tests.support import sqlite_store, start_hub
from tests.support.authentication import TOKEN_URL, assertion

runner = CliRunner()
NOT_A_TERMINAL = {"COLUMNS": None}


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run(*args: str):
    return runner.invoke(app, list(args), env=NOT_A_TERMINAL)


def _add_secret(path, party: str) -> str:
    result = _run("clients", "add", party, "--file", str(path))
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def _pem_file(tmp_path, private, name: str = "party.pem"):
    path = tmp_path / name
    path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def _hub(tmp_path, clients_file):
    return start_hub(tmp_path / "data", sqlite_store(tmp_path / f"hub-{uuid.uuid4().hex[:6]}.db"),
                     f"memory://{uuid.uuid4().hex}", clients_file=clients_file, token_url=TOKEN_URL)


def _token(h, **form):
    return h.http.post("/oauth/token", data={"grant_type": "client_credentials", **form})


def test_add_writes_only_the_hash_and_the_secret_authenticates(tmp_path):
    path = tmp_path / "deploy" / "clients.json"
    secret = _add_secret(path, "dvz")
    text = path.read_text()
    assert secret not in text and len(secret) >= 32
    assert json.loads(text) == {"dvz": {"secret_sha256": hashlib.sha256(secret.encode()).hexdigest()}}
    assert _mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["clients.json"]   # no temporary file left
    gen = _hub(tmp_path, path)
    h = next(gen)
    try:
        ok = _token(h, client_id="dvz", client_secret=secret)
        assert ok.status_code == 200, ok.text
        assert h.http.get("/v1/flows", headers={"Authorization": f"Bearer {ok.json()['access_token']}"}).status_code == 200
        assert _token(h, client_id="dvz", client_secret=secret + "x").status_code == 401
    finally:
        gen.close()


def test_add_a_public_key_then_private_key_jwt_authenticates(tmp_path):
    path = tmp_path / "clients.json"
    key = ed25519.Ed25519PrivateKey.generate()
    result = _run("clients", "add", "portal", "--public-key", str(_pem_file(tmp_path, key)), "--file", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""   # no secret made, none printed
    assert load_clients(path)["portal"].public_keys[0].alg == "EdDSA"
    assert _mode(path) == 0o600
    gen = _hub(tmp_path, path)
    h = next(gen)
    try:
        r = _token(h, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion("portal", key, "EdDSA"))
        assert r.status_code == 200, r.text
    finally:
        gen.close()


def test_jwks_registered_and_private_or_weak_keys_refused(tmp_path):
    path = tmp_path / "clients.json"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key())), "kid": "dvz-1"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    assert _run("clients", "add", "dvz", "--jwks", str(tmp_path / "jwks.json"), "--file", str(path)).exit_code == 0
    listing = _run("clients", "list", "--file", str(path))
    assert listing.exit_code == 0 and "RS256 kid=dvz-1" in listing.output

    secret_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private))
    (tmp_path / "private.json").write_text(json.dumps(secret_jwk))
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private_pem = tmp_path / "private.pem"
    private_pem.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    for option, file, words in (("--jwks", tmp_path / "private.json", "private key"),
                                ("--public-key", private_pem, "private key"),
                                ("--public-key", _pem_file(tmp_path, weak, "weak.pem"), "2048")):
        before = path.read_text()
        result = _run("clients", "add", "portal", option, str(file), "--file", str(path))
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and words in result.output, result.output
        assert path.read_text() == before


def test_an_unknown_party_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "clients.json"
    result = _run("clients", "add", "atlantis", "--file", str(path))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "atlantis" in lines[0] and "parties.yaml" in lines[0], result.output
    assert not path.exists()
    assert _run("clients", "rotate", "atlantis", "--file", str(path)).exit_code == 2


def test_add_twice_and_rotate_unregistered_are_refused(tmp_path):
    path = tmp_path / "clients.json"
    _add_secret(path, "dvz")
    again = _run("clients", "add", "dvz", "--file", str(path))
    assert again.exit_code == 2 and "rotate" in again.output
    missing = _run("clients", "rotate", "region.flanders", "--file", str(path))
    assert missing.exit_code == 2 and "clients add" in missing.output


def test_rotate_invalidates_the_old_secret(tmp_path):
    path = tmp_path / "clients.json"
    old = _add_secret(path, "dvz")
    result = _run("clients", "rotate", "dvz", "--file", str(path))
    assert result.exit_code == 0, result.output
    new = result.stdout.strip().splitlines()[-1]
    assert new != old and new not in path.read_text() and _mode(path) == 0o600
    gen = _hub(tmp_path, path)
    h = next(gen)
    try:
        assert _token(h, client_id="dvz", client_secret=old).status_code == 401
        assert _token(h, client_id="dvz", client_secret=new).status_code == 200
    finally:
        gen.close()


def test_rotate_a_key_keeps_the_old_one_until_drop_old(tmp_path):
    path = tmp_path / "clients.json"
    old_key, new_key = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    secret = _add_secret(path, "portal")
    args = ("--file", str(path))
    assert _run("clients", "rotate", "portal", "--public-key", str(_pem_file(tmp_path, old_key, "old.pem")),
                *args).exit_code == 0
    assert _run("clients", "rotate", "portal", "--public-key", str(_pem_file(tmp_path, new_key, "new.pem")),
                *args).exit_code == 0
    client = load_clients(path)["portal"]
    assert len(client.public_keys) == 2 and client.secret_sha256
    dropped = _run("clients", "rotate", "portal", "--public-key", str(tmp_path / "new.pem"), "--drop-old", *args)
    assert dropped.exit_code == 0, dropped.output
    client = load_clients(path)["portal"]
    assert len(client.public_keys) == 1 and client.secret_sha256 is None
    gen = _hub(tmp_path, path)
    h = next(gen)
    try:
        form = {"client_assertion_type": ASSERTION_TYPE}
        assert _token(h, **form, client_assertion=assertion("portal", new_key, "EdDSA")).status_code == 200
        assert _token(h, **form, client_assertion=assertion("portal", old_key, "EdDSA")).status_code == 401
        assert _token(h, client_id="portal", client_secret=secret).status_code == 401
    finally:
        gen.close()
    assert _run("clients", "rotate", "portal", "--drop-old", *args).exit_code == 2   # which key to keep?


def test_list_shows_methods_and_never_a_secret(tmp_path):
    path = tmp_path / "clients.json"
    secret = _add_secret(path, "dvz")
    key = ed25519.Ed25519PrivateKey.generate()
    assert _run("clients", "add", "portal", "--public-key", str(_pem_file(tmp_path, key)),
                "--file", str(path)).exit_code == 0
    entries = json.loads(path.read_text())
    entries["region.flanders"] = {"secret": "plain-embedded-secret", "certificate_subject": "CN=flanders,O=VO"}
    path.write_text(json.dumps(entries))
    result = _run("clients", "list", "--file", str(path))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "dvz" in out and "portal" in out and "region.flanders" in out and "EdDSA" in out
    assert "CN=flanders,O=VO" in out and "sha256" in out
    assert secret not in out and "plain-embedded-secret" not in out
    assert entries["dvz"]["secret_sha256"] not in out   # not even the whole hash


def test_the_default_file_is_the_settings_clients_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HUB_CLIENTS_FILE", raising=False)
    result = _run("clients", "add", "region.german_speaking")
    assert result.exit_code == 0, result.output
    assert list(json.loads((tmp_path / "data" / "clients.json").read_text())) == ["region.german-speaking"]


@pytest.fixture
def key_env(tmp_path, monkeypatch):
    for name in ("HUB_TOKEN_KEY", "HUB_TOKEN_KEY_FILE", "HUB_AUDIT_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_keys_init_creates_both_keys_0600_and_refuses_to_overwrite(key_env):
    data = key_env / "data"
    result = _run("keys", "init")
    assert result.exit_code == 0, result.output
    token, audit_key = data / "token.key", data / "audit-signing-key.pem"
    assert _mode(token) == 0o600 and _mode(audit_key) == 0o600
    assert len(token.read_text().strip()) >= 48
    signer = load_signer(audit_key)
    assert signer.public_pem() in result.output and str(audit_key) in result.output
    public = _run("audit", "public-key")
    assert public.exit_code == 0 and public.stdout == signer.public_pem()   # what the officer pins
    before = (token.read_bytes(), audit_key.read_bytes())
    again = _run("keys", "init")
    assert again.exit_code == 2 and len(again.output.strip().splitlines()) == 1, again.output
    assert (token.read_bytes(), audit_key.read_bytes()) == before
    forced = _run("keys", "init", "--force")
    assert forced.exit_code == 0, forced.output
    assert token.read_bytes() != before[0] and audit_key.read_bytes() != before[1]
    assert _mode(token) == 0o600 and _mode(audit_key) == 0o600


def test_keys_init_into_a_directory_and_from_the_settings(key_env, monkeypatch):
    deploy = key_env / "deploy"
    assert _run("keys", "init", "--dir", str(deploy)).exit_code == 0
    assert sorted(p.name for p in deploy.iterdir()) == ["audit-signing-key.pem", "token.key"]
    monkeypatch.setenv("HUB_TOKEN_KEY_FILE", str(key_env / "secrets" / "token"))
    monkeypatch.setenv("HUB_AUDIT_KEY_FILE", str(key_env / "secrets" / "audit.pem"))
    assert _run("keys", "init").exit_code == 0
    assert _mode(key_env / "secrets" / "token") == 0o600
    load_signer(key_env / "secrets" / "audit.pem")


def test_keys_init_only_one_key(key_env):
    data = key_env / "data"
    assert _run("keys", "init").exit_code == 0
    audit_before = (data / "audit-signing-key.pem").read_bytes()
    token_before = (data / "token.key").read_bytes()
    assert _run("keys", "init", "--only", "token").exit_code == 2
    result = _run("keys", "init", "--only", "token", "--force")
    assert result.exit_code == 0, result.output
    assert (data / "token.key").read_bytes() != token_before
    assert (data / "audit-signing-key.pem").read_bytes() == audit_before
    assert "BEGIN PUBLIC KEY" not in result.output
    bad = _run("keys", "init", "--only", "both")
    assert bad.exit_code == 2 and "token, audit" in bad.output
