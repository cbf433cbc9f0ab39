"""Where the token and CA come from, following the Vault CLI's conventions.

A token is checked wherever it comes from: printable ASCII only (a line break or a
non-Latin-1 character would break the HTTP header, or smuggle a second one). The error
names the source, never the token.
"""

from __future__ import annotations

import os
from pathlib import Path

from vaultops.config import Config
from vaultops.errors import ConfigError


def resolve_token(cfg: Config | None = None) -> str | None:
    """VAULT_TOKEN, then BAO_TOKEN, then cluster.token_file, a sandbox's secrets file, then ~/.vault-token."""
    for var in ("VAULT_TOKEN", "BAO_TOKEN"):
        value = os.environ.get(var)
        if value and value.strip():
            return check_token(value.strip(), f"${var}")
    candidates: list[Path] = []
    if cfg is not None and cfg.token_file:
        candidates.append(cfg.resolve_path(cfg.token_file))
    if cfg is not None and cfg.section("sandbox").get("secrets_file"):
        token = _sandbox_token(cfg.resolve_path(cfg.section("sandbox")["secrets_file"]))
        if token:
            return token
    candidates.append(Path.home() / ".vault-token")
    for path in candidates:
        value = _token_file(path)
        if value:
            return value
    return None


def check_token(token: str, source: str) -> str:
    """*token* if it can go into an HTTP header as it is; else a one-line ConfigError naming *source*."""
    bad = next((c for c in token if not 0x21 <= ord(c) <= 0x7E), None)
    if bad is not None:
        what = "a line break" if bad in "\r\n" else "a space" if bad == " " else \
            "a control character" if ord(bad) < 0x20 or ord(bad) == 0x7F else "a non-ASCII character"
        raise ConfigError(f"the token from {source} holds {what} (not shown)",
                          hint=f"{source} must hold the token alone, on one line")
    return token


def resolve_ca(cfg: Config | None = None) -> str | None:
    """VAULT_CACERT / BAO_CACERT win over cluster.ca_cert, as with the Vault CLI."""
    for var in ("VAULT_CACERT", "BAO_CACERT"):
        value = os.environ.get(var)
        if value:
            return value
    if cfg is not None and cfg.ca_cert:
        return str(cfg.resolve_path(cfg.ca_cert))
    return None


def _token_file(path: Path) -> str | None:
    """The token in *path*; None if there is no readable file (the next source is tried)."""
    from vaultops.files.loader import SECRET_CAP, read_text

    if not os.access(path, os.R_OK) or path.is_dir():
        return None
    text = read_text(path, cap=SECRET_CAP, what="token file").strip()
    return check_token(text, f"token file {path}") if text else None


def _sandbox_token(path: Path) -> str | None:
    from vaultops.files.loader import SECRET_CAP, read_json, validate
    from vaultops.files.model import SandboxSecrets

    if not os.access(path, os.R_OK):
        return None  # the sandbox was removed: fall back to the other sources
    secrets = validate(read_json(path, cap=SECRET_CAP, what="sandbox secrets file"), SandboxSecrets,
                       source=str(path), yaml=False, hint="recreate the sandbox (sandbox down, sandbox up)")
    return check_token(secrets.root_token.strip(), f"sandbox secrets file {path}") or None
