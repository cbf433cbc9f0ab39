"""Unattended login for backup runs: AppRole, AWS IAM, or a plain token (root warned about).

A cron job should never hold a root token. The shipped policy (vaultops/data/backup-policy.hcl)
grants read on sys/storage/raft/snapshot and nothing else; attach it to an AppRole or an
AWS IAM role. Tokens obtained by login are revoked when the run ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vaultops.config import Config
from vaultops.errors import ConfigError, VaultAuthError, VaultError
from vaultops.vault import NodeClient
from vaultops.vault.auth import resolve_token

METHODS = ("token", "approle", "aws")
ROOT_WARNING = ("running with a root token: create a backup identity with the minimal policy "
                "('vaultops backup policy') and AppRole or AWS IAM auth")


@dataclass(frozen=True)
class Identity:
    method: str
    revoke: bool          # the token came from a login made for this run


def policy_text() -> str:
    return resources.files("vaultops").joinpath("data", "backup-policy.hcl").read_text()


def login(clients: list[NodeClient], auth: dict[str, Any], cfg: Config, *,
          warn: Callable[[str], None]) -> Identity:
    """Give every client a token according to backup.auth; returns how it was obtained."""
    method = auth.get("method", "token")
    if method not in METHODS:
        raise ConfigError(f"backup.auth.method is {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if method == "token":
        return _token(clients, cfg, warn=warn)
    mount = str(auth.get("mount") or method)
    body = _approle_body(auth, cfg) if method == "approle" else _aws_body(auth)
    token = _login_any(clients, f"{mount}/login", body)
    for c in clients:
        c.token = token
    return Identity(method=method, revoke=True)


def _login_any(clients: list[NodeClient], path: str, body: dict[str, Any]) -> str:
    last: VaultError | None = None
    for client in clients:  # any unsealed node forwards the login to the active one
        try:
            token = client.login(path, body)
        except VaultAuthError as exc:
            raise VaultAuthError(f"login at auth/{path} was refused ({exc.message})",
                                 hint="check the role and secret id / IAM role binding") from None
        except VaultError as exc:
            last = exc
            continue
        if token:
            return token
    raise VaultAuthError(f"login at auth/{path} failed on every node ({last})",
                         hint="check that the cluster is unsealed and the auth method is enabled")


def _read_secret(cfg: Config, value: str, key: str) -> str:
    from vaultops.files.loader import SECRET_CAP, read_text

    text = read_text(cfg.resolve_path(value), cap=SECRET_CAP, what=f"backup.auth.{key} file",
                     missing="check the path and that the backup user may read it").strip()
    if not text:
        raise ConfigError(f"backup.auth.{key}: {value} is empty", hint="write the value into the file")
    return text


def _approle_body(auth: dict[str, Any], cfg: Config) -> dict[str, Any]:
    role_id = auth.get("role_id") or (_read_secret(cfg, auth["role_id_file"], "role_id_file")
                                      if auth.get("role_id_file") else None)
    if not role_id:
        raise ConfigError("backup.auth: approle needs role_id or role_id_file", hint="see 'vaultops backup policy'")
    body: dict[str, Any] = {"role_id": role_id}
    if auth.get("secret_id_file"):
        body["secret_id"] = _read_secret(cfg, auth["secret_id_file"], "secret_id_file")
    return body


def _aws_body(auth: dict[str, Any]) -> dict[str, Any]:
    from vaultops.vault.auth_methods import aws_iam_login_body

    role = auth.get("role")
    if not role:
        raise ConfigError("backup.auth: aws needs 'role'", hint="the Vault role bound to this IAM principal")
    return aws_iam_login_body(role=role, header_value=auth.get("header_value"), region=auth.get("region"),
                              sts_endpoint=auth.get("sts_endpoint"))


def _token(clients: list[NodeClient], cfg: Config, *, warn: Callable[[str], None]) -> Identity:
    token = resolve_token(cfg)
    if not token:
        raise VaultAuthError("no token for the backup run",
                             hint="configure backup.auth (approle or aws), or export VAULT_TOKEN")
    for c in clients:
        c.token = token
    for client in clients:
        try:
            policies = client.token_lookup_self().get("policies") or []
        except VaultError:
            continue
        if "root" in policies:
            warn(ROOT_WARNING)
        break
    return Identity(method="token", revoke=False)


def logout(clients: list[NodeClient], identity: Identity) -> None:
    if not identity.revoke:
        return
    for client in clients:
        try:
            client.token_revoke_self()
            return
        except VaultError:
            continue


def policy_path() -> Path:
    return Path(str(resources.files("vaultops").joinpath("data", "backup-policy.hcl")))
