"""Where the token and CA come from, following the Vault CLI's conventions."""

from __future__ import annotations

import os
from pathlib import Path

from vaultops.config import Config


def resolve_token(cfg: Config | None = None) -> str | None:
    """VAULT_TOKEN, then BAO_TOKEN, then cluster.token_file, a sandbox's secrets file, then ~/.vault-token."""
    for var in ("VAULT_TOKEN", "BAO_TOKEN"):
        value = os.environ.get(var)
        if value:
            return value.strip()
    candidates: list[Path] = []
    if cfg is not None and cfg.token_file:
        candidates.append(cfg.resolve_path(cfg.token_file))
    if cfg is not None and cfg.section("sandbox").get("secrets_file"):
        token = _sandbox_token(cfg.resolve_path(cfg.section("sandbox")["secrets_file"]))
        if token:
            return token
    candidates.append(Path.home() / ".vault-token")
    for path in candidates:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return None


def resolve_ca(cfg: Config | None = None) -> str | None:
    """VAULT_CACERT / BAO_CACERT win over cluster.ca_cert, as with the Vault CLI."""
    for var in ("VAULT_CACERT", "BAO_CACERT"):
        value = os.environ.get(var)
        if value:
            return value
    if cfg is not None and cfg.ca_cert:
        return str(cfg.resolve_path(cfg.ca_cert))
    return None


def _sandbox_token(path: Path) -> str | None:
    import json

    try:
        return json.loads(path.read_text()).get("root_token")
    except (OSError, ValueError):
        return None
